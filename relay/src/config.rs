//! Relay configuration: a TOML file, overridden by `RANKFILE_RELAY_*` environment
//! variables, overridden by command-line flags; safe defaults for everything.
//!
//! The defaults bind to loopback only and keep data in a local directory, so a
//! relay started without thought exposes nothing.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Parser;
use serde::Deserialize;

use crate::clock::Clock;
use crate::error::{Error, Result};

/// Everything the relay can be told.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address to listen on.
    pub bind: SocketAddr,
    /// Directory for the database, attachment blobs, the self-signed certificate
    /// and the sealed-sender keys.
    pub data_dir: PathBuf,
    /// A PostgreSQL URL: store everything there instead of SQLite in
    /// `data_dir`, so several relay nodes can share it (docs/deploy.md).
    /// Absent (the default): SQLite, no server needed.
    pub database: Option<DatabaseUrl>,
    /// PEM certificate chain; with `tls_key`. Absent: a self-signed certificate
    /// is made (once) in `data_dir`.
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for `tls_cert`.
    pub tls_key: Option<PathBuf>,
    /// Open connections at most; more wait in the kernel's accept queue.
    pub max_connections: usize,
    /// Seconds a new connection has for TLS, WebSocket and Auth/Anonymous.
    pub handshake_timeout_secs: u64,
    /// Seconds of silence after which the relay pings; twice that and it hangs up.
    pub keepalive_secs: u64,
    /// Seconds an alert pushed to a connection may go unacknowledged, with
    /// nothing heard from the connection since, before the relay pings it; as
    /// long again without an answer and it hangs up, which wakes the device by
    /// push. A phone whose network is gone is then found in seconds, not at
    /// the keepalive.
    pub alert_ack_secs: u64,
    /// Seconds a flush to a client may take before the relay hangs up (slow reader).
    pub write_timeout_secs: u64,
    /// Seconds a stored message is kept if never acknowledged.
    pub message_ttl_secs: u64,
    /// Seconds between sweeps of expired messages and attachments.
    pub sweep_interval_secs: u64,
    /// Largest envelope (or per-recipient sealed message) accepted.
    pub max_envelope_bytes: usize,
    /// Messages one device's mailbox may hold.
    pub mailbox_quota: u64,
    /// Recipients one multi-recipient upload may name: checked before any
    /// per-recipient work, so one anonymous frame cannot make the relay copy
    /// its ciphertext thousands of times. A committee is up to ~500 phones.
    pub max_multi_recipients: usize,
    /// Bytes one multi-recipient upload may become once copied for each of its
    /// recipients' devices (checked before the copies are made).
    pub max_fan_out_bytes: usize,
    /// Bytes of request frames one connection may have waiting for their
    /// commit; past it the relay stops reading that connection's frames.
    pub max_in_flight_bytes: usize,
    /// Deliveries pushed to one connection and not yet acknowledged, at most.
    /// Room for two of a client's receive batches (256 each): a client
    /// acknowledges a batch once it is flushed to disk, and meanwhile works
    /// on the next, which must already be on its way.
    pub delivery_window: usize,
    /// Bundle fetches a device may make in a burst.
    pub fetch_burst: u32,
    /// Bundle fetches per minute a device regains.
    pub fetch_per_minute: u32,
    /// Identified sends (`SendMessage`) a device may make in a burst. A sender
    /// that must send identified was not given the recipient's access key, so
    /// is not one the recipient accepted: this bounds how fast such strangers,
    /// or one throwaway account, can fill mailboxes.
    pub identified_send_burst: u32,
    /// Identified sends per minute a device regains.
    pub identified_sends_per_minute: u32,
    /// Identified (not sealed) messages one mailbox may hold: far below
    /// `mailbox_quota`, so strangers can never fill the room that the
    /// recipient's committees (who send sealed) need.
    pub unaccepted_quota: u64,
    /// New devices (first logins) one source address may register in a burst:
    /// makes minting throwaway accounts slow.
    pub registration_burst: u32,
    /// New devices per hour one source address regains. Generous enough for a
    /// workplace behind one NAT address where everyone installs the app at a
    /// meeting.
    pub registrations_per_hour: u32,
    /// One-time prekeys of one target account handed out in a burst; past
    /// that, bundles come without one (the last-resort keys still work), so
    /// nobody can drain someone's one-time prekeys.
    pub one_time_prekey_burst: u32,
    /// One-time prekeys per hour a target account's allowance regains.
    pub one_time_prekeys_per_hour: u32,
    /// Seconds an anonymous connection may stay silent before the relay hangs
    /// up: they carry only short sealed sends and attachment transfers.
    pub anonymous_idle_secs: u64,
    /// Anonymous connections one source address may hold open at once. Room
    /// for many phones behind one NAT address, not for one host to take them all.
    pub anonymous_per_address: u32,
    /// Connection slots (of `max_connections`) anonymous connections may never
    /// take, so logged-in devices can always reach their mail.
    pub reserved_device_slots: usize,
    /// Bytes of attachments one account may upload per day (counted when it
    /// asks for upload tokens): one account cannot fill the relay's disk.
    pub upload_account_bytes_per_day: u64,
    /// Bytes of attachments all accounts together may upload per hour: many
    /// accounts together cannot fill it faster than an operator can react.
    pub upload_global_bytes_per_hour: u64,
    /// Free bytes the relay keeps on its data directory's filesystem: below
    /// this it refuses new sends, uploads and registrations, so its commits
    /// never start failing on a full disk. 0 turns the check off.
    pub disk_reserve_bytes: u64,
    /// Largest attachment blob.
    pub attachment_max_bytes: u64,
    /// Seconds an attachment is kept.
    pub attachment_ttl_secs: u64,
    /// Write requests committed together in one transaction, at most.
    pub group_commit_max: usize,
    /// Accept plain-http push endpoints, and endpoints on loopback or private
    /// addresses: for tests and closed networks only. Otherwise only https to
    /// public addresses.
    pub push_allow_http: bool,
    /// Push wake-ups being posted at once, at most; more wait their turn.
    pub push_concurrency: usize,
    /// Seconds one wake-up POST may take (connect, TLS, answer) before it
    /// counts as failed and is retried.
    pub push_timeout_secs: u64,
    /// Milliseconds after a device's wake-up during which further wake-ups for
    /// it are coalesced into that one.
    pub push_coalesce_ms: u64,
    /// Milliseconds within which the wake-ups for one alert are spread,
    /// each at a uniformly random moment, so a push service does not see a
    /// whole roster woken at one instant. Only offline phones are woken, so
    /// delivery to connected ones is not delayed.
    pub push_spread_ms: u64,
    /// Decoy wake-ups per push endpoint per day, sent at random times to
    /// offline devices; 0 sends none (tests that count wake-ups).
    pub push_decoys_per_day: u32,
    /// The time the relay goes by: the system's, unless a test moves it.
    /// Never read from a file or the environment.
    #[serde(skip)]
    pub clock: Clock,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            bind: SocketAddr::from(([127, 0, 0, 1], 7443)),
            data_dir: PathBuf::from("rankfile-relay-data"),
            database: None,
            tls_cert: None,
            tls_key: None,
            max_connections: 50_000,
            handshake_timeout_secs: 10,
            keepalive_secs: 45,
            alert_ack_secs: 5,
            write_timeout_secs: 30,
            message_ttl_secs: 30 * 24 * 3600,
            sweep_interval_secs: 3600,
            max_envelope_bytes: 128 * 1024,
            mailbox_quota: 50_000,
            max_multi_recipients: 1_000,
            max_fan_out_bytes: 64 * 1024 * 1024,
            max_in_flight_bytes: 4 * 1024 * 1024,
            delivery_window: 512,
            fetch_burst: 60,
            fetch_per_minute: 60,
            identified_send_burst: 30,
            identified_sends_per_minute: 30,
            unaccepted_quota: 500,
            registration_burst: 50,
            registrations_per_hour: 50,
            one_time_prekey_burst: 50,
            one_time_prekeys_per_hour: 20,
            anonymous_idle_secs: 30,
            anonymous_per_address: 256,
            reserved_device_slots: 1000,
            upload_account_bytes_per_day: 2 * 1024 * 1024 * 1024,
            upload_global_bytes_per_hour: 50 * 1024 * 1024 * 1024,
            disk_reserve_bytes: 1024 * 1024 * 1024,
            attachment_max_bytes: 100 * 1024 * 1024,
            attachment_ttl_secs: 30 * 24 * 3600,
            group_commit_max: 2048,
            push_allow_http: false,
            push_concurrency: 64,
            push_timeout_secs: 10,
            push_coalesce_ms: 10_000,
            push_spread_ms: 2_000,
            push_decoys_per_day: 4,
            clock: Clock::default(),
        }
    }
}

