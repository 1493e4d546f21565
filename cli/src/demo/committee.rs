//! The demo's committee chapter. The organizer founds a committee and makes
//! one invite; members join from its link and the organizer's phone admits
//! each as their request arrives; they hold a discussion in a channel (each
//! post encrypted once under its author's sender key, one upload fanned out
//! by the relay); the organizer removes an infiltrator, and the chapter
//! checks that the removed phone stores nothing posted after the removal
//! while every other phone stores every post exactly once.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use rankfile_core::committee::{
    ChannelId, ChannelKind, CommitteeId, CommitteeMeta, CommitteeState,
};

use super::report::latency_line;
use super::{Demo, NAMED_PHONES};
use crate::error::{CliError, Result};

/// Members who join the committee, at most: the chapter shows the mechanism,
/// and every pair of members opens a session, so it stays small however many
/// phones the demo has.
const MAX_JOINERS: usize = 7;
/// How long joins, changes and posts may take to reach every phone.
const PATIENCE: Duration = Duration::from_secs(60);
/// How often a wait looks at the phones' stores again.
const POLL: Duration = Duration::from_millis(20);
/// How long the invite admits newcomers.
const INVITE_VALID: Duration = Duration::from_secs(3600);

/// One channel post.
struct Posted {
    from: usize,
    body: String,
    at: Instant,
    /// The phones meant to read it (every member but its author at the time).
    to: Vec<usize>,
}

/// What the chapter did, for the summary.
pub(super) struct CommitteeFigures {
    /// The committee, its phones after the removal (the organizer first),
    /// and the removed one: the alert chapter goes on from here.
    pub committee: CommitteeId,
    pub members: Vec<usize>,
    pub removed: usize,
    pub joined: usize,
    pub posts: usize,
    pub stored: usize,
    /// Posts made after the removal, and how many the removed phone holds (0).
    pub after_removal: usize,
    pub removed_read: usize,
    pub latencies: Vec<Duration>,
}

impl CommitteeFigures {
    /// Summary lines.
    pub fn lines(&self) -> Vec<String> {
        vec![
            format!(
                "  {:<18}{} joined from one invite link, each admitted by the organizer's phone",
                "committee", self.joined
            ),
            format!(
                "  {:<18}{} posts, {} stored exactly once; the removed member holds {} of the {} posted after removal",
                "channel", self.posts, self.stored, self.removed_read, self.after_removal
            ),
            format!(
                "  {}",
                latency_line("latency post → stored (channel)", &self.latencies)
            ),
        ]
    }
}

