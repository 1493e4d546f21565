//! The prekey directory: what devices publish so others can open sessions with
//! them, a cache of device records, and the rate limit on bundle fetches.
//!
//! Every uploaded key is parsed and its signature checked against the uploading
//! device's identity key; a fetch consumes one one-time EC key and one one-time
//! Kyber key atomically (in the store's single writer), so two fetchers never get
//! the same one.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use libsignal_protocol::{kem, IdentityKey, PublicKey};
use rankfile_proto::v1::{self as pb, server_frame::Body as Out};

use crate::error::Result;
use crate::frame::{fixed, Refusal, Reply};
use crate::limits::{TokenBucket, MAX_DEVICE_ID, MAX_ONE_TIME_PREKEYS, MAX_PREKEYS_PER_UPLOAD};
use crate::relay::Relay;
use crate::storage::{AccessKey, MailboxId, PreKeyUpload, PublicPreKey, RelayStore};

/// A device as the relay needs it on every send.
#[derive(Debug, Clone)]
pub struct CachedDevice {
    /// Its unidentified-access key, once set.
    pub access_key: Option<AccessKey>,
}

/// Device records cached in memory; the store stays the truth.
#[derive(Debug, Default)]
pub struct DeviceCache {
    map: Mutex<HashMap<MailboxId, CachedDevice>>,
}

impl DeviceCache {
    /// A device's record, from the cache or the store; `None` if unknown.
    pub async fn get(&self, store: &dyn RelayStore, m: MailboxId) -> Result<Option<CachedDevice>> {
        if let Some(d) = self.map.lock().ok().and_then(|map| map.get(&m).cloned()) {
            return Ok(Some(d));
        }
        let Some(record) = store.device(m).await? else {
            return Ok(None);
        };
        let d = CachedDevice {
            access_key: record.access_key,
        };
        if let Ok(mut map) = self.map.lock() {
            map.insert(m, d.clone());
        }
        Ok(Some(d))
    }

    /// Forgets every device of a deleted account, so no send reaches a
    /// mailbox that is gone.
    pub fn forget_account(&self, account: &crate::storage::AccountId) {
        if let Ok(mut map) = self.map.lock() {
            map.retain(|m, _| &m.account != account);
        }
    }

    /// Forgets every record (another node may have changed any of them).
    pub fn forget_all(&self) {
        if let Ok(mut map) = self.map.lock() {
            map.clear();
        }
    }

    /// Updates a cached record after the store changed it.
    pub fn set_access_key(&self, m: MailboxId, key: AccessKey) {
        if let Ok(mut map) = self.map.lock() {
            map.insert(
                m,
                CachedDevice {
                    access_key: Some(key),
                },
            );
        }
    }
}

/// Bundle-fetch rate limits, per requesting device.
#[derive(Debug, Default)]
pub struct FetchLimiter {
    buckets: Mutex<HashMap<MailboxId, TokenBucket>>,
}

impl FetchLimiter {
    /// Takes a token for `who`, or refuses with RATE_LIMITED.
    pub fn check(&self, who: MailboxId, burst: u32, per_minute: u32) -> Result<(), Refusal> {
        let now = Instant::now();
        let Ok(mut buckets) = self.buckets.lock() else {
            return Ok(());
        };
        if buckets.len() > 100_000 {
            // Forget full buckets so the map cannot grow without bound.
            buckets.retain(|_, b| !b.is_full(now));
        }
        let bucket = buckets
            .entry(who)
            .or_insert_with(|| TokenBucket::new(burst, f64::from(per_minute) / 60.0));
        bucket.take(now).map_err(Refusal::rate_limited)
    }
}

fn signed_key(
    k: &pb::SignedPreKey,
    identity: &IdentityKey,
    kyber: bool,
) -> Result<PublicPreKey, Refusal> {
    let parses = if kyber {
        kem::PublicKey::deserialize(&k.public_key).is_ok()
    } else {
        PublicKey::deserialize(&k.public_key).is_ok()
    };
    if !parses {
        return Err(Refusal::malformed("prekey did not parse"));
    }
    if !identity
        .public_key()
        .verify_signature(&k.public_key, &k.signature)
    {
        return Err(Refusal::malformed("prekey signature does not verify"));
    }
    Ok(PublicPreKey {
        id: k.id,
        public_key: k.public_key.clone(),
        signature: k.signature.clone(),
    })
}

/// Checks an upload against the device's identity key.
pub fn check_upload(
    req: &pb::UploadPreKeys,
    identity: &IdentityKey,
) -> Result<PreKeyUpload, Refusal> {
    if req.one_time_prekeys.len() > MAX_PREKEYS_PER_UPLOAD
        || req.one_time_kyber_prekeys.len() > MAX_PREKEYS_PER_UPLOAD
    {
        return Err(Refusal::too_large("too many prekeys in one upload"));
    }
    let mut up = PreKeyUpload {
        registration_id: req.registration_id,
        ..PreKeyUpload::default()
    };
    up.signed_prekey = req
        .signed_prekey
        .as_ref()
        .map(|k| signed_key(k, identity, false))
        .transpose()?;
    up.kyber_last_resort = req
        .kyber_last_resort
        .as_ref()
        .map(|k| signed_key(k, identity, true))
        .transpose()?;
    for k in &req.one_time_prekeys {
        PublicKey::deserialize(&k.public_key)
            .map_err(|_| Refusal::malformed("prekey did not parse"))?;
        up.one_time.push(PublicPreKey {
            id: k.id,
            public_key: k.public_key.clone(),
            signature: Vec::new(),
        });
    }
    for k in &req.one_time_kyber_prekeys {
        up.one_time_kyber.push(signed_key(k, identity, true)?);
    }
    Ok(up)
}