impl Config {
    /// A configuration for an in-process relay: loopback, any free port, data in
    /// `data_dir`. Such a relay serves the demo, tests and benchmarks, where one
    /// loopback address plays every phone of many committees: the limits per
    /// source address and per identified sender are lifted (a test of those
    /// limits sets them).
    pub fn local(data_dir: impl Into<PathBuf>) -> Self {
        Config {
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            data_dir: data_dir.into(),
            registration_burst: u32::MAX,
            anonymous_per_address: u32::MAX,
            identified_send_burst: u32::MAX,
            // Tests count wake-ups; decoys would be noise (a test of decoys
            // turns them on).
            push_decoys_per_day: 0,
            ..Config::default()
        }
    }

    /// Reads a TOML file; missing keys take their defaults.
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)?;
        toml::from_str(&text).map_err(|e| Error::Config(e.to_string()))
    }

    /// Checks that the values make sense together.
    pub fn validate(&self) -> Result<()> {
        let bad = |what: &str| Err(Error::Config(what.to_owned()));
        if self.tls_cert.is_some() != self.tls_key.is_some() {
            return bad("tls_cert and tls_key go together");
        }
        if self.max_connections == 0 {
            return bad("max_connections must be at least 1");
        }
        if self.delivery_window == 0 || self.group_commit_max == 0 {
            return bad("delivery_window and group_commit_max must be at least 1");
        }
        if self.max_envelope_bytes == 0 || self.max_envelope_bytes > crate::limits::MAX_FRAME_BYTES
        {
            return bad("max_envelope_bytes must be between 1 and the frame limit");
        }
        if self.handshake_timeout_secs == 0
            || self.keepalive_secs == 0
            || self.alert_ack_secs == 0
            || self.push_timeout_secs == 0
        {
            return bad("timeouts must be at least one second");
        }
        if self.anonymous_idle_secs == 0 {
            return bad("anonymous_idle_secs must be at least one second");
        }
        if self.push_concurrency == 0 {
            return bad("push_concurrency must be at least 1");
        }
        Ok(())
    }

    /// Seconds as a `Duration`, for the timeouts.
    pub fn handshake_timeout(&self) -> Duration {
        Duration::from_secs(self.handshake_timeout_secs)
    }

    /// How long an anonymous connection may stay silent.
    pub fn anonymous_idle(&self) -> Duration {
        Duration::from_secs(self.anonymous_idle_secs)
    }

    /// The keepalive interval.
    pub fn keepalive(&self) -> Duration {
        Duration::from_secs(self.keepalive_secs)
    }

    /// How long an alert may wait for its acknowledgement before the
    /// connection is probed.
    pub fn alert_ack(&self) -> Duration {
        Duration::from_secs(self.alert_ack_secs)
    }
}

