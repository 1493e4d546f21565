//! `rankfile relay`: the relay server, exactly as the `rankfile-relay` binary
//! runs it — the same flags (`rankfile_relay::Args`), logs on stderr, the
//! machine-readable startup line on stdout, graceful stop on Ctrl-C/SIGTERM.

use crate::error::{CliError, Result};
use crate::net;

/// Runs the relay until a signal.
pub fn run(args: rankfile_relay::Args) -> Result<()> {
    rankfile_relay::init_logging(&args.log);
    let config = args
        .into_config()
        .map_err(|e| CliError::Usage(format!("relay configuration: {e}")))?;
    net::runtime()?
        .block_on(rankfile_relay::serve_until_signal(config))
        .map_err(|e| CliError::Other(format!("the relay could not start: {e}")))
}
