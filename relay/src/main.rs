//! The `rankfile-relay` binary: reads configuration (file, `RANKFILE_RELAY_*`,
//! flags), starts the relay, prints the startup line, and shuts down gracefully
//! on Ctrl-C or SIGTERM.

use std::process::ExitCode;

use clap::Parser;
use rankfile_relay::Args;

fn main() -> ExitCode {
    let args = Args::parse();
    rankfile_relay::init_logging(&args.log);
    let config = match args.into_config() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("rankfile-relay: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("rankfile-relay: runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(rankfile_relay::serve_until_signal(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rankfile-relay: {e}");
            ExitCode::FAILURE
        }
    }
}