/// Command-line flags; each may also come from its `RANKFILE_RELAY_*` variable.
#[derive(Debug, Parser)]
#[command(name = "rankfile-relay", version, about = "Rankfile relay server")]
pub struct Args {
    /// TOML configuration file.
    #[arg(long, env = "RANKFILE_RELAY_CONFIG")]
    pub config: Option<PathBuf>,
    /// Address to listen on (default 127.0.0.1:7443).
    #[arg(long, env = "RANKFILE_RELAY_BIND")]
    pub bind: Option<SocketAddr>,
    /// Data directory (default ./rankfile-relay-data).
    #[arg(long, env = "RANKFILE_RELAY_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// PostgreSQL URL (default: SQLite in the data directory).
    #[arg(long, env = "RANKFILE_RELAY_DATABASE", hide_env_values = true)]
    pub database: Option<String>,
    /// PEM certificate chain (with --tls-key); default: self-signed in the data directory.
    #[arg(long, env = "RANKFILE_RELAY_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key.
    #[arg(long, env = "RANKFILE_RELAY_TLS_KEY")]
    pub tls_key: Option<PathBuf>,
    /// Open connections at most.
    #[arg(long, env = "RANKFILE_RELAY_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,
    /// Seconds an unacknowledged message is kept.
    #[arg(long, env = "RANKFILE_RELAY_MESSAGE_TTL_SECS")]
    pub message_ttl_secs: Option<u64>,
    /// Seconds between expiry sweeps.
    #[arg(long, env = "RANKFILE_RELAY_SWEEP_INTERVAL_SECS")]
    pub sweep_interval_secs: Option<u64>,
    /// Messages one device's mailbox may hold.
    #[arg(long, env = "RANKFILE_RELAY_MAILBOX_QUOTA")]
    pub mailbox_quota: Option<u64>,
    /// Unacknowledged deliveries per connection.
    #[arg(long, env = "RANKFILE_RELAY_DELIVERY_WINDOW")]
    pub delivery_window: Option<usize>,
    /// Bundle fetches per device in a burst.
    #[arg(long, env = "RANKFILE_RELAY_FETCH_BURST")]
    pub fetch_burst: Option<u32>,
    /// Write requests per group commit.
    #[arg(long, env = "RANKFILE_RELAY_GROUP_COMMIT_MAX")]
    pub group_commit_max: Option<usize>,
    /// Identified sends per device in a burst.
    #[arg(long, env = "RANKFILE_RELAY_IDENTIFIED_SEND_BURST")]
    pub identified_send_burst: Option<u32>,
    /// Identified sends per device per minute.
    #[arg(long, env = "RANKFILE_RELAY_IDENTIFIED_SENDS_PER_MINUTE")]
    pub identified_sends_per_minute: Option<u32>,
    /// Identified messages one mailbox may hold.
    #[arg(long, env = "RANKFILE_RELAY_UNACCEPTED_QUOTA")]
    pub unaccepted_quota: Option<u64>,
    /// New devices per source address in a burst.
    #[arg(long, env = "RANKFILE_RELAY_REGISTRATION_BURST")]
    pub registration_burst: Option<u32>,
    /// New devices per source address per hour.
    #[arg(long, env = "RANKFILE_RELAY_REGISTRATIONS_PER_HOUR")]
    pub registrations_per_hour: Option<u32>,
    /// One-time prekeys of one account handed out in a burst.
    #[arg(long, env = "RANKFILE_RELAY_ONE_TIME_PREKEY_BURST")]
    pub one_time_prekey_burst: Option<u32>,
    /// One-time prekeys of one account handed out per hour.
    #[arg(long, env = "RANKFILE_RELAY_ONE_TIME_PREKEYS_PER_HOUR")]
    pub one_time_prekeys_per_hour: Option<u32>,
    /// Seconds an anonymous connection may stay silent.
    #[arg(long, env = "RANKFILE_RELAY_ANONYMOUS_IDLE_SECS")]
    pub anonymous_idle_secs: Option<u64>,
    /// Anonymous connections per source address.
    #[arg(long, env = "RANKFILE_RELAY_ANONYMOUS_PER_ADDRESS")]
    pub anonymous_per_address: Option<u32>,
    /// Connection slots anonymous connections may not take.
    #[arg(long, env = "RANKFILE_RELAY_RESERVED_DEVICE_SLOTS")]
    pub reserved_device_slots: Option<usize>,
    /// Attachment bytes one account may upload per day.
    #[arg(long, env = "RANKFILE_RELAY_UPLOAD_ACCOUNT_BYTES_PER_DAY")]
    pub upload_account_bytes_per_day: Option<u64>,
    /// Attachment bytes all accounts may upload per hour.
    #[arg(long, env = "RANKFILE_RELAY_UPLOAD_GLOBAL_BYTES_PER_HOUR")]
    pub upload_global_bytes_per_hour: Option<u64>,
    /// Free bytes kept on the data directory's filesystem (0: no check).
    #[arg(long, env = "RANKFILE_RELAY_DISK_RESERVE_BYTES")]
    pub disk_reserve_bytes: Option<u64>,
    /// Milliseconds within which one alert's wake-ups are spread.
    #[arg(long, env = "RANKFILE_RELAY_PUSH_SPREAD_MS")]
    pub push_spread_ms: Option<u64>,
    /// Decoy wake-ups per push endpoint per day (0: none).
    #[arg(long, env = "RANKFILE_RELAY_PUSH_DECOYS_PER_DAY")]
    pub push_decoys_per_day: Option<u32>,
    /// Log filter (tracing `EnvFilter` syntax), e.g. `info` or `rankfile_relay=debug`.
    #[arg(long, env = "RANKFILE_RELAY_LOG", default_value = "info")]
    pub log: String,
}

