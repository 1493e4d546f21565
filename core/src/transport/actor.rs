//! The account's own thread. An [`Account`] holds the SQLite connection and
//! drives libsignal, whose futures are not `Send`; so one dedicated thread owns
//! it and async code hands it work as closures. Every call's events are
//! published to the client's event stream as soon as the call returns.

use tokio::sync::{broadcast, mpsc, oneshot};

use super::ClientEvent;
use crate::account::Account;
use crate::error::{Error, Result};

type Job = Box<dyn FnOnce(&mut Account) + Send>;

/// A handle to the account thread; cheap to clone.
#[derive(Clone)]
pub(crate) struct AccountHandle {
    jobs: mpsc::UnboundedSender<Job>,
}

/// Jobs queued on the account thread before a caller is made to wait.
impl AccountHandle {
    /// Starts the thread. It ends, returning the account through `done`, when
    /// every handle is dropped.
    pub(crate) fn spawn(
        mut account: Account,
        events: broadcast::Sender<ClientEvent>,
    ) -> Result<(AccountHandle, oneshot::Receiver<Account>)> {
        let (jobs, mut rx) = mpsc::unbounded_channel::<Job>();
        let (done_tx, done_rx) = oneshot::channel();
        std::thread::Builder::new()
            .name("rankfile-account".into())
            .spawn(move || {
                while let Some(job) = rx.blocking_recv() {
                    job(&mut account);
                    for e in account.drain_events() {
                        let _ = events.send(ClientEvent::Core(e));
                    }
                }
                let _ = done_tx.send(account);
            })?;
        Ok((AccountHandle { jobs }, done_rx))
    }

    /// Runs `f` on the account thread and returns its result.
    pub(crate) async fn call<R, F>(&self, f: F) -> Result<R>
    where
        R: Send + 'static,
        F: FnOnce(&mut Account) -> R + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        self.jobs
            .send(Box::new(move |a| {
                let _ = tx.send(f(a));
            }))
            .map_err(|_| Error::Transport("the account thread has stopped".into()))?;
        rx.await
            .map_err(|_| Error::Transport("the account thread has stopped".into()))
    }
}
