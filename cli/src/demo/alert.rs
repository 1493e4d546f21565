//! The demo's alert chapter. Two more phones form a second committee (a
//! warehouse); its organizer and the depot's link the two through a council,
//! each naming a delegate. The depot's organizer raises a network-wide
//! emergency meeting: it reaches every phone of both committees, each exactly
//! once (the warehouse's through the council's delegate), and not the phone
//! removed earlier; members answer, and the organizers' status counts the
//! answers as they come in, the warehouse's sent back through the council to
//! the depot's organizer as counts per committee.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rankfile_core::alert::{AlertAnswer, AlertDraft, AlertId, AlertKind, AlertScope};
use rankfile_core::committee::{CommitteeId, CommitteeMeta, LinkPolicy, Role};
use rankfile_core::transport::{Client, RelayAddress};

use super::phone::{Phone, Tracker};
use super::report::latency_line;
use super::{Demo, CONNECT_PATIENCE};
use crate::error::{CliError, Result};

/// How long links, alerts and answers may take to reach every phone.
const PATIENCE: Duration = Duration::from_secs(60);
/// How often a wait looks again.
const POLL: Duration = Duration::from_millis(20);

/// What the chapter did, for the summary.
pub(super) struct AlertFigures {
    /// Phones other than the raiser's that hold the alert (each once).
    pub alerted: usize,
    /// Answers counted by the devices that delivered the alert.
    pub answered: usize,
    /// Committees linked in the council.
    pub linked: usize,
    pub latencies: Vec<Duration>,
}

