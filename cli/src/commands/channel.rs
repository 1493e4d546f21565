//! `rankfile channel create|list|send|history|search`: committee channels. A
//! post is encrypted once under this device's sender key and sealed for every
//! other member in one upload; the command exits once the relay holds it
//! durably. History and search read this device's encrypted store (search is
//! its full-text index), after receiving what waits at the relay.

use std::time::Instant;

use rankfile_core::committee::{ChannelKind, CommitteeState};
use rankfile_core::transport::Client;
use rankfile_core::{AccountId, ChannelMessage};
use serde_json::json;

use crate::cli::{
    ChannelCommand, ChannelSendArgs, CreateChannelArgs, HistoryArgs, RelayOpts, SearchArgs,
};
use crate::error::{CliError, Result};
use crate::home::Home;
use crate::names::{self, short_committee, ChannelRef};
use crate::output::{clock, table, Output, Style};

/// Runs a `rankfile channel` subcommand.
pub fn run(home: &Home, cmd: ChannelCommand, out: &Output) -> Result<()> {
    match cmd {
        ChannelCommand::Create(args) => create(home, &args, out),
        ChannelCommand::List { committee } => list(home, committee.as_deref(), out),
        ChannelCommand::Send(args) => send(home, &args, out),
        ChannelCommand::History(args) => history(home, &args, out),
        ChannelCommand::Search(args) => search(home, &args, out),
    }
}

fn create(home: &Home, args: &CreateChannelArgs, out: &Output) -> Result<()> {
    let kind = if args.announcement {
        ChannelKind::Announcement
    } else {
        ChannelKind::Discussion
    };
    let (committee, channel) = super::online(home, &args.relay, out, async |online| {
        let c = names::committee(&online.client, &args.committee).await?;
        let channel = online.client.create_channel(c.id, kind).await?;
        Ok((c, channel))
    })?;
    let short = names::short(&channel);
    out.emit(
        || {
            format!(
                "{} {} channel {short} in {} ({}); post with `rankfile channel send {short} \"…\"`",
                out.paint(Style::Good, "created"),
                names::kind_word(kind),
                committee.meta.name,
                short_committee(&committee.id),
            )
        },
        || {
            json!({
                "channel_id": hex::encode(channel),
                "short": short,
                "kind": names::kind_word(kind),
                "committee_id": committee.id.to_string(),
            })
        },
    );
    Ok(())
}

fn list(home: &Home, committee: Option<&str>, out: &Output) -> Result<()> {
    let all: Vec<CommitteeState> = super::offline(home, async |c| match committee {
        Some(text) => Ok(vec![names::committee(c, text).await?]),
        None => names::all_committees(c).await,
    })?;
    let channels: Vec<(&CommitteeState, [u8; 16], ChannelKind)> = all
        .iter()
        .flat_map(|c| c.channels.iter().map(move |(id, kind)| (c, *id, *kind)))
        .collect();
    if out.is_json() {
        for (c, id, kind) in &channels {
            println!(
                "{}",
                json!({
                    "channel_id": hex::encode(id),
                    "short": names::short(id),
                    "kind": names::kind_word(*kind),
                    "committee_id": c.id.to_string(),
                    "committee": c.meta.name,
                })
            );
        }
        return Ok(());
    }
    if channels.is_empty() {
        println!(
            "no channels yet; an organizer makes one with `rankfile channel create COMMITTEE`"
        );
        return Ok(());
    }
    let mut rows = vec![vec!["ID".into(), "KIND".into(), "COMMITTEE".into()]];
    for (c, id, kind) in &channels {
        rows.push(vec![
            names::short(id),
            names::kind_word(*kind).into(),
            format!("{} ({})", c.meta.name, short_committee(&c.id)),
        ]);
    }
    println!("{}", table(&rows));
    Ok(())
}

