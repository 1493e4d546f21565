//! `rankfile watch`: stay connected and print each message as it is stored,
//! until Ctrl-C — for people one line per message, for scripts one JSON
//! object per line. Connection changes go to stderr.

use rankfile_core::transport::{Client, ClientEvent, ConnectionState};
use rankfile_core::{AccountId, Event, StoredMessage};
use serde_json::json;
use tokio::sync::broadcast::error::RecvError;

use crate::cli::WatchArgs;
use crate::error::{CliError, Result};
use crate::home::Home;
use crate::net;
use crate::output::{Output, Style};

/// Runs `rankfile watch`.
pub fn run(home: &Home, args: &WatchArgs, out: &Output) -> Result<()> {
    let relay = home.relay(&args.relay)?;
    let account = home.open()?;
    let rt = net::runtime()?;
    rt.block_on(async {
        // Subscribed as the client started: a message stored while connecting
        // (the mailbox emptying on login) is printed too.
        let (client, mut events) = net::connect(account, &relay, out).await?;
        out.note(&format!(
            "{} to {}; waiting for messages (Ctrl-C to stop)",
            out.paint(Style::Good, "connected"),
            relay.addr
        ));
        let result = loop {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => break Ok(()),
                e = events.recv() => match e {
                    Ok(event) => show(&client, event, out).await?,
                    Err(RecvError::Lagged(n)) => out.note(&format!("(missed {n} events; see history)")),
                    Err(RecvError::Closed) => break Err(CliError::Other("the client stopped".into())),
                },
            }
        };
        let _ = client.shutdown().await;
        result
    })
}

async fn show(client: &Client, event: ClientEvent, out: &Output) -> Result<()> {
    match event {
        ClientEvent::Core(Event::MessageStored { peer, message_id }) => {
            if let Some((name, m)) = message(client, peer, message_id).await? {
                print_message(&name, &m, out);
            }
        }
        ClientEvent::Core(Event::ContactAdded { account }) => out.emit(
            || {
                format!(
                    "{} {account} opened a session with you; compare safety numbers before trusting it",
                    out.paint(Style::Bold, "new contact")
                )
            },
            || json!({ "type": "contact_added", "account_id": account.to_string() }),
        ),
        ClientEvent::Core(Event::IdentityChanged {
            contact,
            new_account,
        }) => out.emit(
            || {
                format!(
                    "{} {contact} claims a new identity {new_account}: check in person",
                    out.paint(Style::Bad, "identity changed")
                )
            },
            || {
                json!({ "type": "identity_changed", "contact": contact.to_string(),
                        "new_account": new_account.to_string() })
            },
        ),
        ClientEvent::Core(Event::IdentityMismatch { account }) => out.emit(
            || {
                format!(
                    "{} someone presented a key that is not {account}'s; refused",
                    out.paint(Style::Bad, "warning")
                )
            },
            || json!({ "type": "identity_mismatch", "account_id": account.to_string() }),
        ),
        ClientEvent::Connection(ConnectionState::Disconnected { reason, retry_in_ms }) => out
            .note(&format!(
                "disconnected ({reason}); retrying in {:.1} s",
                retry_in_ms as f64 / 1000.0
            )),
        ClientEvent::Connection(ConnectionState::Connected { queued }) => {
            out.note(&format!("connected again ({queued} waiting)"))
        }
        ClientEvent::Undecryptable { reason } => {
            out.note(&format!("a message could not be read: {reason}"))
        }
        _ => {}
    }
    Ok(())
}

/// The stored message and its sender's name.
async fn message(
    client: &Client,
    peer: AccountId,
    id: i64,
) -> Result<Option<(String, StoredMessage)>> {
    let found = client
        .with_account(move |a| {
            let name = a
                .contact(&peer)
                .map(|c| c.name)
                .unwrap_or_else(|_| peer.to_string());
            let page = a.history(&peer, Some(id.saturating_add(1)), 1)?;
            Ok::<_, rankfile_core::Error>(page.into_iter().find(|m| m.id == id).map(|m| (name, m)))
        })
        .await??;
    Ok(found)
}

fn print_message(name: &str, m: &StoredMessage, out: &Output) {
    out.emit(
        || {
            format!(
                "{} {}: {}{}",
                out.paint(Style::Dim, &clock(m.stored_at_ms)),
                out.paint(Style::Bold, name),
                m.body,
                if m.held {
                    " (held: identity change pending)"
                } else {
                    ""
                }
            )
        },
        || {
            json!({
                "type": "message",
                "from": m.peer.to_string(),
                "name": name,
                "body": m.body,
                "sent_at_ms": m.sent_at_ms,
                "stored_at_ms": m.stored_at_ms,
                "held": m.held,
            })
        },
    );
}

/// `HH:MM:SS` (UTC) of a Unix time in milliseconds.
fn clock(ms: i64) -> String {
    let secs = ms.div_euclid(1000).rem_euclid(86_400);
    format!("{:02}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60)
}

#[cfg(test)]
mod tests {
    use super::clock;

    #[test]
    fn clock_is_utc_time_of_day() {
        assert_eq!(clock(0), "00:00:00");
        assert_eq!(clock((13 * 3600 + 5 * 60 + 9) * 1000 + 999), "13:05:09");
        assert_eq!(clock(86_400_000 + 61_000), "00:01:01");
    }
}
