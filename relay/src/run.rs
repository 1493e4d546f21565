//! Running the relay as a program — the `rankfile-relay` binary and
//! `rankfile relay` share this: logs to stderr, the machine-readable startup
//! line on stdout, a graceful stop on Ctrl-C or SIGTERM.

use std::io::Write;

use tracing_subscriber::EnvFilter;

use crate::config::Config;
use crate::error::Result;

/// Sends logs to stderr with the given filter (`info` if it does not parse);
/// stdout stays free for the startup line that clients and scripts read.
pub fn init_logging(filter: &str) {
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// Starts the relay, prints its startup line, and serves until a signal.
pub async fn serve_until_signal(config: Config) -> Result<()> {
    let handle = crate::server::start(config).await?;
    let mut out = std::io::stdout();
    let _ = writeln!(out, "{}", handle.startup_line());
    let _ = out.flush();
    wait_for_signal().await;
    tracing::info!("shutting down");
    handle.shutdown().await;
    Ok(())
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
