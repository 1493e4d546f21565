//! The account's own thread. An [`Account`] holds the SQLite connection and
//! drives libsignal, whose futures are not `Send`; so one dedicated thread owns
//! it and async code hands it work as closures. Every call's events are
//! published to the client's event stream before its caller gets the result,
//! so whoever sees a call finish can count on its events being out.
//!
//! The thread is stopped and joined when its [`AccountThread`] is dropped, so
//! the database is closed before whoever owned the client goes on — never
//! while the process is already running its exit handlers.

use std::thread::JoinHandle;

use tokio::sync::{broadcast, mpsc, oneshot};

use super::ClientEvent;
use crate::account::Account;
use crate::error::{Error, Result};

/// Hands a call's result to its caller.
type Reply = Box<dyn FnOnce() + Send>;

enum Job {
    Run(Box<dyn FnOnce(&mut Account) -> Reply + Send>),
    /// Finish: jobs queued after this one get "stopped" errors.
    Stop,
}

/// A handle to the account thread; cheap to clone.
#[derive(Clone)]
pub(crate) struct AccountHandle {
    jobs: mpsc::UnboundedSender<Job>,
}

/// Owns the account thread: dropping it stops the thread after the job it is
/// running and waits until the account is closed.
pub(crate) struct AccountThread {
    jobs: mpsc::UnboundedSender<Job>,
    thread: Option<JoinHandle<()>>,
}

impl AccountHandle {
    /// Starts the thread. It ends, returning the account through `done`, when
    /// it is told to stop or every handle is dropped.
    pub(crate) fn spawn(
        mut account: Account,
        events: broadcast::Sender<ClientEvent>,
    ) -> Result<(AccountHandle, AccountThread, oneshot::Receiver<Account>)> {
        let (jobs, mut rx) = mpsc::unbounded_channel::<Job>();
        let (done_tx, done_rx) = oneshot::channel();
        let thread = std::thread::Builder::new()
            .name("rankfile-account".into())
            .spawn(move || {
                while let Some(Job::Run(job)) = rx.blocking_recv() {
                    let reply = job(&mut account);
                    for e in account.drain_events() {
                        let _ = events.send(ClientEvent::Core(e));
                    }
                    reply();
                }
                // Nobody waiting for it: the account closes here, on this
                // thread, before the join in `AccountThread::drop` returns.
                let _ = done_tx.send(account);
            })?;
        Ok((
            AccountHandle { jobs: jobs.clone() },
            AccountThread {
                jobs,
                thread: Some(thread),
            },
            done_rx,
        ))
    }

    /// Runs `f` on the account thread and returns its result.
    pub(crate) async fn call<R, F>(&self, f: F) -> Result<R>
    where
        R: Send + 'static,
        F: FnOnce(&mut Account) -> R + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        self.jobs
            .send(Job::Run(Box::new(move |a| {
                let result = f(a);
                Box::new(move || {
                    let _ = tx.send(result);
                })
            })))
            .map_err(|_| Error::Transport("the account thread has stopped".into()))?;
        rx.await
            .map_err(|_| Error::Transport("the account thread has stopped".into()))
    }
}

impl AccountThread {
    /// Asks the thread to finish after the jobs already queued.
    pub(crate) fn stop(&self) {
        let _ = self.jobs.send(Job::Stop);
    }
}

impl Drop for AccountThread {
    fn drop(&mut self) {
        self.stop();
        if let Some(thread) = self.thread.take() {
            // Jobs are short and never wait on the async runtime, so this
            // blocks for one job at most plus closing the database.
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::account::{Account, AccountOptions};
    use crate::store::DatabaseKey;

    #[test]
    fn dropping_the_thread_closes_the_account_before_returning() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("a.db");
        let key = DatabaseKey::generate();
        let account =
            Account::create_with(&path, &key, &AccountOptions::default()).expect("account");
        let (events, _) = broadcast::channel(4);
        let (handle, thread, done) = AccountHandle::spawn(account, events).expect("thread");
        // A handle outlives the thread's owner, as a task's would.
        let kept = handle.clone();
        drop(done);
        drop(thread);
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        let late = rt.block_on(kept.call(|_| ()));
        // The thread drops the account before its job queue: a refused call
        // means the database was closed by the time `drop` returned.
        assert!(late.is_err(), "the thread must have stopped");
    }
}