fn send(home: &Home, args: &ChannelSendArgs, out: &Output) -> Result<()> {
    let started = Instant::now();
    let (target, recipients) = super::online(home, &args.relay, out, async |online| {
        let target = names::channel(&online.client, &args.channel).await?;
        let recipients = target.committee.members.len().saturating_sub(1);
        out.wait(
            "sending",
            online
                .client
                .post(target.committee.id, target.channel, args.text.clone()),
        )
        .await?;
        Ok((target, recipients))
    })?;
    // `online` returned after the relay confirmed the whole outbox.
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    out.emit(
        || {
            format!(
                "{} in {} to {recipients} member{}, one sealed upload — stored by the relay in {ms:.0} ms",
                out.paint(Style::Good, "posted"),
                channel_label(&target),
                if recipients == 1 { "" } else { "s" },
            )
        },
        || {
            json!({
                "posted": true,
                "channel_id": hex::encode(target.channel),
                "committee_id": target.committee.id.to_string(),
                "recipients": recipients,
                "ms": ms,
            })
        },
    );
    Ok(())
}

/// `Depot/discussion (1a2b3c4d)`.
fn channel_label(c: &ChannelRef) -> String {
    format!(
        "{}/{} ({})",
        c.committee.meta.name,
        names::kind_word(c.kind),
        names::short(&c.channel)
    )
}

fn history(home: &Home, args: &HistoryArgs, out: &Output) -> Result<()> {
    let limit = args.limit;
    let (target, mut messages) = read_channel(
        home,
        &args.channel,
        args.offline,
        &args.relay,
        out,
        Read::History { limit },
    )?;
    // The store gives the newest first; a conversation reads oldest first.
    messages.reverse();
    show_messages(&target, &messages, out, || {
        format!("no messages in {} yet", channel_label(&target))
    });
    Ok(())
}

fn search(home: &Home, args: &SearchArgs, out: &Output) -> Result<()> {
    let (limit, words) = (args.limit, args.words.join(" "));
    let (target, messages) = read_channel(
        home,
        &args.channel,
        args.offline,
        &args.relay,
        out,
        Read::Search {
            words: words.clone(),
            limit,
        },
    )?;
    show_messages(&target, &messages, out, || {
        format!("nothing in {} matches `{words}`", channel_label(&target))
    });
    Ok(())
}

/// What to read from a channel.
enum Read {
    /// The newest messages.
    History { limit: u32 },
    /// The newest messages with every word.
    Search { words: String, limit: u32 },
}

/// Finds the channel and reads messages from it as `read` says — after
/// receiving what waits at the relay, unless `offline` — each with its
/// sender's name.
fn read_channel(
    home: &Home,
    channel: &str,
    offline: bool,
    relay: &RelayOpts,
    out: &Output,
    read: Read,
) -> Result<(ChannelRef, Vec<(String, ChannelMessage)>)> {
    let look = async |c: &Client| {
        let target = names::channel(c, channel).await?;
        let page = match read {
            Read::History { limit } => c.channel_history(target.channel, None, limit).await?,
            Read::Search { words, limit } => {
                c.search(Some(target.channel), words, None, limit).await?
            }
        };
        let people = names::contact_names(c).await?;
        let me = c.id().await?;
        let named = page
            .into_iter()
            .map(|m| (names::person(&people, &me, &m.sender), m))
            .collect();
        Ok::<_, CliError>((target, named))
    };
    if offline {
        super::offline(home, look)
    } else {
        super::online(home, relay, out, async |online| look(&online.client).await)
    }
}

/// Prints messages in the order given, or `empty` when there are none.
fn show_messages(
    target: &ChannelRef,
    messages: &[(String, ChannelMessage)],
    out: &Output,
    empty: impl FnOnce() -> String,
) {
    if out.is_json() {
        for (name, m) in messages {
            println!("{}", message_json(target, name, &m.sender, m));
        }
        return;
    }
    if messages.is_empty() {
        println!("{}", empty());
        return;
    }
    println!("{}", out.paint(Style::Bold, &channel_label(target)));
    for (name, m) in messages {
        println!(
            "{} {}: {}",
            out.paint(Style::Dim, &clock(m.stored_at_ms)),
            out.paint(Style::Bold, name),
            m.body
        );
    }
}

fn message_json(
    target: &ChannelRef,
    name: &str,
    sender: &AccountId,
    m: &ChannelMessage,
) -> serde_json::Value {
    json!({
        "type": "channel_message",
        "committee_id": target.committee.id.to_string(),
        "channel_id": hex::encode(target.channel),
        "id": m.id,
        "from": sender.to_string(),
        "name": name,
        "outgoing": m.outgoing,
        "body": m.body,
        "sent_at_ms": m.sent_at_ms,
        "stored_at_ms": m.stored_at_ms,
    })
}
