//! `rankfile send`: encrypt and commit one message, connect, and wait until
//! the relay says it holds it durably. A message that could not be handed over
//! stays in the outbox and goes with the next networked command.

use std::time::{Duration, Instant};

use rankfile_core::transport::{ClientEvent, DeliveryState};
use serde_json::json;
use tokio::sync::broadcast::error::RecvError;

use super::contact::by_name;
use crate::cli::SendArgs;
use crate::error::{CliError, Result};
use crate::home::Home;
use crate::net;
use crate::output::{Output, Style};

/// Runs `rankfile send`.
pub fn run(home: &Home, args: &SendArgs, out: &Output) -> Result<()> {
    let relay = home.relay(&args.relay)?;
    let rt = net::runtime()?;
    let mut started = Instant::now();
    let (sent, to, name) = rt.block_on(async {
        let client = home.open(Some(&relay))?;
        let named = async {
            let to = by_name(&client, &args.account_id).await?;
            Ok::<_, CliError>((to, client.contact(to).await?.name))
        }
        .await;
        let (to, name) = match named {
            Ok(n) => n,
            Err(e) => {
                let _ = client.close().await;
                return Err(e);
            }
        };
        started = Instant::now();
        let (client, mut events) = net::connect(client, &relay, out).await?;
        let result = async {
            let envelope = client.send_text(to, args.text.clone()).await?;
            let id = envelope.envelope_id;
            let confirmed = out
                .wait(
                    "waiting for the relay to store it",
                    tokio::time::timeout(Duration::from_secs(args.timeout), async {
                        loop {
                            match events.recv().await {
                                Ok(ClientEvent::Delivery {
                                    envelope_id, state, ..
                                }) if envelope_id == id => match state {
                                    DeliveryState::Sent => return Ok(()),
                                    DeliveryState::Failed { reason } => {
                                        return Err(CliError::RelayRefused(reason))
                                    }
                                    _ => {}
                                },
                                Ok(_) | Err(RecvError::Lagged(_)) => {}
                                Err(RecvError::Closed) => {
                                    return Err(CliError::Other(
                                        "the client stopped before the relay answered".into(),
                                    ))
                                }
                            }
                        }
                    }),
                )
                .await;
            match confirmed {
                Ok(r) => r.map(|()| envelope.sealed),
                Err(_) => Err(CliError::RelayUnreachable {
                    addr: relay.addr.to_string(),
                    reason: format!(
                        "no confirmation within {} s; the message stays queued and goes with the next `rankfile send` or `rankfile watch`",
                        args.timeout
                    ),
                }),
            }
        }
        .await;
        let _ = client.close().await;
        result.map(|sent| (sent, to, name))
    })?;
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    out.emit(
        || {
            format!(
                "{} to {name} ({to}), {} — stored by the relay in {ms:.0} ms",
                out.paint(Style::Good, "sent"),
                if sent {
                    "sealed sender: the relay does not know it is from you"
                } else {
                    "first message: identified to the relay"
                },
            )
        },
        || json!({ "sent": true, "to": to.to_string(), "sealed": sent, "ms": ms }),
    );
    Ok(())
}
