//! `rankfile committee create|list|invite|join|add|members|remove|role`:
//! committees on this device. Every change is a signed entry of the
//! committee's log, made by the core and sent to the members before the
//! command exits; the relay sees only 1:1 ciphertext, never a committee's
//! name, members or roles. A join is a request to the organizer who made the
//! invite; their device admits it whenever it is online.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rankfile_core::committee::{CommitteeId, CommitteeMeta, CommitteeState, InviteToken, Role};
use rankfile_core::transport::Client;
use rankfile_core::{AccountId, CommitteeChange, PendingJoin};
use serde_json::{json, Value};

use super::contact::by_name;
use crate::cli::{
    AddMemberArgs, CommitteeCommand, CommitteeRefArgs, CreateCommitteeArgs, InviteArgs, JoinArgs,
    MemberArgs, RelayOpts, RevokeArgs, RoleArg, RoleArgs,
};
use crate::error::{CliError, Result};
use crate::home::{Home, RelayConfig};
use crate::names::{self, short_committee};
use crate::output::{table, Output, Style};

/// Runs a `rankfile committee` subcommand.
pub fn run(home: &Home, cmd: CommitteeCommand, out: &Output) -> Result<()> {
    match cmd {
        CommitteeCommand::Create(args) => create(home, &args, out),
        CommitteeCommand::List => list(home, out),
        CommitteeCommand::Invite(args) => invite(home, &args, out),
        CommitteeCommand::Join(args) => join(home, &args, out),
        CommitteeCommand::Add(args) => add(home, &args, out),
        CommitteeCommand::Members(args) => members(home, &args, out),
        CommitteeCommand::Remove(args) => remove(home, &args, out),
        CommitteeCommand::Role(args) => role(home, &args, out),
        CommitteeCommand::Revoke(args) => revoke(home, &args, out),
    }
}

/// The core's role for the typed one.
pub(super) fn role_of(r: RoleArg) -> Role {
    match r {
        RoleArg::Member => Role::Member,
        RoleArg::Delegate => Role::Delegate,
        RoleArg::Organizer => Role::Organizer,
    }
}

fn create(home: &Home, args: &CreateCommitteeArgs, out: &Output) -> Result<()> {
    let meta = CommitteeMeta {
        name: args.name.trim().to_string(),
        workplace: args.workplace.clone(),
        industry: args.industry.clone(),
        region: args.region.clone(),
    };
    let id = super::offline(home, async |c| Ok(c.create_committee(meta).await?))?;
    let short = short_committee(&id);
    out.emit(
        || {
            format!(
                "{} committee {} ({short}); you are its organizer and only member.\n\
                 Invite members with `rankfile committee invite {short}`, or add a contact with \
                 `rankfile committee add {short} NAME`.",
                out.paint(Style::Good, "founded"),
                out.paint(Style::Bold, args.name.trim()),
            )
        },
        || json!({ "committee_id": id.to_string(), "short": short, "name": args.name.trim() }),
    );
    Ok(())
}

fn list(home: &Home, out: &Output) -> Result<()> {
    let (me, all, pending) = super::offline(home, async |c| {
        Ok((
            c.id().await?,
            names::all_committees(c).await?,
            c.pending_joins().await?,
        ))
    })?;
    if out.is_json() {
        for c in &all {
            println!("{}", summary_json(c, &me));
        }
        for p in &pending {
            println!("{}", pending_json(p));
        }
        return Ok(());
    }
    for p in &pending {
        println!(
            "{} committee {}: asked to join {}; admitted when the organizer ({}) is online",
            out.paint(Style::Dim, "waiting"),
            short_committee(&p.committee_id),
            ago(p.requested_at_ms),
            names::short_account(&p.organizer)
        );
    }
    if all.is_empty() && !pending.is_empty() {
        return Ok(());
    }
    if all.is_empty() {
        println!(
            "no committees yet; found one with `rankfile committee create NAME`, or join one with `rankfile committee join LINK`"
        );
        return Ok(());
    }
    let mut rows = vec![vec![
        "ID".into(),
        "NAME".into(),
        "MEMBERS".into(),
        "CHANNELS".into(),
        "YOUR ROLE".into(),
    ]];
    for c in &all {
        rows.push(vec![
            short_committee(&c.id),
            c.meta.name.clone(),
            c.members.len().to_string(),
            c.channels.len().to_string(),
            your_role(c, &me, out),
        ]);
    }
    println!("{}", table(&rows));
    Ok(())
}

