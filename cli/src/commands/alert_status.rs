//! `rankfile alert status`: the answers to an alert this device raised or
//! passed on. Its own recipients by name (who answered how, who has not,
//! who it could not reach yet), then every committee the alert reached, with
//! the counts the devices that passed it on sent back along the links:
//! numbers only, each member once.

use rankfile_core::alert::{Alert, AlertAnswer, AlertStatus};
use rankfile_core::committee::CommitteeId;
use serde_json::{json, Value};

use super::alert::{answer_key, committee_name, kind_words, resolve};
use crate::cli::AlertRefArgs;
use crate::error::Result;
use crate::home::Home;
use crate::names;
use crate::output::{Output, Style};

/// Runs `rankfile alert status`.
pub fn run(home: &Home, args: &AlertRefArgs, out: &Output) -> Result<()> {
    let (alert, st, named) = super::online(home, &args.relay, out, async |online| {
        let alert = resolve(&online.client, &args.alert).await?;
        let st = online.client.alert_status(alert.alert_id).await?;
        let (ids, unreached) = (st.waiting.clone(), st.not_reached.clone());
        let reached: Vec<CommitteeId> = st.committees.iter().map(|c| c.committee).collect();
        let client = &online.client;
        let people = names::contact_names(client).await?;
        let me = client.id().await?;
        let named = |ids: &[rankfile_core::AccountId]| {
            ids.iter()
                .map(|w| names::person(&people, &me, w))
                .collect::<Vec<_>>()
        };
        let all = names::all_committees(client).await?;
        let committees = reached.iter().map(|c| committee_name(&all, c)).collect();
        let named = Named {
            waiting: named(&ids),
            not_reached: named(&unreached),
            committees,
        };
        Ok((alert, st, named))
    })?;
    print_status(&alert, &st, &named, out);
    Ok(())
}

/// How the people and committees of a status read.
struct Named {
    waiting: Vec<String>,
    not_reached: Vec<String>,
    /// One per entry of [`AlertStatus::committees`].
    committees: Vec<String>,
}

/// One committee's line: answers by kind and who has not answered yet.
fn committee_line(name: &str, c: &rankfile_core::alert::CommitteeAnswers) -> String {
    let n = |a: AlertAnswer| c.counts.get(&a).copied().unwrap_or(0);
    format!(
        "    {name}: coming {}   cannot come {}   safe {}   received {}   not yet {}",
        n(AlertAnswer::Coming),
        n(AlertAnswer::CannotCome),
        n(AlertAnswer::Safe),
        n(AlertAnswer::Received),
        c.not_answered
    )
}

fn print_status(alert: &Alert, st: &AlertStatus, named: &Named, out: &Output) {
    let (waiting, not_reached) = (&named.waiting, &named.not_reached);
    let count = |a: AlertAnswer| st.counts.get(&a).copied().unwrap_or(0);
    let answered: usize = st.counts.values().sum();
    out.emit(
        || {
            let mut lines = vec![format!(
                "{} {} ({}): {answered} of {} answered",
                out.paint(Style::Bold, kind_words(alert.kind)),
                alert.title,
                names::short(&alert.alert_id.0),
                st.recipients
            )];
            lines.push(format!(
                "  coming {}   cannot come {}   safe {}   received {}",
                count(AlertAnswer::Coming),
                count(AlertAnswer::CannotCome),
                count(AlertAnswer::Safe),
                count(AlertAnswer::Received)
            ));
            if !waiting.is_empty() {
                lines.push(format!(
                    "  {} {} (remind them: rankfile alert renotify {})",
                    out.paint(Style::Dim, "not answered yet:"),
                    waiting.join(", "),
                    names::short(&alert.alert_id.0)
                ));
            }
            if !not_reached.is_empty() {
                lines.push(format!(
                    "  {} {} (it goes to them once their phone can be reached)",
                    out.paint(Style::Dim, "not reached yet:"),
                    not_reached.join(", ")
                ));
            }
            if st.recipients == 0 && not_reached.is_empty() {
                lines.push(
                    "  this device delivered it to nobody: answers go to whoever delivered it to each member"
                        .into(),
                );
            }
            if !st.committees.is_empty() {
                lines.push(format!(
                    "  {}",
                    out.paint(
                        Style::Dim,
                        "per committee, counted back along the links (each member once):"
                    )
                ));
                for (c, name) in st.committees.iter().zip(&named.committees) {
                    lines.push(committee_line(name, c));
                }
            }
            lines.join("\n")
        },
        || {
            json!({
                "type": "alert_status",
                "alert_id": alert.alert_id.to_string(),
                "recipients": st.recipients,
                "answered": answered,
                "counts": answer_counts(&st.counts),
                "waiting": st.waiting.iter().map(ToString::to_string).collect::<Vec<_>>(),
                "not_reached": st.not_reached.iter().map(ToString::to_string).collect::<Vec<_>>(),
                "committees": st.committees.iter().zip(&named.committees).map(|(c, name)| json!({
                    "committee_id": c.committee.to_string(),
                    "name": name,
                    "counts": answer_counts(&c.counts),
                    "not_answered": c.not_answered,
                })).collect::<Vec<_>>(),
            })
        },
    );
}

/// Counts by answer, keyed as typed.
fn answer_counts(counts: &std::collections::BTreeMap<AlertAnswer, usize>) -> Value {
    AlertAnswer::ALL
        .iter()
        .map(|a| {
            (
                answer_key(*a).to_string(),
                json!(counts.get(a).copied().unwrap_or(0)),
            )
        })
        .collect::<serde_json::Map<_, _>>()
        .into()
}
