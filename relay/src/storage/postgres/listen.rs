//! Hearing of mail other relay nodes committed: a dedicated connection
//! LISTENs on the mail channel; each notification names mailboxes. When that
//! connection is lost the listener reconnects (with backoff), LISTENs again,
//! and then reports `RemoteMail::All`: every connected device re-reads its
//! mailbox, so mail whose notification fell into the gap waits for nothing.

use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::mpsc;
use tokio_postgres::{AsyncMessage, NoTls};

use super::MAIL_CHANNEL;
use crate::storage::{MailboxId, RemoteMail};

/// Longest pause between reconnection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// Listens until `tx`'s receiver is dropped. Notifications from `node` (this
/// one) are skipped: its own commits woke its connections already.
pub(super) async fn run(
    config: tokio_postgres::Config,
    node: String,
    tx: mpsc::UnboundedSender<RemoteMail>,
) {
    let mut backoff = Duration::from_millis(50);
    while !tx.is_closed() {
        match listen_once(&config, &node, &tx).await {
            Ok(()) => backoff = Duration::from_millis(50),
            Err(e) => {
                tracing::warn!(error = %e, "mail notifications lost; reconnecting");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}

/// One connection's life: LISTEN, report the catch-up, pass notifications on
/// until the connection ends.
async fn listen_once(
    config: &tokio_postgres::Config,
    node: &str,
    tx: &mpsc::UnboundedSender<RemoteMail>,
) -> Result<(), tokio_postgres::Error> {
    let (client, mut connection) = config.connect(NoTls).await?;
    let (payload_tx, mut payloads) = mpsc::unbounded_channel::<String>();
    let driver = tokio::spawn(async move {
        let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(message) = messages.next().await {
            match message {
                Ok(AsyncMessage::Notification(n)) => {
                    if payload_tx.send(n.payload().to_owned()).is_err() {
                        return;
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "notification connection failed");
                    return;
                }
            }
        }
    });
    client
        .batch_execute(&format!("LISTEN {MAIL_CHANNEL}"))
        .await?;
    // Whatever was committed while nobody listened: read it from the store.
    if tx.send(RemoteMail::All).is_err() {
        driver.abort();
        return Ok(());
    }
    while let Some(payload) = payloads.recv().await {
        if let Some(change) = parse(node, &payload) {
            if tx.send(change).is_err() {
                break;
            }
        }
    }
    driver.abort();
    drop(client);
    if tx.is_closed() {
        return Ok(());
    }
    // The connection ended: reconnect at once; errors from here on back off.
    tracing::warn!("mail notification connection closed; reconnecting");
    Ok(())
}

/// What a notification says, unless this node sent it: `node:` then
/// mailboxes (`batch::notify_payloads`), or `node:d:` and an account whose
/// devices changed. Anything malformed is ignored, never trusted.
pub(super) fn parse(node: &str, payload: &str) -> Option<RemoteMail> {
    let (from, list) = payload.split_once(':')?;
    if from == node {
        return None;
    }
    if let Some(account) = list.strip_prefix("d:") {
        let account: [u8; 20] = hex::decode(account).ok()?.try_into().ok()?;
        return Some(RemoteMail::DevicesChanged(account));
    }
    let mut out = Vec::new();
    for entry in list.split(',') {
        let bytes = hex::decode(entry).ok()?;
        let (account, device) = bytes.split_at_checked(20)?;
        let account: [u8; 20] = account.try_into().ok()?;
        let [device] = device else { return None };
        out.push(MailboxId {
            account,
            device: u32::from(*device),
        });
    }
    Some(RemoteMail::Mailboxes(out))
}

/// The payload saying an account's devices changed.
pub(super) fn devices_changed(node: &str, account: &[u8; 20]) -> String {
    format!("{node}:d:{}", hex::encode(account))
}

#[cfg(test)]
mod tests {
    use super::super::batch::notify_payloads;
    use super::*;

    #[test]
    fn payloads_round_trip_and_skip_this_node() {
        let boxes: Vec<MailboxId> = (0..400u32)
            .map(|i| MailboxId {
                account: [(i % 251) as u8; 20],
                device: 1 + i % 127,
            })
            .collect();
        let payloads = notify_payloads("a1", &boxes);
        assert!(payloads.len() > 1, "split under the size limit");
        assert!(payloads.iter().all(|p| p.len() <= 8000));
        let back: Vec<MailboxId> = payloads
            .iter()
            .flat_map(|p| match parse("b2", p) {
                Some(RemoteMail::Mailboxes(m)) => m,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(back, boxes);
        assert_eq!(
            parse("b2", &devices_changed("a1", &[7; 20])),
            Some(RemoteMail::DevicesChanged([7; 20]))
        );
        assert!(parse("a1", &devices_changed("a1", &[7; 20])).is_none());
        assert!(
            parse("a1", &payloads[0]).is_none(),
            "own notifications skipped"
        );
        assert!(parse("b2", "a1:zz").is_none());
        assert!(parse("b2", "a1:00").is_none());
    }
}
