//! Upload tokens: a logged-in device asks for one (counted against its
//! account's byte budget and the relay's global one), then uploads an
//! attachment on an anonymous connection presenting it, so the relay can
//! bound who fills its disk without tying the blob to an account.
//!
//! A token is an ID and a secret: the ID finds it, the secret is compared in
//! constant time. It covers one upload of at most the size asked for, is spent
//! by the upload's first chunk, and expires soon. Tokens and budgets live in
//! memory only: a restart voids outstanding tokens (the client asks again) and
//! refills budgets.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rand::RngCore;
use rankfile_proto::v1::{self as pb, error::Code, server_frame::Body as Out};
use subtle::ConstantTimeEq;

use crate::config::Config;
use crate::frame::{Refusal, Reply};
use crate::limits::TokenBucket;
use crate::storage::AccountId;

/// How long a token is good for: long enough to open an anonymous connection
/// and start the upload on a slow network, short enough that a token seen by
/// nobody but its device is of no use later.
pub const UPLOAD_TOKEN_TTL: Duration = Duration::from_secs(300);

/// Tokens outstanding at once, relay-wide: bounds the memory they take. Past
/// it, expired tokens are forgotten; if none have, requests are refused BUSY.
pub const MAX_OUTSTANDING_TOKENS: usize = 100_000;

const ID_LEN: usize = 16;
const SECRET_LEN: usize = 16;

/// Length of a token on the wire: its ID, then its secret.
pub const TOKEN_LEN: usize = ID_LEN + SECRET_LEN;

struct Issued {
    secret: [u8; SECRET_LEN],
    max_bytes: u64,
    expires: Instant,
}

/// Outstanding tokens and the byte budgets they are charged to.
pub struct UploadTokens {
    tokens: Mutex<HashMap<[u8; ID_LEN], Issued>>,
    accounts: Mutex<HashMap<AccountId, TokenBucket>>,
    global: Mutex<TokenBucket>,
    account_budget: u64,
    account_per_second: f64,
}

impl std::fmt::Debug for UploadTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UploadTokens").finish_non_exhaustive()
    }
}

impl UploadTokens {
    /// Budgets as configured: per account per day, relay-wide per hour.
    pub fn new(config: &Config) -> Self {
        let global = config.upload_global_bytes_per_hour;
        UploadTokens {
            tokens: Mutex::new(HashMap::new()),
            accounts: Mutex::new(HashMap::new()),
            global: Mutex::new(TokenBucket::with_capacity(
                global as f64,
                global as f64 / 3600.0,
            )),
            account_budget: config.upload_account_bytes_per_day,
            account_per_second: config.upload_account_bytes_per_day as f64 / 86_400.0,
        }
    }

    /// UploadTokenRequest from `account`: charges `req.size` to both budgets
    /// and answers a fresh token, or refuses.
    pub fn issue(&self, account: AccountId, req: &pb::UploadTokenRequest, now_ms: u64) -> Reply {
        let size = req.size;
        if size == 0 {
            return Err(Refusal::malformed("empty attachment"));
        }
        let now = Instant::now();
        let mut tokens = self
            .tokens
            .lock()
            .map_err(|_| Refusal::new(Code::Internal, "internal error"))?;
        if tokens.len() >= MAX_OUTSTANDING_TOKENS {
            tokens.retain(|_, t| t.expires > now);
            if tokens.len() >= MAX_OUTSTANDING_TOKENS {
                return Err(Refusal::new(Code::Busy, "too many uploads pending"));
            }
        }
        // The account's budget first: one account at its limit must not use
        // up the relay-wide budget everyone shares.
        {
            let mut accounts = self
                .accounts
                .lock()
                .map_err(|_| Refusal::new(Code::Internal, "internal error"))?;
            if accounts.len() >= MAX_OUTSTANDING_TOKENS {
                accounts.retain(|_, b| !b.is_full(now));
            }
            let (budget, rate) = (self.account_budget, self.account_per_second);
            let bucket = accounts
                .entry(account)
                .or_insert_with(|| TokenBucket::with_capacity(budget as f64, rate));
            bucket
                .take_n(size as f64, now)
                .map_err(|_| Refusal::new(Code::QuotaExceeded, "upload budget used up"))?;
        }
        let mut global = self
            .global
            .lock()
            .map_err(|_| Refusal::new(Code::Internal, "internal error"))?;
        global
            .take_n(size as f64, now)
            .map_err(|_| Refusal::new(Code::QuotaExceeded, "relay upload budget used up"))?;
        let mut id = [0u8; ID_LEN];
        let mut secret = [0u8; SECRET_LEN];
        rand::rng().fill_bytes(&mut id);
        rand::rng().fill_bytes(&mut secret);
        tokens.insert(
            id,
            Issued {
                secret,
                max_bytes: size,
                expires: now + UPLOAD_TOKEN_TTL,
            },
        );
        let mut token = id.to_vec();
        token.extend_from_slice(&secret);
        let ttl_ms = u64::try_from(UPLOAD_TOKEN_TTL.as_millis()).unwrap_or(u64::MAX);
        Ok(Out::UploadToken(pb::UploadToken {
            token,
            max_bytes: size,
            expires_at_ms: now_ms.saturating_add(ttl_ms),
        }))
    }