fn pending_json(p: &PendingJoin) -> Value {
    json!({
        "committee_id": p.committee_id.to_string(),
        "short": short_committee(&p.committee_id),
        "pending": true,
        "organizer": p.organizer.to_string(),
        "requested_at_ms": p.requested_at_ms,
    })
}

/// Milliseconds since the epoch, now.
fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// "5 minutes ago" for a time in milliseconds since the epoch.
fn ago(at_ms: i64) -> String {
    let secs = (i64::try_from(now_ms()).unwrap_or(i64::MAX) - at_ms).max(0) / 1000;
    match secs {
        0..=89 => "just now".into(),
        90..=5399 => format!("{} minutes ago", (secs + 30) / 60),
        5400..=129_599 => format!("{} hours ago", (secs + 1800) / 3600),
        _ => format!("{} days ago", (secs + 43_200) / 86_400),
    }
}

fn invite(home: &Home, args: &InviteArgs, out: &Output) -> Result<()> {
    let expires_at_ms = now_ms().saturating_add(u64::from(args.hours) * 3_600_000);
    let (committee, token) = super::online(home, &args.relay, out, async |online| {
        let c = names::committee(&online.client, &args.committee).await?;
        let token = online
            .client
            .create_invite(c.id, expires_at_ms, args.uses)
            .await?;
        Ok((c, token))
    })?;
    let link = token.to_link();
    out.emit(
        || {
            format!(
                "{} to {} ({}) for {} {} for {} hours:\n\n  {}\n\n\
                 Hand it over in person, or show it as a QR code (the code is this same text;\n\
                 it names the relay, so a new phone needs nothing else).\n\
                 Whoever holds it can ask to join; your device, or another organizer's it names\n\
                 ({} of them), admits them when online (`rankfile watch`, or `rankfile sync` now and then).",
                out.paint(Style::Good, "invite"),
                committee.meta.name,
                short_committee(&committee.id),
                args.uses,
                if args.uses == 1 { "person" } else { "people" },
                args.hours,
                out.paint(Style::Bold, &link),
                token.other_organizers.len(),
            )
        },
        || {
            json!({
                "link": link,
                "committee_id": committee.id.to_string(),
                "invite_id": token.invite_id.to_string(),
                "max_uses": args.uses,
                "expires_at_ms": expires_at_ms,
                "organizers": 1 + token.other_organizers.len(),
                "relay": token.relay.as_ref().map(|r| r.addr.to_string()),
            })
        },
    );
    Ok(())
}

