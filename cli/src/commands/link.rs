//! `rankfile link propose|accept|decline|list`: links between committees.
//! Two organizers agree — one proposes, naming its delegates and how alerts
//! from the council enter its committee; the other accepts, naming its own —
//! and the delegates of both meet in a council: itself a committee (its
//! `committee members` and `channel` commands work on it) whose log records
//! each link. Network alerts cascade along links. Who is linked is in the
//! councils' logs only; the relay sees 1:1 ciphertext.

use rankfile_core::committee::{CommitteeId, CommitteeState, LinkPolicy, Role};
use rankfile_core::link::{LinkInfo, LinkProposal, PROPOSAL_ID_LEN};
use rankfile_core::transport::Client;
use rankfile_core::AccountId;
use serde_json::json;

use super::alert::committee_name;
use super::contact::by_name;
use crate::cli::{
    AlertListArgs, LinkAcceptArgs, LinkCommand, LinkPolicyArg, LinkProposeArgs, LinkRefArgs,
};
use crate::error::{CliError, Result};
use crate::home::Home;
use crate::names::{self, short_committee};
use crate::output::{table, Output, Style};

/// Runs a `rankfile link` subcommand.
pub fn run(home: &Home, cmd: LinkCommand, out: &Output) -> Result<()> {
    match cmd {
        LinkCommand::Propose(args) => propose(home, &args, out),
        LinkCommand::Accept(args) => accept(home, &args, out),
        LinkCommand::Decline(args) => decline(home, &args, out),
        LinkCommand::List(args) => list(home, &args, out),
    }
}

/// The core's policy for the typed one.
fn policy_of(p: LinkPolicyArg) -> LinkPolicy {
    match p {
        LinkPolicyArg::Forward => LinkPolicy::Forward,
        LinkPolicyArg::Hold => LinkPolicy::Hold,
    }
}

/// How a policy reads.
pub fn policy_word(p: LinkPolicy) -> &'static str {
    match p {
        LinkPolicy::Forward => "forward",
        LinkPolicy::Hold => "hold",
    }
}

/// The members `texts` name in `c`, each a delegate or organizer there (only
/// they may carry alerts between a committee and its council).
async fn delegates(a: &Client, c: &CommitteeState, texts: &[String]) -> Result<Vec<AccountId>> {
    let mut out = Vec::new();
    for t in texts {
        let id = names::member(a, c, t).await?;
        match c.members.get(&id).map(|m| m.role) {
            Some(r) if r >= Role::Delegate => {}
            Some(r) => {
                return Err(CliError::Usage(format!(
                    "`{t}` is a {r} of {}; delegates to a council must be delegates or organizers (`rankfile committee role {} {t} delegate` first)",
                    c.meta.name,
                    short_committee(&c.id)
                )))
            }
            None => {
                return Err(CliError::Usage(format!(
                    "`{t}` is not a member of {}",
                    c.meta.name
                )))
            }
        }
        if !out.contains(&id) {
            out.push(id);
        }
    }
    Ok(out)
}

/// Refuses plainly unless this account is an organizer of `c`.
async fn must_organize(a: &Client, c: &CommitteeState) -> Result<()> {
    if c.members.get(&a.id().await?).map(|m| m.role) == Some(Role::Organizer) {
        Ok(())
    } else {
        Err(CliError::NotAllowed(format!(
            "only organizers of {} ({}) link it with other committees",
            c.meta.name,
            short_committee(&c.id)
        )))
    }
}

