//! `rankfile init`: a new identity in a new encrypted store, the relay saved,
//! and — when a relay is given — a first connection that publishes the
//! prekeys, so that others can add this account at once.

use serde_json::json;

use crate::cli::InitArgs;
use crate::error::{CliError, Result};
use crate::home::{relay_address, Home, RelayConfig};
use crate::net;
use crate::output::{Output, Style};

/// Runs `rankfile init`.
pub fn run(home: &Home, args: &InitArgs, out: &Output) -> Result<()> {
    if home.exists() {
        return Err(CliError::HomeExists(home.dir().to_path_buf()));
    }
    let relay = match (&args.relay.relay, &args.relay.fingerprint) {
        (Some(addr), Some(fp)) => Some((relay_address(*addr, fp)?, fp.clone())),
        (None, None) => None,
        _ => {
            return Err(CliError::Usage(
                "--relay and --fingerprint go together".into(),
            ))
        }
    };
    let passphrase = home.passphrase(true)?;
    let rt = net::runtime()?;
    let mut published = false;
    let mut warning = None;
    let id = rt.block_on(async {
        let client = home.create(&passphrase, relay.as_ref().map(|(a, _)| a))?;
        drop(passphrase);
        let id = client.id().await?;
        if let Some((address, fingerprint)) = &relay {
            home.save_relay(&RelayConfig {
                address: address.addr,
                fingerprint: fingerprint.to_lowercase(),
            })?;
        }
        match &relay {
            Some((address, _)) => match net::connect(client, address, out).await {
                Ok((client, _)) => {
                    published = true;
                    let _ = client.close().await;
                }
                Err(e) => warning = Some((address.addr.to_string(), e)),
            },
            None => client.close().await?,
        }
        Ok::<_, CliError>(id)
    })?;
    out.emit(
        || {
            let mut s = format!(
                "{} {}\n{:<11}{}\n{:<11}{}",
                out.paint(Style::Good, "created"),
                home.dir().display(),
                "account",
                out.paint(Style::Bold, &id.to_string()),
                "relay",
                match (published, warning.is_some()) {
                    (true, _) => "prekeys published; others can add you now",
                    (false, true) => "saved, but not reached (see below)",
                    (false, false) => {
                        "not connected yet (pass --relay and --fingerprint to a networked command)"
                    }
                }
            );
            s.push_str(
                "\nGive your account ID to your contacts, then compare safety numbers in person.",
            );
            s
        },
        || json!({ "home": home.dir(), "account_id": id.to_string(), "published": published }),
    );
    match warning {
        // The home exists; only the relay failed. Said once, with the
        // relay's exit code.
        Some((addr, e)) => Err(CliError::CreatedOffline {
            addr,
            reason: match e {
                CliError::RelayUnreachable { reason, .. } => reason,
                other => other.to_string(),
            },
        }),
        None => Ok(()),
    }
}
