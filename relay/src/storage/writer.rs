//! Group commit: one thread owns the SQLite write connection, takes every write
//! request that is waiting (up to a bound), applies them in ONE transaction (each
//! in its own savepoint, so one failing request does not sink the others), commits
//! once — one fsync for the whole batch — and only then answers each request.
//!
//! A thousand concurrent sends therefore cost one disk flush, not a thousand.

use std::collections::HashMap;

use rusqlite::Connection;
use tokio::sync::{mpsc, oneshot};

use super::MailboxId;
use crate::error::{Error, Result};

/// State only the writer thread touches, kept across batches.
#[derive(Default)]
pub(super) struct WriterState {
    /// Messages per mailbox, loaded on first touch; the quota check needs it on
    /// every send, and only the writer changes mailboxes.
    counts: HashMap<MailboxId, u64>,
}

impl WriterState {
    /// The current count of a mailbox.
    pub(super) fn count(&mut self, tx: &Connection, mailbox: &MailboxId) -> Result<u64> {
        if let Some(n) = self.counts.get(mailbox) {
            return Ok(*n);
        }
        let n: i64 = tx
            .prepare_cached(
                "SELECT COUNT(*) FROM messages WHERE account_id = ?1 AND device_id = ?2",
            )?
            .query_row(
                rusqlite::params![&mailbox.account[..], mailbox.device],
                |r| r.get(0),
            )?;
        let n = u64::try_from(n).map_err(|_| Error::Corrupt("negative count"))?;
        self.counts.insert(*mailbox, n);
        Ok(n)
    }

    /// Records a change to a mailbox's count (after `count` loaded it).
    pub(super) fn adjust(&mut self, mailbox: &MailboxId, added: u64, removed: u64) {
        if let Some(n) = self.counts.get_mut(mailbox) {
            *n = n.saturating_add(added).saturating_sub(removed);
        }
    }

    /// Forgets every count (after a rollback or a bulk delete); they reload on demand.
    pub(super) fn forget_counts(&mut self) {
        self.counts.clear();
    }
}

/// One queued write request.
pub(super) trait Job: Send {
    /// Applies the request inside the batch's transaction.
    fn apply(&mut self, tx: &Connection, state: &mut WriterState) -> Result<()>;
    /// Answers the request once the batch's fate is known.
    fn finish(self: Box<Self>, outcome: Result<()>);
}

/// A request made of a closure and the channel its answer goes back on.
pub(super) struct FnJob<T, F> {
    f: Option<F>,
    value: Option<T>,
    reply: oneshot::Sender<Result<T>>,
}

impl<T, F> FnJob<T, F>
where
    T: Send + 'static,
    F: FnOnce(&Connection, &mut WriterState) -> Result<T> + Send + 'static,
{
    pub(super) fn boxed(f: F) -> (Box<dyn Job>, oneshot::Receiver<Result<T>>) {
        let (reply, rx) = oneshot::channel();
        (
            Box::new(FnJob {
                f: Some(f),
                value: None,
                reply,
            }),
            rx,
        )
    }
}

impl<T, F> Job for FnJob<T, F>
where
    T: Send + 'static,
    F: FnOnce(&Connection, &mut WriterState) -> Result<T> + Send + 'static,
{
    fn apply(&mut self, tx: &Connection, state: &mut WriterState) -> Result<()> {
        let f = self.f.take().ok_or(Error::Corrupt("job applied twice"))?;
        self.value = Some(f(tx, state)?);
        Ok(())
    }

    fn finish(self: Box<Self>, outcome: Result<()>) {
        let answer = match (outcome, self.value) {
            (Ok(()), Some(v)) => Ok(v),
            (Ok(()), None) => Err(Error::Corrupt("job finished without a value")),
            (Err(e), _) => Err(e),
        };
        // The requester may have gone away (connection closed); nothing to do then.
        let _ = self.reply.send(answer);
    }
}

/// Runs the writer until every sender is dropped.
pub(super) fn run(mut conn: Connection, mut rx: mpsc::Receiver<Box<dyn Job>>, max_batch: usize) {
    let mut state = WriterState::default();
    let mut batch: Vec<Box<dyn Job>> = Vec::with_capacity(max_batch);
    let mut outcomes: Vec<Result<()>> = Vec::with_capacity(max_batch);
    while let Some(first) = rx.blocking_recv() {
        batch.push(first);
        while batch.len() < max_batch {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let committed = apply_batch(&mut conn, &mut state, &mut batch, &mut outcomes);
        if let Err(e) = &committed {
            tracing::error!(error = %e, jobs = batch.len(), "group commit failed");
            state.forget_counts();
        }
        for (job, outcome) in batch.drain(..).zip(outcomes.drain(..)) {
            let outcome = match &committed {
                Ok(()) => outcome,
                Err(e) => Err(Error::Store(e.to_string())),
            };
            job.finish(outcome);
        }
    }
}

fn apply_batch(
    conn: &mut Connection,
    state: &mut WriterState,
    batch: &mut [Box<dyn Job>],
    outcomes: &mut Vec<Result<()>>,
) -> Result<()> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    for job in batch.iter_mut() {
        // A savepoint per request, through cached statements (no parsing per job).
        tx.prepare_cached("SAVEPOINT job")?.execute([])?;
        let outcome = job.apply(&tx, state);
        if outcome.is_err() {
            // Undo this one request; the others in the batch stand.
            tx.prepare_cached("ROLLBACK TO job")?.execute([])?;
        }
        tx.prepare_cached("RELEASE job")?.execute([])?;
        outcomes.push(outcome);
    }
    tx.commit()?;
    Ok(())
}