fn join(home: &Home, args: &JoinArgs, out: &Output) -> Result<()> {
    let link = args.link.trim().to_string();
    // A typo is a usage error before anything goes to the network.
    let token = InviteToken::parse(&link).map_err(|e| {
        CliError::Usage(format!(
            "that is not an invite link ({e}); it looks like rankfile://join/…"
        ))
    })?;
    if token.is_expired(now_ms()) {
        return Err(CliError::Usage(
            "this invite has expired; ask the organizer for a new one".into(),
        ));
    }
    // A home that knows no relay yet takes the one the link names.
    if let Some(relay) = &token.relay {
        if args.relay.relay.is_none() && home.saved_relay()?.is_none() {
            home.save_relay(&RelayConfig {
                address: relay.addr,
                fingerprint: hex::encode(relay.fingerprint),
            })?;
        }
    }
    let wait = Duration::from_secs(args.wait);
    let (id, admitted) = super::online(home, &args.relay, out, async |online| {
        let id = online.client.join(&link).await?;
        if wait.is_zero() {
            return Ok((id, None));
        }
        // The request must be at the relay before the organizer can answer it.
        online.client.flush().await?;
        let admitted = out
            .wait(
                "waiting for the organizer's device to admit you",
                admitted(&online.client, id, wait),
            )
            .await?;
        Ok((id, Some(admitted)))
    })?;
    let short = short_committee(&id);
    match admitted {
        Some(Some(c)) => {
            out.emit(
                || {
                    format!(
                        "{} {} ({short}): {} members; you are a member.",
                        out.paint(Style::Good, "joined"),
                        c.meta.name,
                        c.members.len()
                    )
                },
                || json!({ "committee_id": id.to_string(), "short": short, "admitted": true, "name": c.meta.name }),
            );
            Ok(())
        }
        Some(None) => Err(CliError::NotYet(format!(
            "not admitted to committee {short} within {} s. The request stands: the organizer's device admits you whenever it is online; `rankfile committee list` shows when you are in",
            args.wait
        ))),
        None => {
            out.emit(
                || {
                    format!(
                        "{} to join committee {short}: the request went to the organizer ({}) and {} other organizer(s), sealed.\n\
                         You are in once one of their devices, online, admits you; `rankfile committee list` shows it then.",
                        out.paint(Style::Good, "asked"),
                        names::short_account(&token.organizer),
                        token.other_organizers.len()
                    )
                },
                || json!({ "committee_id": id.to_string(), "short": short, "admitted": false }),
            );
            Ok(())
        }
    }
}

/// Waits until this account is a member of `committee` (its whole log came
/// from the organizer who admitted it), or `patience` runs out.
async fn admitted(
    client: &Client,
    committee: CommitteeId,
    patience: Duration,
) -> Result<Option<CommitteeState>> {
    let me = client.id().await?;
    let mut events = client.subscribe();
    let deadline = tokio::time::Instant::now() + patience;
    loop {
        // Before the log arrives this device does not know the committee.
        if let Ok(state) = client.committee(committee).await {
            if state.members.contains_key(&me) {
                return Ok(Some(state));
            }
        }
        tokio::select! {
            _ = events.recv() => {}
            _ = tokio::time::sleep(Duration::from_millis(250)) => {}
            _ = tokio::time::sleep_until(deadline) => return Ok(None),
        }
    }
}

fn your_role(c: &CommitteeState, me: &AccountId, out: &Output) -> String {
    match c.members.get(me) {
        Some(m) => m.role.to_string(),
        None => out.paint(Style::Bad, "not a member"),
    }
}

fn summary_json(c: &CommitteeState, me: &AccountId) -> Value {
    json!({
        "committee_id": c.id.to_string(),
        "short": short_committee(&c.id),
        "name": c.meta.name,
        "workplace": c.meta.workplace,
        "industry": c.meta.industry,
        "region": c.meta.region,
        "members": c.members.len(),
        "channels": c.channels.len(),
        "role": c.members.get(me).map(|m| m.role.to_string()),
        "version": c.version,
    })
}

fn add(home: &Home, args: &AddMemberArgs, out: &Output) -> Result<()> {
    let role = role_of(args.role);
    let (committee, who, name, change) = super::online(home, &args.relay, out, async |online| {
        let client = &online.client;
        let committee = names::committee(client, &args.committee).await?;
        let who = by_name(client, &args.member).await?;
        let name = client.contact(who).await?.name;
        let change = online.client.add_member(committee.id, who, role).await?;
        Ok((committee, who, name, change))
    })?;
    let human = format!(
        "{} {name} ({}) to {} ({}) as {role}",
        out.paint(Style::Good, "added"),
        names::short_account(&who),
        committee.meta.name,
        short_committee(&committee.id),
    );
    report_change(out, human, "added", &committee, &who, &change);
    Ok(())
}

fn remove(home: &Home, args: &MemberArgs, out: &Output) -> Result<()> {
    let (committee, who, name, change) =
        change_member(home, &args.committee, &args.member, &args.relay, out, None)?;
    let human = format!(
        "{} {name} ({}) from {} ({}): the others start new channel keys before their next post, \
         so nothing posted from now on can be read on their device",
        out.paint(Style::Good, "removed"),
        names::short_account(&who),
        committee.meta.name,
        short_committee(&committee.id),
    );
    report_change(out, human, "removed", &committee, &who, &change);
    Ok(())
}

