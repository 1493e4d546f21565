//! `rankfile contact add|list|safety|verify`: contacts from the relay's prekey
//! directory, and verification by safety number (the other phone's scannable
//! code, or the 60 digits compared by eye).

use rankfile_core::transport::Client;
use rankfile_core::{AccountId, Contact, SafetyNumber};
use serde_json::json;

use super::parse_account_id;
use crate::cli::{ContactCommand, VerifyArgs};
use crate::error::{CliError, Result};
use crate::home::Home;
use crate::net;
use crate::output::{table, Output, Style};

/// Runs a `rankfile contact` subcommand.
pub fn run(home: &Home, cmd: ContactCommand, out: &Output) -> Result<()> {
    match cmd {
        ContactCommand::Add {
            name,
            account_id,
            relay,
        } => {
            let them = parse_account_id(&account_id)?;
            let relay = home.relay(&relay)?;
            let rt = net::runtime()?;
            let (added, safety) = rt.block_on(async {
                let client = home.open(Some(&relay))?;
                let (client, _events) = net::connect(client, &relay, out).await?;
                let added = out
                    .wait(
                        "fetching their keys from the relay",
                        client.add_contact_from_relay(name.clone(), them),
                    )
                    .await;
                let safety = match &added {
                    Ok(id) => {
                        let id = *id;
                        Some(client.safety_number(id).await)
                    }
                    Err(_) => None,
                };
                let _ = client.close().await;
                Ok::<_, CliError>((added?, safety.transpose()?))
            })?;
            out.emit(
                || {
                    let mut s = format!(
                        "{} {name} ({added})",
                        out.paint(Style::Good, "added"),
                    );
                    if let Some(sn) = &safety {
                        s.push_str(&format!(
                            "\nsafety number: {}\nCompare it with {name} in person, then run `rankfile contact verify {added} --digits \"…\"`.",
                            sn.digits
                        ));
                    }
                    s
                },
                || {
                    json!({
                        "added": added.to_string(),
                        "name": name,
                        "safety_number": safety.as_ref().map(|s| s.digits.clone()),
                    })
                },
            );
            Ok(())
        }
        ContactCommand::List => super::offline(home, async |c| list(c, out).await),
        ContactCommand::Safety { account_id } => {
            let them = parse_account_id(&account_id)?;
            let (contact, sn) = super::offline(home, async |c| {
                Ok((c.contact(them).await?, c.safety_number(them).await?))
            })?;
            show_safety(&contact, &sn, out);
            Ok(())
        }
        ContactCommand::Verify(args) => verify(home, &args, out),
    }
}

async fn list(client: &Client, out: &Output) -> Result<()> {
    let contacts = client.contacts().await?;
    if out.is_json() {
        for c in &contacts {
            let mut line = contact_json(c);
            line["timer_secs"] = client.conversation_timer(c.account_id).await?.into();
            println!("{line}");
        }
        return Ok(());
    }
    if contacts.is_empty() {
        println!("no contacts yet; add one with `rankfile contact add NAME ACCOUNT_ID`");
        return Ok(());
    }
    let mut rows = vec![vec![
        "NAME".into(),
        "ACCOUNT".into(),
        "STATUS".into(),
        "TIMER".into(),
    ]];
    for c in &contacts {
        let timer = super::timer::show_duration(client.conversation_timer(c.account_id).await?);
        let status = if c.pending_successor.is_some() {
            out.paint(Style::Bad, "identity changed: check in person")
        } else if c.verified {
            out.paint(Style::Good, "verified")
        } else {
            out.paint(Style::Dim, "not verified")
        };
        rows.push(vec![
            c.name.clone(),
            c.account_id.to_string(),
            status,
            timer,
        ]);
    }
    println!("{}", table(&rows));
    Ok(())
}

fn contact_json(c: &Contact) -> serde_json::Value {
    json!({
        "name": c.name,
        "account_id": c.account_id.to_string(),
        "verified": c.verified,
        "identity_changed_to": c.pending_successor.map(|s| s.to_string()),
    })
}

fn show_safety(contact: &Contact, sn: &SafetyNumber, out: &Output) {
    out.emit(
        || {
            table(&[
                vec!["contact".into(), contact.name.clone()],
                vec!["account".into(), contact.account_id.to_string()],
                vec!["safety number".into(), out.paint(Style::Bold, &sn.digits)],
                vec!["scannable".into(), hex::encode(&sn.scannable)],
                vec![
                    "verified".into(),
                    if contact.verified { "yes" } else { "no" }.into(),
                ],
            ])
        },
        || {
            json!({
                "account_id": contact.account_id.to_string(),
                "name": contact.name,
                "safety_number": sn.digits,
                "scannable": hex::encode(&sn.scannable),
                "verified": contact.verified,
            })
        },
    );
}

fn verify(home: &Home, args: &VerifyArgs, out: &Output) -> Result<()> {
    let them = parse_account_id(&args.account_id)?;
    let (contact, how) = super::offline(home, async |c| {
        let contact = c.contact(them).await?;
        let how = match (&args.scanned, &args.digits) {
            (Some(scanned), _) => {
                let bytes = hex::decode(scanned.trim()).map_err(|_| {
                    CliError::Usage("--scanned takes the other phone's code in hex".into())
                })?;
                c.verify_contact(them, bytes).await?;
                "scanned code"
            }
            (None, Some(digits)) => {
                let ours = c.safety_number(them).await?;
                if !same_digits(&ours.digits, digits) {
                    return Err(CliError::SafetyMismatch);
                }
                c.mark_verified(them).await?;
                "digits compared by eye"
            }
            (None, None) => {
                return Err(CliError::Usage(
                    "pass --scanned HEX or --digits DIGITS".into(),
                ))
            }
        };
        Ok((contact, how))
    })?;
    out.emit(
        || {
            format!(
                "{} {} ({}) by {how}",
                out.paint(Style::Good, "verified"),
                contact.name,
                them
            )
        },
        || json!({ "verified": them.to_string(), "name": contact.name, "by": how }),
    );
    Ok(())
}

/// Whether two safety numbers are the same, ignoring spaces and dashes.
fn same_digits(ours: &str, theirs: &str) -> bool {
    let clean = |s: &str| -> String { s.chars().filter(char::is_ascii_digit).collect() };
    let (a, b) = (clean(ours), clean(theirs));
    !a.is_empty()
        && a == b
        && theirs
            .chars()
            .all(|c| c.is_ascii_digit() || c == ' ' || c == '-')
}

/// The account ID of a contact given by ID or by name.
pub(super) async fn by_name(client: &Client, text: &str) -> Result<AccountId> {
    if text.to_ascii_lowercase().starts_with("rf1") {
        return parse_account_id(text);
    }
    let matches: Vec<_> = client
        .contacts()
        .await?
        .into_iter()
        .filter(|c| c.name == text)
        .collect();
    match matches.as_slice() {
        [one] => Ok(one.account_id),
        [] => Err(CliError::Usage(format!(
            "no contact named `{}`",
            super::quoted(text)
        ))),
        _ => Err(CliError::Usage(format!(
            "several contacts are named `{text}`; use the account ID"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digits_compare_ignoring_spacing_only() {
        let ours = "12345 67890 11111";
        assert!(same_digits(ours, "123456789011111"));
        assert!(same_digits(ours, "12345-67890-11111"));
        assert!(!same_digits(ours, "12345 67890 11112"));
        assert!(!same_digits(ours, "12345 67890"));
        assert!(!same_digits(ours, "12345x67890 11111"));
        assert!(!same_digits("", ""));
    }
}
