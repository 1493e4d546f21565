//! `rankfile alert send|list|status|answer|renotify|approve`: emergency
//! alerts. An organizer or delegate raises one in a committee or council; the
//! core sends it to every member over the 1:1 sessions, flagged high priority
//! (the relay delivers it first and wakes offline phones with a content-free
//! push), and with `--network` on along every link. Each phone keeps it once
//! and answers whoever delivered it; `status` counts the answers to what this
//! device delivered, and per committee those counted back along the links
//! from every committee it reached.

use std::time::{SystemTime, UNIX_EPOCH};

use rankfile_core::alert::{Alert, AlertAnswer, AlertDraft, AlertKind, AlertScope};
use rankfile_core::committee::CommitteeId;
use rankfile_core::Error as CoreError;
use serde_json::{json, Value};

use crate::cli::{
    AlertAnswerArg, AlertAnswerArgs, AlertCommand, AlertKindArg, AlertListArgs, AlertRefArgs,
    AlertSendArgs,
};
use crate::error::{CliError, Result};
use crate::home::Home;
use crate::names::{self, short_committee};
use crate::output::{clock, table, Output, Style};

/// Runs a `rankfile alert` subcommand.
pub fn run(home: &Home, cmd: AlertCommand, out: &Output) -> Result<()> {
    match cmd {
        AlertCommand::Send(args) => send(home, &args, out),
        AlertCommand::List(args) => list(home, &args, out),
        AlertCommand::Status(args) => super::alert_status::run(home, &args, out),
        AlertCommand::Answer(args) => answer(home, &args, out),
        AlertCommand::Renotify(args) => renotify(home, &args, out),
        AlertCommand::Approve(args) => approve(home, &args, out),
    }
}

/// The core's kind for the typed one.
pub(super) fn kind_of(k: AlertKindArg) -> AlertKind {
    match k {
        AlertKindArg::EmergencyMeeting => AlertKind::EmergencyMeeting,
        AlertKindArg::RapidResponse => AlertKind::RapidResponse,
        AlertKindArg::ActionCall => AlertKind::ActionCall,
        AlertKindArg::Information => AlertKind::Information,
    }
}

/// The core's answer for the typed one.
pub(super) fn answer_of(a: AlertAnswerArg) -> AlertAnswer {
    match a {
        AlertAnswerArg::Received => AlertAnswer::Received,
        AlertAnswerArg::Coming => AlertAnswer::Coming,
        AlertAnswerArg::CannotCome => AlertAnswer::CannotCome,
        AlertAnswerArg::Safe => AlertAnswer::Safe,
    }
}

/// How a kind reads, in capitals on the alert's first line.
pub fn kind_words(k: AlertKind) -> &'static str {
    match k {
        AlertKind::EmergencyMeeting => "EMERGENCY MEETING",
        AlertKind::RapidResponse => "RAPID RESPONSE",
        AlertKind::ActionCall => "CALL TO ACTION",
        AlertKind::Information => "INFORMATION",
    }
}

/// How a kind is named in JSON and on the command line.
pub fn kind_key(k: AlertKind) -> &'static str {
    match k {
        AlertKind::EmergencyMeeting => "emergency-meeting",
        AlertKind::RapidResponse => "rapid-response",
        AlertKind::ActionCall => "action-call",
        AlertKind::Information => "information",
    }
}

