//! Push wake-ups, the device's side: the endpoint URL the phone's push
//! distributor (UnifiedPush, Web Push) gave it is remembered in the account's
//! settings and registered with the relay after every login and whenever it
//! changes. When an alert waits for this device while it is not connected, the
//! relay posts an empty wake-up to that URL; the app then starts its `Client`,
//! which connects and fetches as usual. The wake-up says nothing, so there is
//! nothing in it to read or check.

use rankfile_proto::v1 as pb;
use tokio::sync::oneshot;

use super::actor::AccountHandle;
use super::client::{Client, Command};
use super::link::Link;
use crate::error::{Error, Result};
use crate::settings;

impl Client {
    /// Registers this device's push endpoint (`Some(url)`), or clears it
    /// (`None`, or an empty URL). Remembered in the account and sent to the
    /// relay now when connected, else after the next login. The relay refuses
    /// URLs it will not post to (not https, userinfo, too long, a local
    /// address): when connected, that refusal comes back as [`Error::Relay`]
    /// and the previous endpoint stays; after a login, a refused endpoint is
    /// cleared on both sides.
    pub async fn set_push_endpoint(&self, url: Option<String>) -> Result<()> {
        let value = url.unwrap_or_default();
        let previous = self
            .account
            .call(move |a| {
                let conn = a.store.conn();
                let previous = settings::push_endpoint(conn)?;
                settings::set_push_endpoint(conn, &value)?;
                Ok::<_, Error>((previous, value))
            })
            .await??;
        let (reply, rx) = oneshot::channel();
        if self
            .commands
            .send(Command::SyncPushEndpoint { reply })
            .await
            .is_err()
        {
            // The manager has stopped; the next start sends it.
            return Ok(());
        }
        match rx.await {
            Ok(Err(e @ Error::Relay { .. })) => {
                let (previous, refused) = previous;
                self.account
                    .call(move |a| {
                        let conn = a.store.conn();
                        match previous {
                            Some(p)
                                if settings::push_endpoint(conn)?.as_ref() == Some(&refused) =>
                            {
                                settings::set_push_endpoint(conn, &p)
                            }
                            _ => settings::forget_push_endpoint(conn, &refused),
                        }
                    })
                    .await??;
                Err(e)
            }
            // Offline, or the connection broke: it goes after the next login.
            _ => Ok(()),
        }
    }

    /// This device's push endpoint as last set (`None` once cleared, even
    /// before the relay has confirmed the clear).
    pub async fn push_endpoint(&self) -> Result<Option<String>> {
        let url = self
            .account
            .call(|a| settings::push_endpoint(a.store.conn()))
            .await??;
        Ok(url.filter(|u| !u.is_empty()))
    }
}

/// Sends the relay the remembered endpoint (or clear), if there is one; a
/// confirmed clear is then forgotten.
pub(super) async fn sync(account: &AccountHandle, link: &Link) -> Result<()> {
    let Some(url) = account
        .call(|a| settings::push_endpoint(a.store.conn()))
        .await??
    else {
        return Ok(());
    };
    send(link, &url).await?;
    if url.is_empty() {
        account
            .call(move |a| settings::forget_push_endpoint(a.store.conn(), &url))
            .await??;
    }
    Ok(())
}

async fn send(link: &Link, url: &str) -> Result<()> {
    match link
        .request(pb::client_frame::Body::SetPushEndpoint(
            pb::SetPushEndpoint {
                url: url.to_owned(),
            },
        ))
        .await?
    {
        pb::server_frame::Body::Ok(_) => Ok(()),
        _ => Err(Error::Transport(
            "unexpected answer to a push endpoint".into(),
        )),
    }
}

/// [`sync`] after login. A refused endpoint (the relay's rules changed, or it
/// was set while offline) does not stop the connection: it is logged (without
/// the URL), forgotten, and cleared at the relay too, so that neither side
/// keeps an endpoint the other does not know.
pub(super) async fn sync_at_login(account: &AccountHandle, link: &Link) -> Result<()> {
    match sync(account, link).await {
        Err(Error::Relay { code, .. }) => {
            tracing::warn!("the relay refused this device's push endpoint: {code}");
            account
                .call(|a| {
                    let conn = a.store.conn();
                    match settings::push_endpoint(conn)? {
                        Some(url) => settings::forget_push_endpoint(conn, &url),
                        None => Ok(()),
                    }
                })
                .await??;
            send(link, "").await
        }
        other => other,
    }
}