/// UploadPreKeys.
pub async fn upload(
    relay: &Relay,
    me: MailboxId,
    identity: &IdentityKey,
    req: pb::UploadPreKeys,
) -> Reply {
    let up = check_upload(&req, identity)?;
    relay
        .store
        .upload_prekeys(me, up, MAX_ONE_TIME_PREKEYS)
        .await?;
    Ok(Out::Ok(pb::Ok {}))
}

/// PreKeyCountRequest.
pub async fn count(relay: &Relay, me: MailboxId) -> Reply {
    let (ec, kyber) = relay.store.prekey_counts(me).await?;
    Ok(Out::PrekeyCount(pb::PreKeyCount {
        one_time_prekeys: ec,
        one_time_kyber_prekeys: kyber,
    }))
}

/// Who asks for a bundle.
pub enum Fetcher {
    /// A logged-in device: may fetch any bundle, at its own rate.
    Device(MailboxId),
    /// An anonymous connection: only with the target's access key (a contact
    /// or fellow member), at a rate per target.
    Anonymous,
}

/// FetchBundle: rate-limited per requesting device (per target when
/// anonymous), and its one-time keys per target account.
pub async fn fetch(relay: &Relay, fetcher: Fetcher, req: pb::FetchBundle) -> Reply {
    let account = fixed::<20>(&req.account_id, "account id must be 20 bytes")?;
    if req.device_id == 0 || req.device_id > MAX_DEVICE_ID {
        return Err(Refusal::malformed("device id out of range"));
    }
    let target = MailboxId {
        account,
        device: req.device_id,
    };
    let (burst, per_minute) = (relay.config.fetch_burst, relay.config.fetch_per_minute);
    match fetcher {
        Fetcher::Device(me) => relay.fetch_limits.check(me, burst, per_minute)?,
        Fetcher::Anonymous => {
            // The same answer for an unknown device and a wrong key: an
            // anonymous asker learns nothing about who has an account.
            let device = relay.devices.get(relay.store.as_ref(), target).await?;
            let key = device.as_ref().and_then(|d| d.access_key.as_ref());
            if !crate::sealed::access_key_matches(key, &req.access_key) {
                return Err(Refusal::unauthorized("wrong access key"));
            }
            relay
                .anonymous_fetch_limits
                .check(target, burst, per_minute)?;
        }
    }
    // Past its allowance a target's bundles come without one-time keys (the
    // signed and last-resort keys still open a session), so nobody can drain
    // them and leave later contacts without forward secrecy from the start.
    let one_time = relay.guard.one_time_prekeys.check(account).is_ok();
    let Some(b) = relay.store.take_bundle(target, one_time).await? else {
        return Err(Refusal::not_found("no bundle for that device"));
    };
    Ok(Out::Bundle(pb::PreKeyBundle {
        identity_key: b.identity_key,
        account_id: account.to_vec(),
        registration_id: b.registration_id,
        device_id: req.device_id,
        one_time_prekey_id: b.one_time.as_ref().map(|k| k.id),
        one_time_prekey: b.one_time.map(|k| k.public_key).unwrap_or_default(),
        signed_prekey_id: b.signed_prekey.id,
        signed_prekey: b.signed_prekey.public_key,
        signed_prekey_signature: b.signed_prekey.signature,
        kyber_prekey_id: b.kyber.id,
        kyber_prekey: b.kyber.public_key,
        kyber_prekey_signature: b.kyber.signature,
    }))
}

/// SetAccessKey.
pub async fn set_access_key(relay: &Relay, me: MailboxId, req: pb::SetAccessKey) -> Reply {
    let key = fixed::<16>(&req.access_key, "access key must be 16 bytes")?;
    relay.store.set_access_key(me, key).await?;
    relay.devices.set_access_key(me, key);
    Ok(Out::Ok(pb::Ok {}))
}

/// SenderCertificateRequest.
pub fn sender_certificate(relay: &Relay, me: MailboxId, identity: &IdentityKey) -> Reply {
    let (certificate, expires_at_ms) = relay.keys.issue(
        &me.account,
        me.device,
        &identity.serialize(),
        relay.now_ms(),
    )?;
    Ok(Out::SenderCertificate(pb::SenderCertificate {
        certificate,
        expires_at_ms,
    }))
}

/// Shared for the connection: the device's identity, parsed once at login.
pub type Identity = Arc<IdentityKey>;