/// How an answer is named, as typed back.
pub fn answer_key(a: AlertAnswer) -> &'static str {
    match a {
        AlertAnswer::Received => "received",
        AlertAnswer::Coming => "coming",
        AlertAnswer::CannotCome => "cannot-come",
        AlertAnswer::Safe => "safe",
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn clock_u64(ms: u64) -> String {
    clock(i64::try_from(ms).unwrap_or(i64::MAX))
}

/// Turns the core's refusal into plain words with the right exit code.
fn plain(e: CliError, committee: Option<&str>) -> CliError {
    match e {
        CliError::Core(CoreError::MayNotAlert(id)) => CliError::NotAllowed(format!(
            "only organizers and delegates of committee {} raise alerts (and only its organizers approve held ones); ask one of them",
            committee.map_or_else(|| short_committee(&id), str::to_string)
        )),
        CliError::Core(CoreError::AlertExpired(id)) => CliError::Usage(format!(
            "alert {} has expired and takes no more answers",
            names::short(&id.0)
        )),
        CliError::Core(CoreError::NotACommitteeMember(id)) => CliError::NotAllowed(format!(
            "you are not a member of committee {}",
            short_committee(&id)
        )),
        other => other,
    }
}

fn send(home: &Home, args: &AlertSendArgs, out: &Output) -> Result<()> {
    let now = now_ms();
    let draft = AlertDraft {
        kind: kind_of(args.kind),
        scope: if args.network {
            AlertScope::Network
        } else {
            AlertScope::Local
        },
        title: args.title.trim().to_string(),
        text: args.text.clone(),
        place: args.place.trim().to_string(),
        starts_at_ms: args
            .starts_in
            .map_or(0, |m| now.saturating_add(u64::from(m) * 60_000)),
        expires_at_ms: now.saturating_add(u64::from(args.hours) * 3_600_000),
        answers_wanted: !args.no_answers,
    };
    if draft.title.is_empty() {
        return Err(CliError::Usage("an alert needs a title".into()));
    }
    let scope_network = args.network;
    let (c, id, status) = super::online(home, &args.relay, out, async |online| {
        let c = names::committee(&online.client, &args.committee).await?;
        let name = format!("{} ({})", c.meta.name, short_committee(&c.id));
        let id = online
            .client
            .send_alert(c.id, draft)
            .await
            .map_err(|e| plain(e.into(), Some(&name)))?;
        let status = online.client.alert_status(id).await?;
        Ok((c, id, status))
    })
    .map_err(|e| plain(e, Some(&args.committee)))?;
    let short = names::short(&id.0);
    out.emit(
        || {
            format!(
                "{} {} in {} ({}): sent to {} member{}{}, high priority.\n\
                 Answers come back to this device: `rankfile alert status {short}` counts them \
                 (after `rankfile sync`, or while `rankfile watch` runs).",
                out.paint(Style::Bad, "alert raised:"),
                out.paint(Style::Bold, args.title.trim()),
                c.meta.name,
                short_committee(&c.id),
                status.recipients,
                if status.recipients == 1 { "" } else { "s" },
                if scope_network {
                    ", and on along every link this device is a delegate of"
                } else {
                    ""
                },
            )
        },
        || {
            json!({
                "type": "alert_sent",
                "alert_id": id.to_string(),
                "short": short,
                "committee_id": c.id.to_string(),
                "recipients": status.recipients,
                "network": scope_network,
            })
        },
    );
    Ok(())
}

fn list(home: &Home, args: &AlertListArgs, out: &Output) -> Result<()> {
    let look = async |c: &rankfile_core::transport::Client| {
        let alerts = c.alerts().await?;
        let committees = names::all_committees(c).await?;
        let people = names::contact_names(c).await?;
        let me = c.id().await?;
        let rows: Vec<(Alert, String, String)> = alerts
            .into_iter()
            .map(|al| {
                let via = committee_name(&committees, &al.via);
                let from = from_words(&al, &committees, &people, &me);
                (al, via, from)
            })
            .collect();
        Ok::<_, CliError>(rows)
    };
    let rows = if args.offline {
        super::offline(home, look)?
    } else {
        super::online(home, &args.relay, out, async |online| {
            look(&online.client).await
        })?
    };
    if out.is_json() {
        for (a, via, from) in &rows {
            println!("{}", alert_json(a, via, from));
        }
        return Ok(());
    }
    if rows.is_empty() {
        println!("no alerts on this device");
        return Ok(());
    }
    let now = i64::try_from(now_ms()).unwrap_or(i64::MAX);
    let mut t = vec![vec![
        "ID".into(),
        "KIND".into(),
        "TITLE".into(),
        "VIA".into(),
        "FROM".into(),
        "YOUR ANSWER".into(),
    ]];
    for (a, via, from) in &rows {
        t.push(vec![
            names::short(&a.alert_id.0),
            kind_key(a.kind).into(),
            a.title.clone(),
            via.clone(),
            from.clone(),
            match (a.my_answer, a.is_expired(now)) {
                (Some(x), _) => answer_key(x).into(),
                (None, true) => "expired".into(),
                (None, false) if !a.answers_wanted => "-".into(),
                (None, false) => "none yet".into(),
            },
        ]);
    }
    println!("{}", table(&t));
    Ok(())
}

/// `NAME (short)` for a committee this device holds, else its short ID.
pub fn committee_name(
    all: &[rankfile_core::committee::CommitteeState],
    id: &CommitteeId,
) -> String {
    all.iter().find(|c| c.id == *id).map_or_else(
        || short_committee(id),
        |c| format!("{} ({})", c.meta.name, short_committee(id)),
    )
}

/// Who an alert is from: whoever raised it, and the device that passed it
/// on when that is someone else.
pub fn from_words(
    a: &Alert,
    committees: &[rankfile_core::committee::CommitteeState],
    people: &std::collections::HashMap<rankfile_core::AccountId, String>,
    me: &rankfile_core::AccountId,
) -> String {
    match a.from {
        None => "you".to_string(),
        Some(f) if f == a.raiser => names::person(people, me, &f),
        Some(f) => format!(
            "{} in {}, passed on by {}",
            names::person(people, me, &a.raiser),
            committee_name(committees, &a.origin),
            names::person(people, me, &f)
        ),
    }
}

fn alert_json(a: &Alert, via: &str, from: &str) -> Value {
    json!({
        "type": "alert",
        "alert_id": a.alert_id.to_string(),
        "short": names::short(&a.alert_id.0),
        "kind": kind_key(a.kind),
        "network": a.scope == AlertScope::Network,
        "title": a.title,
        "text": a.text,
        "place": a.place,
        "starts_at_ms": a.starts_at_ms,
        "expires_at_ms": a.expires_at_ms,
        "answers_wanted": a.answers_wanted,
        "via_committee_id": a.via.to_string(),
        "via": via,
        "from": a.from.map(|f| f.to_string()),
        "from_name": from,
        "raiser": a.raiser.to_string(),
        "origin_committee_id": a.origin.to_string(),
        "received_at_ms": a.received_at_ms,
        "my_answer": a.my_answer.map(answer_key),
    })
}

/// Prints an alert as it arrives: set apart from chat, with what to type to answer.
pub fn print_alert(a: &Alert, via: &str, from: &str, again: bool, out: &Output) {
    out.emit(
        || {
            let mut lines = vec![format!(
                "{} {}{}: {}",
                out.paint(Style::Bad, &format!("!!! {}", kind_words(a.kind))),
                if again { "(reminder) " } else { "" },
                names::short(&a.alert_id.0),
                out.paint(Style::Bold, &a.title)
            )];
            if !a.place.is_empty() || a.starts_at_ms > 0 {
                lines.push(format!(
                    "    {}{}{}",
                    if a.place.is_empty() {
                        String::new()
                    } else {
                        format!("at {}", a.place)
                    },
                    if !a.place.is_empty() && a.starts_at_ms > 0 {
                        ", "
                    } else {
                        ""
                    },
                    if a.starts_at_ms > 0 {
                        format!("starts {}", clock_u64(a.starts_at_ms))
                    } else {
                        String::new()
                    },
                ));
            }
            if !a.text.is_empty() {
                lines.push(format!("    {}", a.text));
            }
            lines.push(format!(
                "    from {from} via {via}{}; until {}",
                if a.scope == AlertScope::Network {
                    ", network-wide"
                } else {
                    ""
                },
                clock_u64(a.expires_at_ms)
            ));
            if a.answers_wanted {
                lines.push(format!(
                    "    answer with: rankfile alert answer {} coming|cannot-come|safe|received",
                    names::short(&a.alert_id.0)
                ));
            }
            lines.join("\n")
        },
        || {
            let mut v = alert_json(a, via, from);
            v["type"] = json!(if again {
                "alert_renotified"
            } else {
                "alert_received"
            });
            v
        },
    );
}

/// The alert `text` names and how its committee and sender read.
pub(super) async fn resolve(
    client: &rankfile_core::transport::Client,
    text: &str,
) -> Result<Alert> {
    names::alert(client, text).await
}

fn answer(home: &Home, args: &AlertAnswerArgs, out: &Output) -> Result<()> {
    let answer = answer_of(args.answer);
    let alert = super::online(home, &args.relay, out, async |online| {
        let alert = resolve(&online.client, &args.alert).await?;
        online
            .client
            .answer_alert(alert.alert_id, answer)
            .await
            .map_err(|e| plain(e.into(), None))?;
        Ok(alert)
    })
    .map_err(|e| plain(e, None))?;
    out.emit(
        || {
            format!(
                "{} {} to {} ({}){}",
                out.paint(Style::Good, "answered"),
                out.paint(Style::Bold, answer_key(answer)),
                alert.title,
                names::short(&alert.alert_id.0),
                if alert.from.is_some() {
                    ", sent to whoever delivered it to you"
                } else {
                    ""
                }
            )
        },
        || {
            json!({ "type": "alert_answered", "alert_id": alert.alert_id.to_string(),
                    "answer": answer_key(answer) })
        },
    );
    Ok(())
}

fn renotify(home: &Home, args: &AlertRefArgs, out: &Output) -> Result<()> {
    let (alert, sent) = super::online(home, &args.relay, out, async |online| {
        let alert = resolve(&online.client, &args.alert).await?;
        let sent = online
            .client
            .renotify_alert(alert.alert_id)
            .await
            .map_err(|e| plain(e.into(), None))?;
        Ok((alert, sent))
    })
    .map_err(|e| plain(e, None))?;
    out.emit(
        || {
            format!(
                "{} {} ({}) to the {sent} who have not answered",
                out.paint(Style::Good, "reminded:"),
                alert.title,
                names::short(&alert.alert_id.0)
            )
        },
        || json!({ "type": "alert_renotified", "alert_id": alert.alert_id.to_string(), "sent": sent }),
    );
    Ok(())
}

fn approve(home: &Home, args: &AlertRefArgs, out: &Output) -> Result<()> {
    let (alert, approved) = super::online(home, &args.relay, out, async |online| {
        let alert = resolve(&online.client, &args.alert).await?;
        let held = online.client.held_alerts().await?;
        let into: Vec<CommitteeId> = held
            .iter()
            .filter(|(id, _)| *id == alert.alert_id)
            .map(|(_, c)| *c)
            .collect();
        if into.is_empty() {
            return Err(CliError::Usage(format!(
                "alert {} is not held for your approval",
                names::short(&alert.alert_id.0)
            )));
        }
        for c in &into {
            online
                .client
                .approve_alert(alert.alert_id, *c)
                .await
                .map_err(|e| plain(e.into(), None))?;
        }
        Ok((alert, into))
    })
    .map_err(|e| plain(e, None))?;
    out.emit(
        || {
            format!(
                "{} {} ({}) into {}",
                out.paint(Style::Good, "approved"),
                alert.title,
                names::short(&alert.alert_id.0),
                approved
                    .iter()
                    .map(short_committee)
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        },
        || {
            json!({ "type": "alert_approved", "alert_id": alert.alert_id.to_string(),
                    "committees": approved.iter().map(ToString::to_string).collect::<Vec<_>>() })
        },
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_kinds_and_answers_are_the_core_ones() {
        assert_eq!(
            kind_of(AlertKindArg::EmergencyMeeting),
            AlertKind::EmergencyMeeting
        );
        assert_eq!(
            kind_of(AlertKindArg::RapidResponse),
            AlertKind::RapidResponse
        );
        assert_eq!(kind_of(AlertKindArg::ActionCall), AlertKind::ActionCall);
        assert_eq!(kind_of(AlertKindArg::Information), AlertKind::Information);
        for (typed, core) in [
            (AlertAnswerArg::Received, AlertAnswer::Received),
            (AlertAnswerArg::Coming, AlertAnswer::Coming),
            (AlertAnswerArg::CannotCome, AlertAnswer::CannotCome),
            (AlertAnswerArg::Safe, AlertAnswer::Safe),
        ] {
            assert_eq!(answer_of(typed), core);
            // What is printed is what is typed back.
            let back = <AlertAnswerArg as clap::ValueEnum>::from_str(answer_key(core), false)
                .expect("typed back");
            assert_eq!(back, typed);
        }
    }

    #[test]
    fn a_members_alert_is_refused_in_plain_words() {
        let e = plain(
            CliError::Core(CoreError::MayNotAlert(CommitteeId([7; 16]))),
            Some("Depot (07070707)"),
        );
        assert_eq!(e.exit_code(), crate::error::EXIT_NOT_ALLOWED);
        assert!(
            e.to_string()
                .contains("only organizers and delegates of committee Depot"),
            "{e}"
        );
    }
}