impl Args {
    /// The file's configuration (or the defaults) with environment and flags on top.
    pub fn into_config(self) -> Result<Config> {
        let mut c = match &self.config {
            Some(path) => Config::from_file(path)?,
            None => Config::default(),
        };
        if let Some(v) = self.bind {
            c.bind = v;
        }
        if let Some(v) = self.data_dir {
            c.data_dir = v;
        }
        if let Some(v) = self.database {
            c.database = Some(DatabaseUrl(v));
        }
        if let Some(v) = self.tls_cert {
            c.tls_cert = Some(v);
        }
        if let Some(v) = self.tls_key {
            c.tls_key = Some(v);
        }
        if let Some(v) = self.max_connections {
            c.max_connections = v;
        }
        if let Some(v) = self.message_ttl_secs {
            c.message_ttl_secs = v;
        }
        if let Some(v) = self.sweep_interval_secs {
            c.sweep_interval_secs = v;
        }
        if let Some(v) = self.mailbox_quota {
            c.mailbox_quota = v;
        }
        if let Some(v) = self.delivery_window {
            c.delivery_window = v;
        }
        if let Some(v) = self.fetch_burst {
            c.fetch_burst = v;
        }
        if let Some(v) = self.group_commit_max {
            c.group_commit_max = v;
        }
        set(&mut c.identified_send_burst, self.identified_send_burst);
        set(
            &mut c.identified_sends_per_minute,
            self.identified_sends_per_minute,
        );
        set(&mut c.unaccepted_quota, self.unaccepted_quota);
        set(&mut c.registration_burst, self.registration_burst);
        set(&mut c.registrations_per_hour, self.registrations_per_hour);
        set(&mut c.one_time_prekey_burst, self.one_time_prekey_burst);
        set(
            &mut c.one_time_prekeys_per_hour,
            self.one_time_prekeys_per_hour,
        );
        set(&mut c.anonymous_idle_secs, self.anonymous_idle_secs);
        set(&mut c.anonymous_per_address, self.anonymous_per_address);
        set(&mut c.reserved_device_slots, self.reserved_device_slots);
        set(
            &mut c.upload_account_bytes_per_day,
            self.upload_account_bytes_per_day,
        );
        set(
            &mut c.upload_global_bytes_per_hour,
            self.upload_global_bytes_per_hour,
        );
        set(&mut c.disk_reserve_bytes, self.disk_reserve_bytes);
        set(&mut c.push_spread_ms, self.push_spread_ms);
        set(&mut c.push_decoys_per_day, self.push_decoys_per_day);
        c.validate()?;
        Ok(c)
    }
}