fn role(home: &Home, args: &RoleArgs, out: &Output) -> Result<()> {
    let role = role_of(args.role);
    let (committee, who, name, change) = change_member(
        home,
        &args.committee,
        &args.member,
        &args.relay,
        out,
        Some(role),
    )?;
    let human = format!(
        "{} {name} ({}) is now {role} in {} ({})",
        out.paint(Style::Good, "role changed:"),
        names::short_account(&who),
        committee.meta.name,
        short_committee(&committee.id),
    );
    report_change(out, human, "role", &committee, &who, &change);
    Ok(())
}

/// Online and caught up, finds the committee and the member, then removes
/// them (`role` is `None`) or gives them `role`.
fn change_member(
    home: &Home,
    committee: &str,
    member: &str,
    relay: &RelayOpts,
    out: &Output,
    role: Option<Role>,
) -> Result<(CommitteeState, AccountId, String, CommitteeChange)> {
    super::online(home, relay, out, async |online| {
        let client = &online.client;
        let c = names::committee(client, committee).await?;
        let who = names::member(client, &c, member).await?;
        let people = names::contact_names(client).await?;
        let name = names::person(&people, &client.id().await?, &who);
        let made = match role {
            None => online.client.remove_member(c.id, who).await?,
            Some(r) => online.client.change_role(c.id, who, r).await?,
        };
        Ok((c, who, name, made))
    })
}

/// Prints the outcome of a membership change, and whom it could not reach.
fn report_change(
    out: &Output,
    mut human: String,
    change_kind: &str,
    committee: &CommitteeState,
    who: &AccountId,
    change: &CommitteeChange,
) {
    if !change.unreachable.is_empty() {
        human.push_str(&format!(
            "\n{} member(s) have no session with you yet; they get the change from another member",
            change.unreachable.len()
        ));
    }
    out.emit(
        || human,
        || {
            json!({
                "committee_id": committee.id.to_string(),
                "member": who.to_string(),
                "change": change_kind,
                "sent_to": change.sent.len(),
                "unreachable": change.unreachable.iter().map(ToString::to_string).collect::<Vec<_>>(),
            })
        },
    );
}