fn propose(home: &Home, args: &LinkProposeArgs, out: &Output) -> Result<()> {
    let target = names::full_committee_id(&args.target)?;
    let policy = policy_of(args.policy);
    let council = args.council.trim().to_string();
    let (c, to, id) = super::online(home, &args.relay, out, async |online| {
        let a = &online.client;
        let c = names::committee(a, &args.committee).await?;
        must_organize(a, &c).await?;
        let to = by_name(a, &args.to).await?;
        let dels = delegates(a, &c, &args.delegates).await?;
        if c.id == target {
            return Err(CliError::Usage(
                "a committee cannot link with itself".into(),
            ));
        }
        let id = online
            .client
            .propose_link(c.id, to, target, dels, policy, council.clone())
            .await?;
        Ok((c, to, id))
    })?;
    let short = names::short(&id);
    out.emit(
        || {
            format!(
                "{} to link {} ({}) with {}: sent to {}, sealed.\n\
                 Once they accept (`rankfile link accept {short}` on their device), your delegates \
                 are in the council and `rankfile link list` shows it.",
                out.paint(Style::Good, "proposed"),
                c.meta.name,
                short_committee(&c.id),
                short_committee(&target),
                names::short_account(&to),
            )
        },
        || {
            json!({ "type": "link_proposed", "proposal_id": hex::encode(id), "short": short,
                    "committee_id": c.id.to_string(), "target": target.to_string(),
                    "to": to.to_string(), "policy": policy_word(policy) })
        },
    );
    Ok(())
}

/// The proposal `text` names among those waiting.
async fn proposal(a: &Client, text: &str) -> Result<(AccountId, LinkProposal)> {
    let all = a.link_proposals().await?;
    let wanted = text.trim();
    names::by_prefix(
        all.iter()
            .map(|(f, p)| (p.proposal_id.as_slice(), (*f, p.clone()))),
        wanted,
        "proposal",
    )?
    .ok_or_else(|| {
        CliError::Usage(format!(
            "no link proposal `{wanted}` waits on this device; `rankfile link list` shows them"
        ))
    })
}

fn accept(home: &Home, args: &LinkAcceptArgs, out: &Output) -> Result<()> {
    let policy = policy_of(args.policy);
    let (council, links) = super::online(home, &args.relay, out, async |online| {
        let a = &online.client;
        let (_, p) = proposal(a, &args.proposal).await?;
        let target = a.committee(p.target).await?;
        must_organize(a, &target).await?;
        let dels = delegates(a, &target, &args.delegates).await?;
        let pid = p.proposal_id;
        let council = online.client.accept_link(pid, dels, policy).await?;
        let state = online.client.committee(council).await?;
        Ok((state, online.client.links().await?))
    })?;
    let linked: Vec<&LinkInfo> = links.iter().filter(|l| l.council == council.id).collect();
    out.emit(
        || {
            format!(
                "{} council {} ({}): {} committees linked, {} members (the delegates and the organizers who linked them).\n\
                 Its delegates talk in `rankfile channel send {}/discussion …`; a `rankfile alert send --network` cascades through it.",
                out.paint(Style::Good, "linked:"),
                out.paint(Style::Bold, &council.meta.name),
                short_committee(&council.id),
                linked.len(),
                council.members.len(),
                short_committee(&council.id),
            )
        },
        || {
            json!({ "type": "link_accepted", "council_id": council.id.to_string(),
                    "short": short_committee(&council.id), "name": council.meta.name,
                    "committees": linked.iter().map(|l| l.committee.to_string()).collect::<Vec<_>>() })
        },
    );
    Ok(())
}

fn decline(home: &Home, args: &LinkRefArgs, out: &Output) -> Result<()> {
    let (from, p) = super::offline(home, async |a| {
        let (from, p) = proposal(a, &args.proposal).await?;
        a.decline_link(p.proposal_id).await?;
        Ok((from, p))
    })?;
    out.emit(
        || {
            format!(
                "{} the link proposal {} from {}; it is forgotten (they are not told)",
                out.paint(Style::Good, "declined"),
                names::short(&p.proposal_id),
                names::short_account(&from)
            )
        },
        || json!({ "type": "link_declined", "proposal_id": hex::encode(p.proposal_id) }),
    );
    Ok(())
}