impl AlertFigures {
    /// Summary lines.
    pub fn lines(&self) -> Vec<String> {
        vec![
            format!(
                "  {:<18}{} committees linked through a council; a network alert reached {} phones, each once; {} answers counted",
                "alert", self.linked, self.alerted, self.answered
            ),
            format!(
                "  {}",
                latency_line("latency alert → stored", &self.latencies)
            ),
        ]
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// How many copies of `alert` a phone holds.
async fn copies(client: &Client, alert: AlertId) -> Result<usize> {
    Ok(client
        .alerts()
        .await?
        .iter()
        .filter(|a| a.alert_id == alert)
        .count())
}

/// When a phone stored `alert`, ms since the epoch, by its own record.
async fn stored_at(client: &Client, alert: AlertId) -> Result<Option<i64>> {
    Ok(client
        .alerts()
        .await?
        .iter()
        .find(|a| a.alert_id == alert)
        .map(|a| a.received_at_ms))
}

impl Demo<'_> {
    /// The chapter; needs the committee chapter's committee.
    pub(super) async fn alert_chapter(
        &mut self,
        relay: &RelayAddress,
    ) -> Result<Option<AlertFigures>> {
        let Some(depot) = self.committee.as_ref() else {
            return Ok(None);
        };
        let (depot, members, removed) = (depot.committee, depot.members.clone(), depot.removed);
        // The warehouse's phones: its organizer and one member.
        let base = self.phones.len();
        let mut others = Vec::new();
        for (i, name) in [
            (base, "warehouse-organizer"),
            (base + 1, "warehouse-member"),
        ] {
            let dir = self.dir.clone();
            let made = tokio::task::spawn_blocking(move || Phone::create(&dir, i, name.into()))
                .await
                .map_err(|e| CliError::Other(e.to_string()))??;
            others.push(made);
        }
        let tracker = Tracker::new(0);
        for p in &mut others {
            p.go_online(relay, &tracker)?;
        }
        let played = self.alert_story(depot, &members, removed, &others).await;
        for p in &mut others {
            let _ = p.go_offline().await;
        }
        played.map(Some)
    }

    async fn alert_story(
        &self,
        depot: CommitteeId,
        members: &[usize],
        removed: usize,
        others: &[Phone],
    ) -> Result<AlertFigures> {
        for p in others {
            p.wait_connected(CONNECT_PATIENCE).await?;
        }
        let (w_org, w_member) = (others[0].client()?, others[1].client()?);
        let org = self.phones[0].client()?;
        let warehouse = w_org
            .create_committee(CommitteeMeta {
                name: "Warehouse committee".into(),
                workplace: "East warehouse".into(),
                industry: "Logistics".into(),
                region: "North".into(),
            })
            .await?;
        w_org
            .add_contact_from_relay(others[1].name.clone(), others[1].id)
            .await?;
        w_org
            .add_member(warehouse, others[1].id, Role::Member)
            .await?;
        let member_id = others[1].id;
        wait_until(PATIENCE, "the warehouse member's admission", async || {
            Ok(w_member
                .committee(warehouse)
                .await
                .is_ok_and(|s| s.members.contains_key(&member_id)))
        })
        .await?;
        self.timeline.say(
            "a second committee forms on two more phones: the warehouse's organizer adds a member",
        );

        // The organizers link the two committees through a council, each
        // naming a delegate (here themselves).
        let council_name = "North logistics council".to_string();
        let proposal = org
            .propose_link(
                depot,
                others[0].id,
                warehouse,
                vec![self.phones[0].id],
                LinkPolicy::Forward,
                council_name.clone(),
            )
            .await?;
        wait_until(PATIENCE, "the link proposal", async || {
            Ok(w_org
                .link_proposals()
                .await?
                .iter()
                .any(|(_, p)| p.proposal_id == proposal))
        })
        .await?;
        let council = w_org
            .accept_link(proposal, vec![others[0].id], LinkPolicy::Forward)
            .await?;
        wait_until(PATIENCE, "the council's log", async || {
            Ok(org
                .links()
                .await?
                .iter()
                .filter(|l| l.council == council)
                .count()
                == 2)
        })
        .await?;
        self.timeline.say(&format!(
            "the depot's organizer proposed a link, the warehouse's accepted: \"{council_name}\" formed, a committee of their delegates whose log records both links"
        ));

        // A network-wide emergency meeting from the depot's organizer.
        let now = now_ms();
        let alert = org
            .send_alert(
                depot,
                AlertDraft {
                    kind: AlertKind::EmergencyMeeting,
                    scope: AlertScope::Network,
                    title: "Emergency meeting: management plans a lock-out".into(),
                    text: "Both sites. Bring your shift.".into(),
                    place: "Union hall".into(),
                    starts_at_ms: now + 30 * 60_000,
                    expires_at_ms: now + 3 * 3_600_000,
                    answers_wanted: true,
                },
            )
            .await?;
        self.timeline.say(
            "organizer raises a network alert: \"Emergency meeting: management plans a lock-out\", Union hall, in 30 minutes — signed with its identity key and checked on every phone, high priority, one sealed 1:1 message per member, on through the council",
        );
        let mut reached: Vec<(&str, &Client)> = members
            .iter()
            .filter(|&&m| m != 0)
            .map(|&m| Ok((self.phones[m].name.as_str(), self.phones[m].client()?)))
            .collect::<Result<_>>()?;
        reached.extend([
            (others[0].name.as_str(), w_org),
            (others[1].name.as_str(), w_member),
        ]);
        let mut latencies = Vec::new();
        for (name, client) in &reached {
            wait_until(PATIENCE, &format!("the alert on {name}"), async || {
                Ok(copies(client, alert).await? >= 1)
            })
            .await?;
            // Each phone's own record of when it stored the alert: the waits
            // here are one after another and would add up.
            if let Some(at) = stored_at(client, alert).await? {
                let ms = u64::try_from(at).unwrap_or(0).saturating_sub(now);
                latencies.push(Duration::from_millis(ms));
            }
        }
        // Every phone holds it once, whatever the number of paths; the phone
        // removed from the depot holds none.
        for (name, client) in &reached {
            let n = copies(client, alert).await?;
            if n != 1 {
                return Err(CliError::Other(format!("{name} holds the alert {n} times")));
            }
        }
        if let Ok(out) = self.phones[removed].client() {
            if copies(out, alert).await? != 0 {
                return Err(CliError::Other(format!(
                    "{}, removed from the committee, received the alert",
                    self.phones[removed].name
                )));
            }
        }
        self.timeline.say(&format!(
            "the alert is on all {} phones of both committees, once each (the warehouse's through its delegate in the council); the removed phone has none",
            reached.len()
        ));

        // Answers come in: the depot's to its organizer, the warehouse
        // member's to the warehouse's delegate, who delivered it to them.
        let depot_members: Vec<usize> = members.iter().copied().filter(|&m| m != 0).collect();
        for (i, &m) in depot_members.iter().enumerate() {
            let answer = if i % 3 == 2 {
                AlertAnswer::CannotCome
            } else {
                AlertAnswer::Coming
            };
            self.phones[m].client()?.answer_alert(alert, answer).await?;
            let want = i + 1;
            let status = wait_status(org, alert, want).await?;
            if i < 3 || want == depot_members.len() {
                self.timeline.say(&format!(
                    "{} answers {}; organizer's status: {} of {} answered (coming {}, cannot come {})",
                    self.phones[m].name,
                    if answer == AlertAnswer::Coming { "coming" } else { "cannot come" },
                    want,
                    status.recipients,
                    status.counts.get(&AlertAnswer::Coming).copied().unwrap_or(0),
                    status.counts.get(&AlertAnswer::CannotCome).copied().unwrap_or(0),
                ));
            }
        }
        w_member.answer_alert(alert, AlertAnswer::Coming).await?;
        w_org.answer_alert(alert, AlertAnswer::Coming).await?;
        let w_status = wait_status(w_org, alert, 1).await?;
        let o_status = wait_status(org, alert, depot_members.len() + 1).await?;
        let answered: usize =
            o_status.counts.values().sum::<usize>() + w_status.counts.values().sum::<usize>();
        self.timeline.say(&format!(
            "warehouse phones answer coming: the member's answer counted by the warehouse's delegate ({} of {}), the delegate's by the depot's organizer ({} of {})",
            w_status.counts.values().sum::<usize>(),
            w_status.recipients,
            o_status.counts.values().sum::<usize>(),
            o_status.recipients,
        ));
        // The warehouse delegate's device sends its count back through the
        // council: the depot's organizer sees every committee's answers, as
        // numbers.
        let network = wait_committee(org, alert, warehouse).await?;
        let names = [
            (depot, "depot"),
            (council, "council"),
            (warehouse, "warehouse"),
        ];
        let per: Vec<String> = network
            .committees
            .iter()
            .map(|c| {
                let name = names
                    .iter()
                    .find(|(id, _)| *id == c.committee)
                    .map_or("another committee", |(_, n)| n);
                let n = |a| c.counts.get(&a).copied().unwrap_or(0);
                format!(
                    "{name}: coming {}, cannot come {}, not yet {}",
                    n(AlertAnswer::Coming),
                    n(AlertAnswer::CannotCome),
                    c.not_answered
                )
            })
            .collect();
        self.timeline.say(&format!(
            "counts come back through the council, numbers only: the depot's organizer sees per committee {}",
            per.join("; ")
        ));
        Ok(AlertFigures {
            alerted: reached.len(),
            answered,
            linked: 2,
            latencies,
        })
    }
}

/// Waits until `client` counts at least `want` answers to `alert`.
async fn wait_status(
    client: &Client,
    alert: AlertId,
    want: usize,
) -> Result<rankfile_core::alert::AlertStatus> {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let status = client.alert_status(alert).await?;
        if status.counts.values().sum::<usize>() >= want {
            return Ok(status);
        }
        if Instant::now() > deadline {
            return Err(CliError::Other(format!(
                "only {} of {want} answers counted within {} s",
                status.counts.values().sum::<usize>(),
                PATIENCE.as_secs()
            )));
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Waits until `client`'s status of `alert` holds an answer counted in
/// `committee` (sent back from the device that delivered it there).
async fn wait_committee(
    client: &Client,
    alert: AlertId,
    committee: CommitteeId,
) -> Result<rankfile_core::alert::AlertStatus> {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let status = client.alert_status(alert).await?;
        let counted = status
            .committees
            .iter()
            .any(|c| c.committee == committee && c.counts.values().sum::<usize>() > 0);
        if counted {
            return Ok(status);
        }
        if Instant::now() > deadline {
            return Err(CliError::Other(format!(
                "the warehouse's answers did not come back within {} s",
                PATIENCE.as_secs()
            )));
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Polls `done` until it holds or `patience` runs out.
async fn wait_until(
    patience: Duration,
    what: &str,
    done: impl AsyncFn() -> Result<bool>,
) -> Result<()> {
    let deadline = Instant::now() + patience;
    loop {
        if done().await? {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(CliError::Other(format!(
                "{what} did not arrive within {} s",
                patience.as_secs()
            )));
        }
        tokio::time::sleep(POLL).await;
    }
}