    /// Spends `token` on an upload of `size` bytes, or refuses: unknown,
    /// expired, already spent, or too small for `size`.
    pub fn spend(&self, token: &[u8], size: u64) -> Result<(), Refusal> {
        let refused = || Refusal::unauthorized("no valid upload token");
        if token.len() != TOKEN_LEN {
            return Err(refused());
        }
        let (id, secret) = token.split_at(ID_LEN);
        let mut key = [0u8; ID_LEN];
        key.copy_from_slice(id);
        let mut tokens = self.tokens.lock().map_err(|_| refused())?;
        let Some(issued) = tokens.get(&key) else {
            return Err(refused());
        };
        if !bool::from(issued.secret.ct_eq(secret)) {
            return Err(refused());
        }
        // Single-use: gone whether it fits or not, so a token cannot be probed.
        let issued = tokens.remove(&key).ok_or_else(refused)?;
        if issued.expires <= Instant::now() || size > issued.max_bytes {
            return Err(refused());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(account_budget: u64, global: u64) -> UploadTokens {
        UploadTokens::new(&Config {
            upload_account_bytes_per_day: account_budget,
            upload_global_bytes_per_hour: global,
            ..Config::default()
        })
    }

    fn token_of(r: Reply) -> Vec<u8> {
        match r {
            Ok(Out::UploadToken(t)) => t.token,
            other => panic!("expected a token, got {other:?}"),
        }
    }

    #[test]
    fn a_token_is_spent_once_and_only_for_its_size() {
        let t = tokens(1000, 10_000);
        let req = pb::UploadTokenRequest { size: 100 };
        let token = token_of(t.issue([1; 20], &req, 0));
        assert!(t.spend(&token, 100).is_ok());
        assert!(t.spend(&token, 100).is_err());
        let token = token_of(t.issue([1; 20], &req, 0));
        assert!(t.spend(&token, 101).is_err());
        assert!(t.spend(&token, 1).is_err(), "refused once, spent");
        let mut forged = token_of(t.issue([1; 20], &req, 0));
        forged[TOKEN_LEN - 1] ^= 1;
        assert!(t.spend(&forged, 1).is_err());
    }

    #[test]
    fn budgets_stop_issuing() {
        let t = tokens(250, 350);
        let req = pb::UploadTokenRequest { size: 100 };
        assert!(t.issue([1; 20], &req, 0).is_ok());
        assert!(t.issue([1; 20], &req, 0).is_ok());
        let code = |r: Reply| r.err().map(|e| e.code);
        assert_eq!(code(t.issue([1; 20], &req, 0)), Some(Code::QuotaExceeded));
        assert!(t.issue([2; 20], &req, 0).is_ok());
        assert_eq!(code(t.issue([3; 20], &req, 0)), Some(Code::QuotaExceeded));
    }
}
