//! The outbox's flush, run beside the connection's receiving: deliveries are
//! received and acknowledged while the outbox is being sent, so receiving
//! never waits on sending (a slow or refused send cannot hold up what others
//! send us).
//!
//! At most one flush runs at a time (two would send the same envelopes
//! twice). A flush asked for while one runs starts when it ends, so whatever
//! was queued after the running one read the outbox goes too; a caller that
//! waits for "sent" is answered by the first flush that started after it asked
//! and left nothing held back (a flush answers `Ok(false)` when sealed
//! envelopes wait for the anonymous connection: its callers are answered by
//! the later flush that sends them).

use futures::future::BoxFuture;
use tokio::sync::oneshot;

use crate::error::{Error, Result};

/// The connection's outbox flush: the one running, and whether another is owed.
#[derive(Default)]
pub(super) struct Sending<'a> {
    running: Option<BoxFuture<'a, Result<bool>>>,
    /// Answered when the running flush ends.
    running_for: Vec<oneshot::Sender<Result<()>>>,
    /// A flush is owed after the running one (or now, if none runs).
    again: bool,
    /// Answered when the owed flush ends.
    again_for: Vec<oneshot::Sender<Result<()>>>,
}

impl<'a> Sending<'a> {
    /// Asks for a flush.
    pub(super) fn want(&mut self) {
        self.again = true;
    }

    /// Asks for a flush and for `reply` to be told when it is done.
    pub(super) fn want_and_tell(&mut self, reply: oneshot::Sender<Result<()>>) {
        self.again = true;
        self.again_for.push(reply);
    }

    /// Whether a flush runs or is owed.
    pub(super) fn busy(&self) -> bool {
        self.running.is_some() || self.again
    }

    /// Starts the owed flush, made by `flush`, unless one runs.
    pub(super) fn start(&mut self, flush: impl FnOnce() -> BoxFuture<'a, Result<bool>>) {
        if self.running.is_none() && self.again {
            self.again = false;
            self.running_for = std::mem::take(&mut self.again_for);
            self.running = Some(flush());
        }
    }

    /// Waits for the running flush to end and answers those waiting on it;
    /// never ends when none runs (a `select!` branch).
    pub(super) async fn next(&mut self) -> Result<()> {
        let Some(running) = self.running.as_mut() else {
            return std::future::pending().await;
        };
        let r = running.await;
        self.running = None;
        if let Ok(false) = r {
            // Held back: answered by a later flush, which the connection's
            // loop starts when they are due.
            let waiting = std::mem::take(&mut self.running_for);
            self.again_for.extend(waiting);
            return Ok(());
        }
        for reply in self.running_for.drain(..) {
            let _ = reply.send(match &r {
                Ok(_) => Ok(()),
                Err(e) => Err(Error::Transport(e.to_string())),
            });
        }
        r.map(|_| ())
    }

    /// Runs flushes until none is owed: what a batch of deliveries set off
    /// has been sent.
    pub(super) async fn settle(
        &mut self,
        mut flush: impl FnMut() -> BoxFuture<'a, Result<bool>>,
    ) -> Result<()> {
        while self.busy() {
            self.start(&mut flush);
            self.next().await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    #[tokio::test]
    async fn one_flush_at_a_time_and_each_asker_answered_by_a_later_one() {
        let runs = Arc::new(AtomicUsize::new(0));
        let make = || -> BoxFuture<'static, Result<bool>> {
            let runs = runs.clone();
            Box::pin(async move {
                runs.fetch_add(1, Ordering::SeqCst);
                Ok(true)
            })
        };
        let mut s = Sending::default();
        s.want();
        s.start(make);
        // Asked while one runs: owed after it, not answered by it.
        let (tx, mut rx) = oneshot::channel();
        s.want_and_tell(tx);
        s.start(make);
        s.next().await.expect("first");
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        assert!(
            rx.try_recv().is_err(),
            "answered only by a flush after the ask"
        );
        assert!(s.busy());
        s.settle(make).await.expect("settle");
        assert_eq!(runs.load(Ordering::SeqCst), 2);
        assert!(rx.await.expect("answer").is_ok());
        assert!(!s.busy());
    }

    #[tokio::test]
    async fn an_asker_whose_envelopes_were_held_back_is_answered_by_the_flush_that_sends_them() {
        let held = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let make = || -> BoxFuture<'static, Result<bool>> {
            let held = held.clone();
            Box::pin(async move { Ok(!held.load(Ordering::SeqCst)) })
        };
        let mut s = Sending::default();
        let (tx, mut rx) = oneshot::channel();
        s.want_and_tell(tx);
        s.settle(make).await.expect("settle");
        assert!(rx.try_recv().is_err(), "held back: not sent yet");
        assert!(!s.busy(), "nothing owed until the loop says they are due");
        held.store(false, Ordering::SeqCst);
        s.want();
        s.settle(make).await.expect("settle");
        assert!(rx.await.expect("answer").is_ok());
    }
}
