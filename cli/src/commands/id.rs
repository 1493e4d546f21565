//! `rankfile id`: this account's ID, the identity key it is the hash of, and
//! the relay in use — what a contact needs to add and check this account.

use serde_json::json;

use crate::error::Result;
use crate::home::Home;
use crate::output::{table, Output, Style};

/// Runs `rankfile id`.
pub fn run(home: &Home, out: &Output) -> Result<()> {
    let (id, identity_key, device, contacts, messages) = super::offline(home, async |c| {
        Ok((
            c.id().await?,
            hex::encode(c.identity_key().await?),
            c.device_id().await?,
            c.contacts().await?.len(),
            c.message_count().await?,
        ))
    })?;
    let relay = home.saved_relay()?;
    out.emit(
        || {
            let mut rows = vec![
                vec!["account".into(), out.paint(Style::Bold, &id.to_string())],
                vec!["identity key".into(), identity_key.clone()],
                vec!["device".into(), device.to_string()],
                vec!["contacts".into(), contacts.to_string()],
                vec!["messages".into(), messages.to_string()],
            ];
            if let Some(r) = &relay {
                rows.push(vec!["relay".into(), r.address.to_string()]);
                rows.push(vec!["fingerprint".into(), r.fingerprint.clone()]);
            }
            let mut s = table(&rows);
            s.push_str(
                "\nThe account ID is the hash of the identity key: nobody can put another key behind it.",
            );
            s
        },
        || {
            json!({
                "account_id": id.to_string(),
                "identity_key": identity_key,
                "device_id": device,
                "contacts": contacts,
                "messages": messages,
                "relay": relay.as_ref().map(|r| json!({
                    "address": r.address.to_string(),
                    "fingerprint": r.fingerprint,
                })),
            })
        },
    );
    Ok(())
}
