//! Graceful shutdown: one broadcast tells every task to stop; every task holds a
//! clone of an mpsc sender, so the server knows they have all finished when the
//! channel closes.

use tokio::sync::{broadcast, mpsc};

/// A task's view of the shutdown signal.
#[derive(Debug)]
pub struct Shutdown {
    is_shutdown: bool,
    notify: broadcast::Receiver<()>,
    /// Dropped when the task ends; the server waits for all of them.
    _done: mpsc::Sender<()>,
}

impl Shutdown {
    /// Wraps a broadcast receiver and a completion token.
    pub(crate) fn new(notify: broadcast::Receiver<()>, done: mpsc::Sender<()>) -> Self {
        Shutdown {
            is_shutdown: false,
            notify,
            _done: done,
        }
    }

    /// Waits for the signal (returns at once if it was already seen).
    pub async fn recv(&mut self) {
        if self.is_shutdown {
            return;
        }
        // A lagged or closed channel means the same thing: shut down.
        let _ = self.notify.recv().await;
        self.is_shutdown = true;
    }
}

/// The server's end: sends the signal and waits for every task.
#[derive(Debug)]
pub(crate) struct ShutdownController {
    notify: broadcast::Sender<()>,
    done_tx: Option<mpsc::Sender<()>>,
    done_rx: mpsc::Receiver<()>,
}

impl ShutdownController {
    pub(crate) fn new() -> Self {
        let (notify, _) = broadcast::channel(1);
        let (done_tx, done_rx) = mpsc::channel(1);
        ShutdownController {
            notify,
            done_tx: Some(done_tx),
            done_rx,
        }
    }

    /// A source of listeners, for a task that spawns more tasks.
    pub(crate) fn source(&self) -> Option<ShutdownSource> {
        Some(ShutdownSource {
            notify: self.notify.clone(),
            done: self.done_tx.clone()?,
        })
    }

    /// Signals every task and waits until all of them have finished.
    pub(crate) async fn shutdown(mut self) {
        let _ = self.notify.send(());
        self.done_tx = None;
        // recv returns None once every Shutdown (and its sender) is dropped.
        let _ = self.done_rx.recv().await;
    }
}

/// Makes listeners; while it exists, shutdown waits for it too.
#[derive(Debug, Clone)]
pub(crate) struct ShutdownSource {
    notify: broadcast::Sender<()>,
    done: mpsc::Sender<()>,
}

impl ShutdownSource {
    /// A listener for one more task.
    pub(crate) fn listener(&self) -> Shutdown {
        Shutdown::new(self.notify.subscribe(), self.done.clone())
    }
}
