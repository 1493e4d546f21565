//! The chaos phone's commands for links and alerts (`rankfile-chaos-phone`
//! runs them; kept here so that the binary stays one concept): a link
//! proposed and accepted between two committees, alerts raised, answered
//! and counted, and the log of alerts shown — every `AlertReceived` event
//! this phone's processes saw, appended to a file beside its store, so that
//! "shown once" is counted across its kills and restarts.

use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use rankfile_core::alert::{AlertAnswer, AlertDraft, AlertId, AlertKind, AlertScope};
use rankfile_core::committee::{CommitteeId, LinkPolicy};
use rankfile_core::transport::{Client, ClientEvent};
use rankfile_core::{AccountId, Clock, Event};

/// An alert asks for answers for thirty days by the raiser's clock: past
/// every time jump of a run.
const ALERT_LIFETIME_MS: u64 = 30 * 24 * 3600 * 1000;

/// Where a phone's shown alerts are logged: beside its store.
pub fn shown_log(db: &std::path::Path) -> PathBuf {
    let mut path = db.as_os_str().to_owned();
    path.push(".shown");
    PathBuf::from(path)
}

/// Appends the ID of every alert this client shows (`Event::AlertReceived`)
/// to `log`, flushed at once: the phone may be killed any moment after.
pub fn log_shown(client: &Client, log: PathBuf) {
    let mut events = client.subscribe();
    tokio::spawn(async move {
        loop {
            match events.recv().await {
                Ok(ClientEvent::Core(Event::AlertReceived { alert_id, .. })) => {
                    let line = format!("{}\n", hex::encode(alert_id.0));
                    let written = std::fs::OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(&log)
                        .and_then(|mut f| f.write_all(line.as_bytes()).and_then(|_| f.sync_data()));
                    if written.is_err() {
                        eprintln!("chaos phone: cannot log a shown alert");
                    }
                }
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(_) => return,
            }
        }
    });
}

fn parse<T>(s: &str, f: impl FnOnce(&[u8]) -> rankfile_core::Result<T>) -> Result<T, String> {
    f(&hex::decode(s).map_err(|e| e.to_string())?).map_err(|e| e.to_string())
}

fn answer_of(word: &str) -> Result<AlertAnswer, String> {
    match word {
        "received" => Ok(AlertAnswer::Received),
        "coming" => Ok(AlertAnswer::Coming),
        "cannot" => Ok(AlertAnswer::CannotCome),
        "safe" => Ok(AlertAnswer::Safe),
        _ => Err(format!("unknown answer {word}")),
    }
}

fn word_of(answer: AlertAnswer) -> &'static str {
    match answer {
        AlertAnswer::Received => "received",
        AlertAnswer::Coming => "coming",
        AlertAnswer::CannotCome => "cannot",
        AlertAnswer::Safe => "safe",
    }
}

/// Runs an alert or link command, or `None` when `words` is none of them.
pub async fn command(
    c: &Client,
    clock: &Clock,
    shown: &std::path::Path,
    words: &[&str],
) -> Option<Result<String, String>> {
    let e = |e: rankfile_core::Error| e.to_string();
    let committee = |s: &str| parse(s, CommitteeId::from_bytes);
    let account = |s: &str| parse(s, AccountId::from_bytes);
    Some(match words {
        // Proposes a link from `com` (ours) to `target` (`to` organizes it),
        // with ourselves the delegate.
        ["link", com, to, target] => {
            async {
                let me = c.with_account(|a| a.id()).await.map_err(e)?;
                c.propose_link(
                    committee(com)?,
                    account(to)?,
                    committee(target)?,
                    vec![me],
                    LinkPolicy::Forward,
                    "council".into(),
                )
                .await
                .map(hex::encode)
                .map_err(e)
            }
            .await
        }
        // Accepts the first link proposal once it is here, ourselves the
        // delegate: the council's ID.
        ["accept"] => {
            async {
                let me = c.with_account(|a| a.id()).await.map_err(e)?;
                let deadline = Instant::now() + Duration::from_secs(30);
                loop {
                    let proposals = c.link_proposals().await.map_err(e)?;
                    if let Some((_, p)) = proposals.first() {
                        return c
                            .accept_link(p.proposal_id, vec![me], LinkPolicy::Forward)
                            .await
                            .map(|id| hex::encode(id.0))
                            .map_err(e);
                    }
                    if Instant::now() > deadline {
                        return Err("no link proposal came".to_string());
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
            .await
        }
        // Raises an alert titled `tag` in `com`, on along every link.
        ["alert", com, tag] => c
            .send_alert(
                match committee(com) {
                    Ok(id) => id,
                    Err(err) => return Some(Err(err)),
                },
                AlertDraft {
                    kind: AlertKind::EmergencyMeeting,
                    scope: AlertScope::Network,
                    title: tag.to_string(),
                    text: "Meet now.".into(),
                    place: "Gate 3".into(),
                    starts_at_ms: 0,
                    expires_at_ms: clock.now_u64() + ALERT_LIFETIME_MS,
                    answers_wanted: true,
                },
            )
            .await
            .map(|id| hex::encode(id.0))
            .map_err(e),
        // Answers the newest alert not yet answered, if any.
        ["answer", word] => {
            async {
                let answer = answer_of(word)?;
                let alerts = c.alerts().await.map_err(e)?;
                match alerts
                    .iter()
                    .find(|a| a.my_answer.is_none() && a.from.is_some())
                {
                    Some(a) => c
                        .answer_alert(a.alert_id, answer)
                        .await
                        .map(|_| a.title.clone())
                        .map_err(e),
                    None => Ok("-".to_string()),
                }
            }
            .await
        }
        // Every alert held, `a:<title>:<my answer or ->`, and every one
        // shown, `s:<id>` — and `i:<id>:<title>` to name them.
        ["alerts"] => {
            async {
                let mut words = Vec::new();
                for a in c.alerts().await.map_err(e)? {
                    let answer = a.my_answer.map_or("-", word_of);
                    words.push(format!("a:{}:{answer}", a.title));
                    words.push(format!("i:{}:{}", hex::encode(a.alert_id.0), a.title));
                }
                let shown = std::fs::read_to_string(shown).unwrap_or_default();
                words.extend(shown.lines().map(|l| format!("s:{l}")));
                Ok(words.join(" "))
            }
            .await
        }
        // The answers the raiser of `alert` counts, from every committee
        // it reached: `<answer>:<n>` words.
        ["counts", alert] => {
            async {
                let id = parse(alert, AlertId::from_bytes)?;
                let status = c.alert_status(id).await.map_err(e)?;
                let mut total = std::collections::BTreeMap::new();
                for committee in &status.committees {
                    for (answer, n) in &committee.counts {
                        *total.entry(word_of(*answer)).or_insert(0) += n;
                    }
                }
                Ok(total
                    .iter()
                    .filter(|(_, n)| **n > 0)
                    .map(|(a, n)| format!("{a}:{n}"))
                    .collect::<Vec<_>>()
                    .join(" "))
            }
            .await
        }
        // Sends the counts owed back along a cascade now.
        ["rollcall"] => c
            .send_alert_rollcall_now()
            .await
            .map(|n| n.to_string())
            .map_err(e),
        _ => return None,
    })
}
