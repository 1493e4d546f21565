//! `rankfile relay`: the relay server, exactly as the `rankfile-relay` binary
//! runs it — the same flags (`rankfile_relay::Args`), logs on stderr, the
//! machine-readable startup line on stdout, graceful stop on Ctrl-C/SIGTERM.

use std::io::Write;

use tracing_subscriber::EnvFilter;

use crate::error::{CliError, Result};
use crate::net;

/// Runs the relay until a signal.
pub fn run(args: rankfile_relay::Args) -> Result<()> {
    let filter = EnvFilter::try_new(&args.log).unwrap_or_else(|_| EnvFilter::new("info"));
    // Logs to stderr; stdout carries only the startup line that clients parse.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
    let config = args
        .into_config()
        .map_err(|e| CliError::Usage(format!("relay configuration: {e}")))?;
    let rt = net::runtime()?;
    rt.block_on(async move {
        let handle = rankfile_relay::start(config)
            .await
            .map_err(|e| CliError::Other(format!("the relay could not start: {e}")))?;
        let mut stdout = std::io::stdout();
        let _ = writeln!(stdout, "{}", handle.startup_line());
        let _ = stdout.flush();
        wait_for_signal().await;
        tracing::info!("shutting down");
        handle.shutdown().await;
        Ok(())
    })
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