/// What `link list` shows: every link, and proposals waiting.
struct Listing {
    committees: Vec<CommitteeState>,
    links: Vec<LinkInfo>,
    proposals: Vec<(AccountId, LinkProposal)>,
    people: std::collections::HashMap<AccountId, String>,
    me: AccountId,
}

fn list(home: &Home, args: &AlertListArgs, out: &Output) -> Result<()> {
    let look = async |a: &Client| {
        Ok::<_, CliError>(Listing {
            committees: names::all_committees(a).await?,
            links: a.links().await?,
            proposals: a.link_proposals().await?,
            people: names::contact_names(a).await?,
            me: a.id().await?,
        })
    };
    let l = if args.offline {
        super::offline(home, look)?
    } else {
        super::online(home, &args.relay, out, async |online| {
            look(&online.client).await
        })?
    };
    let name = |id: &CommitteeId| committee_name(&l.committees, id);
    let who = |ids: &[AccountId]| {
        ids.iter()
            .map(|d| names::person(&l.people, &l.me, d))
            .collect::<Vec<_>>()
            .join(", ")
    };
    if out.is_json() {
        for link in &l.links {
            println!(
                "{}",
                json!({ "type": "link", "council_id": link.council.to_string(),
                        "council": name(&link.council), "committee_id": link.committee.to_string(),
                        "committee": name(&link.committee),
                        "delegates": link.delegates.iter().map(ToString::to_string).collect::<Vec<_>>(),
                        "policy": policy_word(link.policy) })
            );
        }
        for (from, p) in &l.proposals {
            println!(
                "{}",
                json!({ "type": "link_proposal", "proposal_id": hex::encode(p.proposal_id),
                        "short": names::short(&p.proposal_id), "from": from.to_string(),
                        "committee_id": p.committee_id.to_string(), "target": p.target.to_string(),
                        "target_name": name(&p.target), "policy": policy_word(p.policy),
                        "council_name": p.council_name,
                        "delegates": p.delegates.iter().map(|(d, _)| d.to_string()).collect::<Vec<_>>() })
            );
        }
        return Ok(());
    }
    if l.links.is_empty() && l.proposals.is_empty() {
        println!(
            "no links yet; an organizer proposes one with `rankfile link propose COMMITTEE TARGET_ID --to ORGANIZER --delegate MEMBER`"
        );
        return Ok(());
    }
    if !l.links.is_empty() {
        let mut rows = vec![vec![
            "COUNCIL".into(),
            "COMMITTEE".into(),
            "DELEGATES".into(),
            "ALERTS".into(),
        ]];
        for link in &l.links {
            rows.push(vec![
                name(&link.council),
                name(&link.committee),
                who(&link.delegates),
                policy_word(link.policy).into(),
            ]);
        }
        println!("{}", table(&rows));
    }
    for (from, p) in &l.proposals {
        let dels: Vec<AccountId> = p.delegates.iter().map(|(d, _)| *d).collect();
        println!(
            "{} {}: {} proposes to link committee {} with {}{} (their delegates: {}; alerts {}).\n  \
             accept with: rankfile link accept {} --delegate MEMBER",
            out.paint(Style::Bold, "proposal"),
            names::short(&p.proposal_id),
            names::person(&l.people, &l.me, from),
            short_committee(&p.committee_id),
            name(&p.target),
            if p.council_name.trim().is_empty() {
                String::new()
            } else {
                format!(" in a new council `{}`", p.council_name)
            },
            who(&dels),
            policy_word(p.policy),
            names::short(&p.proposal_id),
        );
    }
    Ok(())
}

/// The short form of a proposal ID (for `watch`).
pub fn short_proposal(id: &[u8; PROPOSAL_ID_LEN]) -> String {
    names::short(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_policies_are_the_core_ones() {
        assert_eq!(policy_of(LinkPolicyArg::Forward), LinkPolicy::Forward);
        assert_eq!(policy_of(LinkPolicyArg::Hold), LinkPolicy::Hold);
        assert_eq!(policy_word(LinkPolicy::Hold), "hold");
    }
}
