//! `rankfile watch`: stay connected and print each message as it is stored,
//! until Ctrl-C — for people one line per message, for scripts one JSON
//! object per line. Channel messages and committee changes are printed the
//! same way; connection changes go to stderr. (`rankfile sync` prints what
//! arrived with the same [`show`].)

use rankfile_core::alert::{Alert, AlertId};
use rankfile_core::committee::{ChannelId, CommitteeId};
use rankfile_core::transport::{Client, ClientEvent, ConnectionState};
use rankfile_core::{AccountId, ChannelMessage, Event, StoredMessage};
use serde_json::json;
use tokio::sync::broadcast::error::RecvError;

use super::{alert, link};
use crate::cli::WatchArgs;
use crate::error::{CliError, Result};
use crate::home::Home;
use crate::names;
use crate::net;
use crate::output::{clock, Output, Style};

/// Runs `rankfile watch`.
pub fn run(home: &Home, args: &WatchArgs, out: &Output) -> Result<()> {
    let relay = home.relay(&args.relay)?;
    let rt = net::runtime()?;
    rt.block_on(async {
        // Subscribed as the client started: a message stored while connecting
        // (the mailbox emptying on login) is printed too.
        let client = home.open(Some(&relay))?;
        let (client, mut events) = net::connect(client, &relay, out).await?;
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
        let _ = client.close().await;
        result
    })
}

