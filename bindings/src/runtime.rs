//! The tokio runtime every binding call runs on.
//!
//! The foreign side polls our futures from its own executor (Kotlin
//! coroutines, Swift tasks, Python's asyncio), none of which is a tokio
//! runtime, while the core's `Client` spawns its connection manager and needs
//! one. So each call is spawned onto this process-wide multi-threaded runtime
//! and the foreign side awaits its `JoinHandle`, which any executor can poll.
//! (The core's libsignal work is not `Send` and never runs here: the facade
//! hands it to the account's own thread.)

use std::future::Future;
use std::sync::OnceLock;

use tokio::runtime::Runtime;

use crate::error::ClientError;

/// Built on first use; lives as long as the process, like the app.
fn runtime() -> Result<&'static Runtime, ClientError> {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    if let Some(rt) = RUNTIME.get() {
        return Ok(rt);
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("rankfile-ffi")
        .build()
        .map_err(|e| {
            tracing::debug!("starting the tokio runtime failed: {e}");
            ClientError::Internal
        })?;
    // Two first calls at once may both build one; the loser's is dropped
    // before anything ran on it.
    Ok(RUNTIME.get_or_init(|| rt))
}

/// Runs `work` on the runtime and waits for its result. A foreign caller that
/// cancels its await leaves the work to finish on its own: every facade
/// operation commits whole or not at all, so none is left half done.
pub(crate) async fn run<T, F>(work: F) -> Result<T, ClientError>
where
    T: Send + 'static,
    F: Future<Output = Result<T, ClientError>> + Send + 'static,
{
    runtime()?.spawn(work).await.map_err(|e| {
        tracing::debug!("a binding call's task failed: {e}");
        ClientError::Internal
    })?
}
