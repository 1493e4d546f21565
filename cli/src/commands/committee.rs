//! `rankfile committee create|list|add|members|remove|role`: committees on
//! this device. Every change is a signed entry of the committee's log, made by
//! the core and sent to the members before the command exits; the relay sees
//! only 1:1 ciphertext, never a committee's name, members or roles.

use rankfile_core::committee::{CommitteeMeta, CommitteeState, Role};
use rankfile_core::{AccountId, CommitteeChange};
use serde_json::{json, Value};

use super::contact::by_name;
use crate::cli::{
    AddMemberArgs, CommitteeCommand, CommitteeRefArgs, CreateCommitteeArgs, MemberArgs, RelayOpts,
    RoleArg, RoleArgs,
};
use crate::error::{CliError, Result};
use crate::home::Home;
use crate::names::{self, short_committee};
use crate::output::{table, Output, Style};

/// Runs a `rankfile committee` subcommand.
pub fn run(home: &Home, cmd: CommitteeCommand, out: &Output) -> Result<()> {
    match cmd {
        CommitteeCommand::Create(args) => create(home, &args, out),
        CommitteeCommand::List => list(home, out),
        CommitteeCommand::Add(args) => add(home, &args, out),
        CommitteeCommand::Members(args) => members(home, &args, out),
        CommitteeCommand::Remove(args) => remove(home, &args, out),
        CommitteeCommand::Role(args) => role(home, &args, out),
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
    let mut account = home.open()?;
    let meta = CommitteeMeta {
        name: args.name.trim().to_string(),
        workplace: args.workplace.clone(),
        industry: args.industry.clone(),
        region: args.region.clone(),
    };
    let id = account.create_committee(meta)?;
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
    let mut account = home.open()?;
    let me = account.id();
    let all = names::all_committees(&mut account)?;
    if out.is_json() {
        for c in &all {
            println!("{}", summary_json(c, &me));
        }
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
        let (text, member) = (args.committee.clone(), args.member.clone());
        let (committee, who, name) = online
            .client
            .with_account(move |a| {
                let c = names::committee(a, &text)?;
                let who = by_name(a, &member)?;
                let name = a.contact(&who)?.name;
                Ok::<_, CliError>((c, who, name))
            })
            .await??;
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
        let (text, member) = (committee.to_string(), member.to_string());
        let (c, who, name) = online
            .client
            .with_account(move |a| {
                let c = names::committee(a, &text)?;
                let who = names::member(a, &c, &member)?;
                let people = names::contact_names(a)?;
                let name = names::person(&people, &a.id(), &who);
                Ok::<_, CliError>((c, who, name))
            })
            .await??;
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
    let text = args.committee.clone();
    let look = move |a: &mut rankfile_core::Account| {
        let c = names::committee(a, &text)?;
        let people = names::contact_names(a)?;
        let me = a.id();
        let rows: Vec<(AccountId, String, Role)> = c
            .members
            .iter()
            .map(|(id, m)| (*id, names::person(&people, &me, id), m.role))
            .collect();
        Ok::<_, CliError>((c, me, rows))
    };
    let (c, me, rows) = if args.offline {
        look(&mut home.open()?)?
    } else {
        super::online(home, &args.relay, out, async |online| {
            online.client.with_account(look).await?
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
    println!("{}", lines.join("\n"));
    Ok(())
}