/// Prints one event for people or scripts (most events print nothing).
pub(super) async fn show(client: &Client, event: ClientEvent, out: &Output) -> Result<()> {
    match event {
        ClientEvent::Core(Event::MessageStored { peer, message_id }) => {
            if let Some((name, m)) = message(client, peer, message_id).await? {
                print_message(&name, &m, out);
            }
        }
        ClientEvent::Core(Event::ChannelMessageStored {
            channel_id,
            message_id,
            ..
        }) => {
            if let Some(m) = channel_message(client, channel_id, message_id).await? {
                print_channel_message(&m, out);
            }
        }
        ClientEvent::Core(Event::AddedToCommittee { committee_id }) => {
            let (name, role) = committee_line(client, committee_id).await?;
            out.emit(
                || {
                    format!(
                        "{} you were added to committee {name} ({}) as {role}",
                        out.paint(Style::Good, "joined"),
                        names::short_committee(&committee_id)
                    )
                },
                || {
                    json!({ "type": "added_to_committee", "committee_id": committee_id.to_string(),
                            "name": name, "role": role })
                },
            )
        }
        ClientEvent::Core(Event::MemberAdmitted {
            committee_id,
            account,
        }) => {
            let (name, _) = committee_line(client, committee_id).await?;
            out.emit(
                || {
                    format!(
                        "{} {account} to committee {name} ({}) from your invite",
                        out.paint(Style::Good, "admitted"),
                        names::short_committee(&committee_id)
                    )
                },
                || {
                    json!({ "type": "member_admitted", "committee_id": committee_id.to_string(),
                            "name": name, "account_id": account.to_string() })
                },
            )
        }
        ClientEvent::Core(Event::JoinRefused {
            committee_id,
            account,
            reason,
        }) => out.emit(
            || {
                format!(
                    "{} {account} asked to join committee {}: {reason}",
                    out.paint(Style::Bad, "join refused"),
                    names::short_committee(&committee_id)
                )
            },
            || {
                json!({ "type": "join_refused", "committee_id": committee_id.to_string(),
                        "account_id": account.to_string(), "reason": reason.to_string() })
            },
        ),
        ClientEvent::Core(Event::CommitteeChanged { committee_id }) => {
            let (name, role) = committee_line(client, committee_id).await?;
            out.emit(
                || {
                    format!(
                        "{} committee {name} ({}) changed; your role: {role}",
                        out.paint(Style::Dim, "update"),
                        names::short_committee(&committee_id)
                    )
                },
                || {
                    json!({ "type": "committee_changed", "committee_id": committee_id.to_string(),
                            "name": name, "role": role })
                },
            )
        }
        ClientEvent::Core(Event::CommitteeChangeRejected {
            committee_id,
            reason,
        }) => out.emit(
            || {
                format!(
                    "{} a change to committee {} was not applied: {reason}",
                    out.paint(Style::Bad, "refused"),
                    names::short_committee(&committee_id)
                )
            },
            || {
                json!({ "type": "committee_change_rejected", "committee_id": committee_id.to_string(),
                        "reason": reason.to_string() })
            },
        ),
        ClientEvent::Core(Event::ChannelMessageRejected { channel_id, sender }) => out.emit(
            || {
                format!(
                    "{} a message in channel {} from {sender}, who may not post there, was dropped",
                    out.paint(Style::Bad, "refused"),
                    names::short(&channel_id)
                )
            },
            || {
                json!({ "type": "channel_message_rejected", "channel_id": hex::encode(channel_id),
                        "sender": sender.to_string() })
            },
        ),
        ClientEvent::Core(Event::AlertReceived { alert_id, .. }) => {
            show_alert(client, alert_id, false, out).await?
        }
        ClientEvent::Core(Event::AlertRenotified { alert_id }) => {
            show_alert(client, alert_id, true, out).await?
        }
        ClientEvent::Core(Event::AlertHeld {
            alert_id,
            committee_id,
        }) => {
            let (alert, via, _) = alert_lines(client, alert_id).await?;
            let (name, _) = committee_line(client, committee_id).await?;
            let short = names::short(&alert_id.0);
            out.emit(
                || {
                    format!(
                        "{} {} `{}` (via {via}) waits for your approval before it reaches {name} ({}):\n    \
                         let it in with: rankfile alert approve {short}",
                        out.paint(Style::Bad, "held alert"),
                        alert::kind_words(alert.kind),
                        alert.title,
                        names::short_committee(&committee_id)
                    )
                },
                || {
                    json!({ "type": "alert_held", "alert_id": alert_id.to_string(), "short": short,
                            "committee_id": committee_id.to_string(), "title": alert.title })
                },
            )
        }
        ClientEvent::Core(Event::AlertAnswered {
            alert_id,
            from,
            answer,
        }) => {
            let people = names::contact_names(client).await?;
            let who = names::person(&people, &client.id().await?, &from);
            let short = names::short(&alert_id.0);
            out.emit(
                || {
                    format!(
                        "{} {who} to alert {short}: {} (counts: rankfile alert status {short})",
                        out.paint(Style::Good, "answer"),
                        out.paint(Style::Bold, alert::answer_key(answer)),
                    )
                },
                || {
                    json!({ "type": "alert_answered", "alert_id": alert_id.to_string(),
                            "from": from.to_string(), "name": who, "answer": alert::answer_key(answer) })
                },
            )
        }
        ClientEvent::Core(Event::AlertCountsChanged { alert_id }) => {
            let short = names::short(&alert_id.0);
            let st = client.alert_status(alert_id).await?;
            let answered: usize = st.committees.iter().flat_map(|c| c.counts.values()).sum();
            let silent: usize = st.committees.iter().map(|c| c.not_answered).sum();
            out.emit(
                || {
                    format!(
                        "{} alert {short}: {answered} answered, {silent} not yet, in {} committees (rankfile alert status {short})",
                        out.paint(Style::Dim, "counts"),
                        st.committees.len()
                    )
                },
                || {
                    json!({ "type": "alert_counts", "alert_id": alert_id.to_string(),
                            "answered": answered, "not_answered": silent,
                            "committees": st.committees.len() })
                },
            )
        }
        ClientEvent::Core(Event::LinkProposed {
            proposal_id,
            from,
            target,
        }) => {
            let (name, _) = committee_line(client, target).await?;
            let short = link::short_proposal(&proposal_id);
            out.emit(
                || {
                    format!(
                        "{} {from} proposes to link their committee with {name} ({}).\n    \
                         see it with `rankfile link list`; accept with: rankfile link accept {short} --delegate MEMBER",
                        out.paint(Style::Bold, "link proposal"),
                        names::short_committee(&target)
                    )
                },
                || {
                    json!({ "type": "link_proposed", "proposal_id": hex::encode(proposal_id),
                            "short": short, "from": from.to_string(), "target": target.to_string() })
                },
            )
        }
        ClientEvent::Core(Event::ConversationTimerChanged { peer, secs }) => {
            let name = client
                .contact(peer)
                .await
                .map(|c| c.name)
                .unwrap_or_else(|_| peer.to_string());
            out.emit(
                || {
                    format!(
                        "{} {name} set disappearing messages to {}",
                        out.paint(Style::Dim, "timer"),
                        super::timer::show_duration(secs)
                    )
                },
                || {
                    json!({ "type": "conversation_timer", "peer": peer.to_string(),
                            "name": name, "timer_secs": secs })
                },
            )
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

/// An alert as stored, the committee it came through and who delivered it.
async fn alert_lines(client: &Client, id: AlertId) -> Result<(Alert, String, String)> {
    let alert = client.alert(id).await?;
    let committees = names::all_committees(client).await?;
    let people = names::contact_names(client).await?;
    let via = alert::committee_name(&committees, &alert.via);
    let from = alert::from_words(&alert, &committees, &people, &client.id().await?);
    Ok((alert, via, from))
}

async fn show_alert(client: &Client, id: AlertId, again: bool, out: &Output) -> Result<()> {
    let (a, via, from) = alert_lines(client, id).await?;
    alert::print_alert(&a, &via, &from, again, out);
    Ok(())
}

/// The stored message and its sender's name.
async fn message(
    client: &Client,
    peer: AccountId,
    id: i64,
) -> Result<Option<(String, StoredMessage)>> {
    let name = client
        .contact(peer)
        .await
        .map(|c| c.name)
        .unwrap_or_else(|_| peer.to_string());
    let page = client.history(peer, Some(id.saturating_add(1)), 1).await?;
    Ok(page.into_iter().find(|m| m.id == id).map(|m| (name, m)))
}

/// A stored channel message, with its committee and the sender's name.
struct Shown {
    committee: Option<CommitteeId>,
    committee_name: String,
    sender_name: String,
    message: ChannelMessage,
}

async fn channel_message(client: &Client, channel: ChannelId, id: i64) -> Result<Option<Shown>> {
    let page = client
        .channel_history(channel, Some(id.saturating_add(1)), 1)
        .await?;
    let Some(message) = page.into_iter().find(|m| m.id == id) else {
        return Ok(None);
    };
    let committee = names::all_committees(client)
        .await?
        .into_iter()
        .find(|c| c.channels.contains_key(&channel));
    let people = names::contact_names(client).await?;
    Ok(Some(Shown {
        committee: committee.as_ref().map(|c| c.id),
        committee_name: committee.map(|c| c.meta.name).unwrap_or_default(),
        sender_name: names::person(&people, &client.id().await?, &message.sender),
        message,
    }))
}

fn print_channel_message(s: &Shown, out: &Output) {
    let m = &s.message;
    out.emit(
        || {
            format!(
                "{} {} {}: {}",
                out.paint(Style::Dim, &clock(m.stored_at_ms)),
                out.paint(
                    Style::Dim,
                    &format!("[{}/{}]", s.committee_name, names::short(&m.channel_id))
                ),
                out.paint(Style::Bold, &s.sender_name),
                m.body
            )
        },
        || {
            json!({
                "type": "channel_message",
                "committee_id": s.committee.map(|c| c.to_string()),
                "channel_id": hex::encode(m.channel_id),
                "from": m.sender.to_string(),
                "name": s.sender_name,
                "body": m.body,
                "sent_at_ms": m.sent_at_ms,
                "stored_at_ms": m.stored_at_ms,
            })
        },
    );
}

/// A committee's name and our role in it (or "not a member").
async fn committee_line(client: &Client, id: CommitteeId) -> Result<(String, String)> {
    let state = client.committee(id).await?;
    let me = client.id().await?;
    let role = state
        .members
        .get(&me)
        .map_or_else(|| "not a member".to_string(), |m| m.role.to_string());
    Ok((state.meta.name, role))
}

fn print_message(name: &str, m: &StoredMessage, out: &Output) {
    out.emit(
        || {
            format!(
                "{} {}: {}{}{}",
                out.paint(Style::Dim, &clock(m.stored_at_ms)),
                out.paint(Style::Bold, name),
                m.body,
                if m.held {
                    " (held: identity change pending)"
                } else {
                    ""
                },
                match m.expires_at_ms {
                    Some(at) => format!(" (disappears at {})", clock(at)),
                    None => String::new(),
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
                "expires_at_ms": m.expires_at_ms,
            })
        },
    );
}
