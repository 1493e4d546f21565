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
    /// Whether the request runs in its own savepoint, so that failing part-way
    /// undoes only it. A request without one must refuse (e.g. quota) before it
    /// writes anything; a store error from it fails the whole batch.
    fn isolated(&self) -> bool;
    /// Answers the request once the batch's fate is known.
    fn finish(self: Box<Self>, outcome: Result<()>);
}

/// Runs on the writer thread right after the commit, before the answer is sent:
/// hooks therefore run in commit order.
pub(super) type Hook<T> = Box<dyn FnOnce(&mut T) + Send>;

/// A request made of a closure and the channel its answer goes back on.
pub(super) struct FnJob<T, F> {
    f: Option<F>,
    isolated: bool,
    value: Option<T>,
    on_commit: Option<Hook<T>>,
    reply: oneshot::Sender<Result<T>>,
}

impl<T, F> FnJob<T, F>
where
    T: Send + 'static,
    F: FnOnce(&Connection, &mut WriterState) -> Result<T> + Send + 'static,
{
    pub(super) fn boxed(
        f: F,
        isolated: bool,
        on_commit: Option<Hook<T>>,
    ) -> (Box<dyn Job>, oneshot::Receiver<Result<T>>) {
        let (reply, rx) = oneshot::channel();
        (
            Box::new(FnJob {
                f: Some(f),
                isolated,
                value: None,
                on_commit,
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

    fn isolated(&self) -> bool {
        self.isolated
    }

    fn finish(self: Box<Self>, outcome: Result<()>) {
        let answer = match (outcome, self.value) {
            (Ok(()), Some(mut v)) => {
                if let Some(hook) = self.on_commit {
                    hook(&mut v);
                }
                Ok(v)
            }
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
        // Every job is answered, also those a failed batch never reached.
        let mut applied = outcomes.drain(..);
        for job in batch.drain(..) {
            let outcome = match (&committed, applied.next()) {
                (Ok(()), Some(outcome)) => outcome,
                (Ok(()), None) => Err(Error::Corrupt("job left unapplied")),
                (Err(e), _) => Err(Error::Store(e.to_string())),
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
        if !job.isolated() {
            // No savepoint: it would copy every page the request touches.
            let outcome = job.apply(&tx, state);
            if let Err(e @ (Error::Store(_) | Error::Io(_))) = &outcome {
                // It may have written part of itself: nothing in the batch stands.
                return Err(Error::Store(e.to_string()));
            }
            outcomes.push(outcome);
            continue;
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    type Queued = (Box<dyn Job>, oneshot::Receiver<Result<()>>);

    fn conn() -> Connection {
        let c = Connection::open_in_memory().expect("open");
        c.execute_batch("CREATE TABLE t (v INTEGER NOT NULL)")
            .expect("schema");
        c
    }

    fn insert(v: i64, isolated: bool, then_fail: Option<Error>) -> Queued {
        FnJob::boxed(
            move |c: &Connection, _: &mut WriterState| {
                if let Some(Error::QuotaExceeded) = then_fail {
                    return Err(Error::QuotaExceeded);
                }
                c.execute("INSERT INTO t (v) VALUES (?1)", [v])?;
                match then_fail {
                    Some(e) => Err(e),
                    None => Ok(()),
                }
            },
            isolated,
            None,
        )
    }

    fn values(c: &Connection) -> Vec<i64> {
        let mut stmt = c.prepare("SELECT v FROM t ORDER BY v").expect("select");
        let rows = stmt.query_map([], |r| r.get(0)).expect("query");
        rows.collect::<rusqlite::Result<_>>().expect("rows")
    }

    fn run_batch(c: &mut Connection, jobs: Vec<Queued>) -> (Result<()>, Vec<Result<()>>) {
        let (mut batch, mut rxs): (Vec<_>, Vec<_>) = jobs.into_iter().unzip();
        let mut outcomes = Vec::new();
        let committed = apply_batch(c, &mut WriterState::default(), &mut batch, &mut outcomes);
        let ok = committed.is_ok();
        for (job, outcome) in batch.into_iter().zip(outcomes) {
            job.finish(if ok { outcome } else { Err(Error::StoreClosed) });
        }
        let answers = rxs
            .iter_mut()
            .map(|rx| rx.try_recv().unwrap_or(Err(Error::StoreClosed)))
            .collect();
        (committed, answers)
    }

    #[test]
    fn isolated_and_shared_jobs_commit_together() {
        let mut c = conn();
        let (committed, answers) = run_batch(
            &mut c,
            vec![
                insert(1, false, None),
                // Fails after writing: its savepoint undoes only it.
                insert(2, true, Some(Error::Corrupt("test"))),
                // Refuses before writing, without a savepoint.
                insert(3, false, Some(Error::QuotaExceeded)),
                insert(4, true, None),
                insert(5, false, None),
            ],
        );
        assert!(committed.is_ok());
        assert_eq!(
            answers.iter().map(Result::is_ok).collect::<Vec<_>>(),
            [true, false, false, true, true]
        );
        assert_eq!(values(&c), [1, 4, 5]);
    }

    #[test]
    fn a_store_error_in_a_shared_job_fails_the_whole_batch() {
        let mut c = conn();
        let (committed, answers) = run_batch(
            &mut c,
            vec![
                insert(1, true, None),
                insert(2, false, Some(Error::Store("disk".into()))),
                insert(3, false, None),
            ],
        );
        assert!(committed.is_err());
        assert!(answers.iter().all(Result::is_err));
        assert!(values(&c).is_empty(), "nothing of the batch stands");
    }
}