fn members(home: &Home, args: &CommitteeRefArgs, out: &Output) -> Result<()> {
    let look = async |client: &Client| {
        let c = names::committee(client, &args.committee).await?;
        let people = names::contact_names(client).await?;
        let me = client.id().await?;
        let rows: Vec<(AccountId, String, Role)> = c
            .members
            .iter()
            .map(|(id, m)| (*id, names::person(&people, &me, id), m.role))
            .collect();
        Ok::<_, CliError>((c, me, rows))
    };
    let (c, me, rows) = if args.offline {
        super::offline(home, look)?
    } else {
        super::online(home, &args.relay, out, async |online| {
            look(&online.client).await
        })?
    };
    if out.is_json() {
        println!(
            "{}",
            json!({
                "committee": summary_json(&c, &me),
                "members": rows.iter().map(|(id, name, role)| json!({
                    "account_id": id.to_string(),
                    "name": name,
                    "role": role.to_string(),
                    "you": *id == me,
                })).collect::<Vec<_>>(),
                "channels": c.channels.iter().map(|(id, kind)| json!({
                    "channel_id": hex::encode(id),
                    "short": names::short(id),
                    "kind": names::kind_word(*kind),
                })).collect::<Vec<_>>(),
                "invites": c.invites.iter().map(|(id, i)| json!({
                    "invite_id": hex::encode(id.0),
                    "short": names::short(&id.0),
                    "uses": i.uses,
                    "max_uses": i.max_uses,
                    "expires_at_ms": i.expires_at_ms,
                    "revoked": i.revoked,
                })).collect::<Vec<_>>(),
            })
        );
        return Ok(());
    }
    let mut lines = vec![format!(
        "{} ({}), {} members{}",
        out.paint(Style::Bold, &c.meta.name),
        short_committee(&c.id),
        c.members.len(),
        [&c.meta.workplace, &c.meta.industry, &c.meta.region]
            .iter()
            .filter(|s| !s.is_empty())
            .map(|s| format!(", {s}"))
            .collect::<String>()
    )];
    if !c.members.contains_key(&me) {
        lines.push(out.paint(Style::Bad, "you are not a member of it (any more)"));
    }
    let mut table_rows = vec![vec!["NAME".into(), "ROLE".into(), "ACCOUNT".into()]];
    let mut sorted = rows;
    sorted.sort_by(|a, b| b.2.cmp(&a.2).then_with(|| a.1.cmp(&b.1)));
    for (id, name, role) in &sorted {
        table_rows.push(vec![name.clone(), role.to_string(), id.to_string()]);
    }
    lines.push(table(&table_rows));
    if c.channels.is_empty() {
        lines.push("no channels yet".into());
    } else {
        lines.push(format!(
            "channels: {}",
            c.channels
                .iter()
                .map(|(id, kind)| format!("{} ({})", names::short(id), names::kind_word(*kind)))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    let now = now_ms();
    let open: Vec<String> = c
        .invites
        .iter()
        .filter(|(_, i)| !i.revoked && i.uses < i.max_uses && i.expires_at_ms > now)
        .map(|(id, i)| {
            format!(
                "{} ({} of {} used, until {})",
                names::short(&id.0),
                i.uses,
                i.max_uses,
                crate::output::clock(i64::try_from(i.expires_at_ms).unwrap_or(i64::MAX))
            )
        })
        .collect();
    if !open.is_empty() {
        lines.push(format!(
            "open invites: {} (withdraw one with `rankfile committee revoke {} ID`)",
            open.join(", "),
            short_committee(&c.id)
        ));
    }
    println!("{}", lines.join("\n"));
    Ok(())
}

fn revoke(home: &Home, args: &RevokeArgs, out: &Output) -> Result<()> {
    let (c, invite) = super::online(home, &args.relay, out, async |online| {
        let wanted = args.invite.trim();
        let c = names::committee(&online.client, &args.committee).await?;
        let invite = names::by_prefix(
            c.invites
                .iter()
                .map(|(id, i)| (id.0.as_slice(), (*id, i.revoked))),
            wanted,
            "invite",
        )?
        .ok_or_else(|| {
            CliError::Usage(format!(
                "no invite `{wanted}` in {}; `rankfile committee members {}` lists the open ones",
                c.meta.name,
                short_committee(&c.id)
            ))
        })?;
        let (id, revoked) = invite;
        if revoked {
            return Err(CliError::Usage(format!(
                "invite {} was already withdrawn",
                names::short(&id.0)
            )));
        }
        online.client.revoke_invite(c.id, id).await?;
        Ok((c, id))
    })?;
    out.emit(
        || {
            format!(
                "{} invite {} of {} ({}): nobody is admitted from it any more",
                out.paint(Style::Good, "withdrew"),
                names::short(&invite.0),
                c.meta.name,
                short_committee(&c.id)
            )
        },
        || {
            json!({ "type": "invite_revoked", "committee_id": c.id.to_string(),
                    "invite_id": hex::encode(invite.0) })
        },
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_read_as_words() {
        let now = i64::try_from(now_ms()).expect("now fits");
        assert_eq!(ago(now), "just now");
        assert_eq!(
            ago(now + 60_000),
            "just now",
            "a clock ahead is not negative"
        );
        assert_eq!(ago(now - 10 * 60_000), "10 minutes ago");
        assert_eq!(ago(now - 5 * 3_600_000), "5 hours ago");
        assert_eq!(ago(now - 3 * 86_400_000), "3 days ago");
    }

    #[test]
    fn typed_roles_are_the_core_roles() {
        assert_eq!(role_of(RoleArg::Member), Role::Member);
        assert_eq!(role_of(RoleArg::Delegate), Role::Delegate);
        assert_eq!(role_of(RoleArg::Organizer), Role::Organizer);
    }
}
