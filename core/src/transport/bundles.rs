//! Bundles from the relay's directory, and the sessions they open: with the
//! committee members this account shares no session with, and with contacts
//! whose session a decryption-error receipt archived (see `repair`).

use rankfile_proto::v1 as pb;

use super::actor::AccountHandle;
use super::outbox_flush::Links;
use crate::account_id::AccountId;
use crate::error::{Error, Result};
use crate::identity::PRIMARY_DEVICE_ID;

/// Fetches `who`'s bundle: on the anonymous connection with its access key
/// when this account holds one (a contact, a fellow member), so the relay
/// does not learn who asked for whom; else, for a first contact, on the
/// logged-in connection. [`Error::Offline`] when the anonymous connection
/// cannot be had now (it is tried again after a backoff).
pub(super) async fn fetch_bundle(
    account: &AccountHandle,
    links: Links<'_>,
    who: AccountId,
) -> Result<Vec<u8>> {
    use prost::Message as _;
    let key = account.call(move |a| a.known_access_key(&who)).await??;
    let request = pb::client_frame::Body::FetchBundle(pb::FetchBundle {
        account_id: who.as_bytes().to_vec(),
        device_id: u32::from(PRIMARY_DEVICE_ID),
        access_key: key.map(|k| k.to_vec()).unwrap_or_default(),
    });
    let reply = match key {
        Some(_) => {
            // Not held back after a login: a bundle is fetched to open a
            // session, which the messages waiting on it need first.
            let link = links.sealed.link(true).await.ok_or(Error::Offline)?;
            match link.request(request.clone()).await {
                // A key the member has since replaced: asked as a device.
                Err(Error::Relay { code, .. }) if code == "UNAUTHORIZED" => {
                    links.logged_in.request(request).await?
                }
                Err(e @ Error::Relay { .. }) => return Err(e),
                // The anonymous connection broke: the logged-in one is fine.
                Err(_) => {
                    links.sealed.broke().await;
                    return Err(Error::Offline);
                }
                Ok(reply) => reply,
            }
        }
        None => links.logged_in.request(request).await?,
    };
    match reply {
        pb::server_frame::Body::Bundle(b) => Ok(b.encode_to_vec()),
        _ => Err(Error::Transport(
            "unexpected answer to a bundle request".into(),
        )),
    }
}

/// [`fetch_bundle`] for opening a session: `None` (tried again next time)
/// when the relay has none to give or the anonymous connection cannot be had
/// now; other failures end the connection.
async fn bundle_or_skip(
    account: &AccountHandle,
    links: Links<'_>,
    who: AccountId,
) -> Result<Option<Vec<u8>>> {
    match fetch_bundle(account, links, who).await {
        Ok(b) => Ok(Some(b)),
        Err(Error::Relay { code, .. }) => {
            tracing::warn!("no bundle to open a session with: {code}");
            Ok(None)
        }
        Err(Error::Offline) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Opens sessions with the committee members that lack one (see
/// `committee_sessions`): fetches each one's bundle and greets them. A member
/// the relay does not know, or whose bundle carries another key than the log
/// records, is skipped (and tried again after the next committee change).
pub(super) async fn greet_members(
    account: &AccountHandle,
    links: Links<'_>,
    all: bool,
) -> Result<()> {
    let members = account.call(move |a| a.members_to_greet(all)).await??;
    let mut opened = 0;
    for member in members {
        let Some(bundle) = bundle_or_skip(account, links, member.account).await? else {
            continue;
        };
        let greeted = account
            .call(move |a| a.greet_member(&member, &bundle))
            .await?;
        match greeted {
            Ok(_) => opened += 1,
            Err(e) => tracing::warn!("could not open a session with a committee member: {e}"),
        }
    }
    // Committee changes and alerts that could not reach these members
    // before can now.
    if opened > 0 {
        if let Err(e) = account.call(|a| a.send_owed_entries()).await? {
            tracing::warn!("could not send owed committee entries: {e}");
        }
        if let Err(e) = account.call(|a| a.send_owed_alerts()).await? {
            tracing::warn!("could not send owed alerts: {e}");
        }
    }
    Ok(())
}

/// Opens new sessions with the contacts owed a resend whose session a
/// decryption-error receipt archived (see `repair`): each one's bundle from
/// the relay, then what is owed to them goes.
pub(super) async fn reopen_sessions(account: &AccountHandle, links: Links<'_>) -> Result<()> {
    let contacts = account.call(|a| a.sessions_to_reopen()).await??;
    for contact in contacts {
        let Some(bundle) = bundle_or_skip(account, links, contact).await? else {
            continue;
        };
        if let Err(e) = account.call(move |a| a.reopen_session(&bundle)).await? {
            tracing::warn!("could not open a new session: {e}");
        }
    }
    Ok(())
}