impl Demo<'_> {
    /// The chapter; needs 3 phones (an organizer, a member, an infiltrator).
    pub(super) async fn committee_chapter(&mut self) -> Result<Option<CommitteeFigures>> {
        if self.phones.len() < 3 {
            self.timeline
                .say("committee chapter skipped: it needs 3 phones (--phones 3 or more)");
            return Ok(None);
        }
        let joiners: Vec<usize> = (1..self.phones.len()).take(MAX_JOINERS).collect();
        let infiltrator = *joiners.last().unwrap_or(&1);
        let committee = self.found_and_invite(&joiners).await?;
        let channel = self.phones[0]
            .client()?
            .create_channel(committee, ChannelKind::Discussion)
            .await?;
        let everyone: Vec<usize> = std::iter::once(0).chain(joiners.iter().copied()).collect();
        self.wait_for_state(&everyone, committee, "the new channel", |s| {
            s.channels.contains_key(&channel)
        })
        .await?;
        self.timeline.say(&format!(
            "organizer opened a discussion channel; the change reached all {} phones",
            everyone.len()
        ));

        // The discussion: the organizer first, then every member once.
        let mut posts = Vec::new();
        let mut members = everyone.clone();
        self.post(
            &mut posts,
            committee,
            channel,
            0,
            &members,
            "Agenda for Thursday: the pay claim, electing a delegate, the strike fund.".into(),
        )
        .await?;
        for &m in &joiners {
            let body = if m == infiltrator {
                "Who is bringing the list of names? What time does everyone get there?".to_string()
            } else {
                format!(
                    "{} here: the night shift backs the pay claim.",
                    self.phones[m].name
                )
            };
            self.post(&mut posts, committee, channel, m, &members, body)
                .await?;
        }
        self.wait_posts(&posts, channel).await?;
        let first_round = posts.len();
        self.timeline.say(&format!(
            "discussion: {first_round} posts, each stored on every other member's phone"
        ));

        // The infiltrator is found out and removed.
        let out_name = self.phones[infiltrator].name.clone();
        self.phones[0]
            .client()?
            .remove_member(committee, self.phones[infiltrator].id)
            .await?;
        let out_id = self.phones[infiltrator].id;
        members.retain(|&m| m != infiltrator);
        self.wait_for_state(&everyone, committee, "the removal", move |s| {
            !s.members.contains_key(&out_id)
        })
        .await?;
        self.timeline.say(&format!(
            "organizer removed {out_name} (the list of names reached management); every phone, {out_name}'s too, folded the signed removal"
        ));
        self.post(
            &mut posts,
            committee,
            channel,
            0,
            &members,
            "We removed a member who passed our list on. New meeting place: the union hall.".into(),
        )
        .await?;
        let speaker = joiners
            .iter()
            .copied()
            .find(|&m| m != infiltrator)
            .unwrap_or(0);
        self.post(
            &mut posts,
            committee,
            channel,
            speaker,
            &members,
            format!(
                "{}: understood, union hall it is.",
                self.phones[speaker].name
            ),
        )
        .await?;
        self.wait_posts(&posts, channel).await?;
        let refused = self.phones[infiltrator]
            .client()?
            .post(committee, channel, "Let me back in.".into())
            .await;
        if !matches!(refused, Err(rankfile_core::Error::NotACommitteeMember(_))) {
            return Err(CliError::Other(format!(
                "{out_name}'s phone was not refused as a non-member when it tried to post: {refused:?}"
            )));
        }
        self.timeline.say(&format!(
            "after the removal each poster started a new sender key and sent it only to the {} members who remain; {out_name}'s phone may not post (its own copy of the log says it is out)",
            members.len()
        ));

        // What every phone holds.
        let check = self.check_posts(&posts, channel).await?;
        let after_removal = posts.len() - first_round;
        let removed_read = check.held.get(&infiltrator).map_or(0, |bodies| {
            posts[first_round..]
                .iter()
                .filter(|p| bodies.contains(&p.body))
                .count()
        });
        if removed_read != 0 {
            return Err(CliError::Other(format!(
                "{out_name}'s phone holds {removed_read} posts made after its removal"
            )));
        }
        self.timeline.say(&format!(
            "checked every phone's channel: {} posts stored {} times, exactly once each; {out_name}'s phone holds none of the {after_removal} posted after the removal",
            posts.len(),
            check.stored
        ));
        Ok(Some(CommitteeFigures {
            committee,
            members,
            removed: infiltrator,
            joined: joiners.len(),
            posts: posts.len(),
            stored: check.stored,
            after_removal,
            removed_read,
            latencies: check.latencies,
        }))
    }

    /// The organizer founds the committee and makes one invite; the joiners
    /// ask to join from its link; the organizer's phone admits each.
    async fn found_and_invite(&mut self, joiners: &[usize]) -> Result<CommitteeId> {
        let org = self.phones[0].client()?;
        let committee = org
            .create_committee(CommitteeMeta {
                name: "Depot committee".into(),
                workplace: "North depot".into(),
                industry: "Logistics".into(),
                region: "North".into(),
            })
            .await?;
        let expires = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            + INVITE_VALID;
        let uses = u32::try_from(joiners.len()).unwrap_or(u32::MAX);
        let token = org
            .create_invite(
                committee,
                u64::try_from(expires.as_millis()).unwrap_or(u64::MAX),
                uses,
            )
            .await?;
        let link = token.to_link();
        self.timeline.say(&format!(
            "organizer founded \"Depot committee\" (a signed log only its members hold) and made an invite for {uses}: {}… (the QR code carries the same text)",
            link.get(..32).unwrap_or(&link)
        ));
        let started = Instant::now();
        for &m in joiners {
            self.phones[m].client()?.join(&link).await?;
        }
        let mut all = vec![0];
        all.extend_from_slice(joiners);
        let want = all.len();
        self.wait_for_state(&all, committee, "the admissions", move |s| {
            s.members.len() == want
        })
        .await?;
        let named: Vec<&str> = joiners
            .iter()
            .take(NAMED_PHONES)
            .map(|&m| self.phones[m].name.as_str())
            .collect();
        self.timeline.say(&format!(
            "{}{} joined from the link: each sent a sealed join request, the organizer's phone checked it against the log and admitted them ({:.0} ms for all)",
            named.join(", "),
            if joiners.len() > named.len() {
                format!(" and {} more", joiners.len() - named.len())
            } else {
                String::new()
            },
            started.elapsed().as_secs_f64() * 1000.0
        ));
        Ok(committee)
    }

    /// Posts `body` as phone `from` and notes who should read it.
    async fn post(
        &self,
        posts: &mut Vec<Posted>,
        committee: CommitteeId,
        channel: ChannelId,
        from: usize,
        members: &[usize],
        body: String,
    ) -> Result<()> {
        let at = Instant::now();
        self.phones[from]
            .client()?
            .post(committee, channel, body.clone())
            .await?;
        if from <= NAMED_PHONES {
            self.timeline
                .say(&format!("{} posts: \"{body}\"", self.phones[from].name));
        }
        posts.push(Posted {
            from,
            body,
            at,
            to: members.iter().copied().filter(|&m| m != from).collect(),
        });
        Ok(())
    }

    /// Waits until every phone in `phones` sees the committee as `done` says.
    async fn wait_for_state(
        &self,
        phones: &[usize],
        committee: CommitteeId,
        what: &str,
        done: impl Fn(&CommitteeState) -> bool,
    ) -> Result<()> {
        let deadline = Instant::now() + PATIENCE;
        for &p in phones {
            loop {
                // A phone not yet admitted does not know the committee at all.
                let state = self.phones[p].client()?.committee(committee).await;
                if state.as_ref().is_ok_and(&done) {
                    break;
                }
                if Instant::now() > deadline {
                    return Err(CliError::Other(format!(
                        "{what} did not reach {} within {} s",
                        self.phones[p].name,
                        PATIENCE.as_secs()
                    )));
                }
                tokio::time::sleep(POLL).await;
            }
        }
        Ok(())
    }

    /// Waits until every post is stored on each phone meant to read it.
    async fn wait_posts(&self, posts: &[Posted], channel: ChannelId) -> Result<()> {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let check = self.check_posts(posts, channel).await?;
            if check.missing.is_empty() {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(CliError::Other(format!(
                    "channel posts lost: {}",
                    check.missing.join("; ")
                )));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Reads every phone's channel and compares it with the posts.
    async fn check_posts(&self, posts: &[Posted], channel: ChannelId) -> Result<PostCheck> {
        let mut check = PostCheck {
            held: HashMap::new(),
            missing: Vec::new(),
            stored: 0,
            latencies: Vec::new(),
        };
        for phone in &self.phones {
            let Ok(client) = phone.client() else { continue };
            let incoming = client.channel_history(channel, None, u32::MAX).await?;
            let arrivals: HashMap<i64, Instant> = self
                .tracker
                .channel_arrivals(phone.index)
                .into_iter()
                .collect();
            let mut held: HashMap<&str, usize> = HashMap::new();
            for m in incoming.iter().filter(|m| !m.outgoing) {
                *held.entry(m.body.as_str()).or_default() += 1;
            }
            for p in posts.iter().filter(|p| p.to.contains(&phone.index)) {
                let copies = held.get(p.body.as_str()).copied().unwrap_or(0);
                if copies != 1 {
                    check.missing.push(format!(
                        "\"{}\" by {} is on {} {copies} times",
                        p.body, self.phones[p.from].name, phone.name
                    ));
                    continue;
                }
                check.stored += 1;
                let stored = incoming
                    .iter()
                    .find(|m| m.body == p.body && !m.outgoing)
                    .and_then(|m| arrivals.get(&m.id));
                if let Some(at) = stored {
                    check.latencies.push(at.saturating_duration_since(p.at));
                }
            }
            check.held.insert(
                phone.index,
                incoming
                    .into_iter()
                    .filter(|m| !m.outgoing)
                    .map(|m| m.body)
                    .collect(),
            );
        }
        Ok(check)
    }
}

/// What the phones' channels hold against the posts.
struct PostCheck {
    /// The incoming bodies on each phone.
    held: HashMap<usize, Vec<String>>,
    /// Posts not stored exactly once on a phone meant to read them.
    missing: Vec<String>,
    /// Copies stored where they should be.
    stored: usize,
    latencies: Vec<Duration>,
}
