//! The state every connection shares: configuration, store, keys, the hub of
//! connected devices, push wake-ups, caches and rate limits; and the periodic
//! expiry sweep.

use std::sync::Arc;
use std::time::Duration;

use crate::attachment;
use crate::config::Config;
use crate::directory::{DeviceCache, FetchLimiter};
use crate::disk::DiskReserve;
use crate::error::Result;
use crate::guard::Guard;
use crate::hub::Hub;
use crate::push::Push;
use crate::sealed::ServerKeys;
use crate::shutdown::Shutdown;
use crate::storage::RelayStore;
use crate::traffic::Traffic;
use crate::upload_token::UploadTokens;

/// Shared relay state.
pub struct Relay {
    /// The configuration it was started with.
    pub config: Config,
    /// Where everything durable lives.
    pub store: Arc<dyn RelayStore>,
    /// Sealed-sender trust root and server certificate.
    pub keys: ServerKeys,
    /// Connected devices.
    pub hub: Arc<Hub>,
    /// Push wake-ups for devices that are not connected.
    pub push: Arc<Push>,
    /// Device records for sends.
    pub devices: DeviceCache,
    /// Bundle-fetch rate limits, per requesting device.
    pub fetch_limits: FetchLimiter,
    /// Anonymous bundle-fetch rate limits, per target device (the requester
    /// is unknown; only holders of the target's access key get this far).
    pub anonymous_fetch_limits: FetchLimiter,
    /// The trust root's public key, as sent in Hello.
    pub trust_root: Vec<u8>,
    /// Rate limits and connection-slot accounting against abuse.
    pub guard: Guard,
    /// Upload tokens outstanding, and the byte budgets they draw on.
    pub uploads: UploadTokens,
    /// The free space kept on the data directory's filesystem.
    pub disk: DiskReserve,
    /// Sealed sends and bundle fetches counted by the connection they came on.
    pub traffic: Arc<Traffic>,
}

impl Relay {
    /// Assembles the shared state.
    pub fn new(config: Config, store: Arc<dyn RelayStore>, keys: ServerKeys) -> Result<Self> {
        attachment::prepare(&config.data_dir)?;
        let trust_root = keys.trust_root();
        let push = Arc::new(Push::new(&config)?);
        let guard = Guard::new(&config);
        let uploads = UploadTokens::new(&config);
        let disk = DiskReserve::new(config.data_dir.clone(), config.disk_reserve_bytes);
        Ok(Relay {
            config,
            store,
            keys,
            hub: Arc::new(Hub::default()),
            push,
            devices: DeviceCache::default(),
            fetch_limits: FetchLimiter::default(),
            anonymous_fetch_limits: FetchLimiter::default(),
            traffic: Arc::default(),
            trust_root,
            guard,
            uploads,
            disk,
        })
    }

    /// The relay's time now ([`Config::clock`]).
    pub fn now_ms(&self) -> u64 {
        self.config.clock.now_ms()
    }

    /// Deletes expired messages and attachments once.
    pub async fn sweep_once(&self) -> Result<()> {
        let outcome = self.store.sweep(self.now_ms()).await?;
        attachment::remove_blobs(&self.config.data_dir, &outcome.attachments).await;
        if outcome.messages > 0 || !outcome.attachments.is_empty() {
            tracing::info!(
                messages = outcome.messages,
                attachments = outcome.attachments.len(),
                "expired"
            );
        }
        Ok(())
    }
}

/// Sweeps expired data every `sweep_interval_secs` until shutdown.
pub async fn run_sweeper(relay: Arc<Relay>, mut shutdown: Shutdown) {
    let every = Duration::from_secs(relay.config.sweep_interval_secs.max(1));
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.recv() => return,
            _ = tick.tick() => {
                if let Err(e) = relay.sweep_once().await {
                    tracing::warn!(error = %e, "expiry sweep failed");
                }
            }
        }
    }
}