/// A database URL. It may carry a password, so it never appears in logs or
/// `Debug` output.
#[derive(Clone, Deserialize)]
#[serde(transparent)]
pub struct DatabaseUrl(pub String);

impl std::fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DatabaseUrl(…)")
    }
}

/// Overrides a setting when a flag or variable gave one.
fn set<T>(field: &mut T, value: Option<T>) {
    if let Some(v) = value {
        *field = v;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_loopback_and_valid() {
        let c = Config::default();
        assert!(c.bind.ip().is_loopback());
        c.validate().expect("defaults valid");
    }

    #[test]
    fn file_then_flags() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("relay.toml");
        std::fs::write(&path, "bind = \"127.0.0.1:9000\"\nmailbox_quota = 7\n").expect("write");
        let args = Args::parse_from([
            "rankfile-relay",
            "--config",
            path.to_str().expect("utf8"),
            "--mailbox-quota",
            "9",
        ]);
        let c = args.into_config().expect("config");
        assert_eq!(c.bind.port(), 9000);
        assert_eq!(c.mailbox_quota, 9);
    }

    #[test]
    fn database_url_is_read_and_never_printed() {
        let args = Args::parse_from([
            "rankfile-relay",
            "--database",
            "postgres://relay:hunter2@db/relay",
        ]);
        let c = args.into_config().expect("config");
        let url = c.database.as_ref().expect("set");
        assert_eq!(url.0, "postgres://relay:hunter2@db/relay");
        assert!(!format!("{c:?}").contains("hunter2"));
    }

    #[test]
    fn unknown_key_refused() {
        assert!(toml::from_str::<Config>("nonsense = 1").is_err());
    }

    #[test]
    fn cert_without_key_refused() {
        let c = Config {
            tls_cert: Some("x.pem".into()),
            ..Config::default()
        };
        assert!(c.validate().is_err());
    }
}
