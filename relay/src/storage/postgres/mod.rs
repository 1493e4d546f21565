//! The PostgreSQL store: several relay nodes on one database. A connection
//! pool for reads and short transactions; sends and acknowledgements go
//! through this node's batching task (`batch.rs`, one durable commit per
//! batch); other nodes' mail is heard through LISTEN/NOTIFY (`listen.rs`).
//!
//! Commits are durable: the relay never turns `synchronous_commit` off
//! (`connect` refuses a server where it is off). The connection is
//! unencrypted: the database belongs on a private network (docs/deploy.md).

mod batch;
mod listen;
mod queries;
mod schema;

use std::sync::Mutex;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod, Runtime};
use rand::RngCore;
use tokio::sync::{mpsc, oneshot};
use tokio_postgres::NoTls;

use super::RemoteMail;
use crate::error::{Error, Result};

use batch::Request;

/// The NOTIFY channel for new mail.
pub(super) const MAIL_CHANNEL: &str = "rankfile_mail";
/// Connections one node keeps to the database, at most.
const POOL_SIZE: usize = 16;
/// Sends and acknowledgements that may wait for the batching task.
const WRITE_QUEUE: usize = 16 * 1024;
/// How long a request waits for a connection, or for one to be made, before
/// it fails (the database is down): the relay refuses work instead of hanging.
const CONNECT_WAIT: Duration = Duration::from_secs(5);

/// The relay's PostgreSQL database.
pub struct PostgresStore {
    pool: Pool,
    writer: mpsc::Sender<Request>,
    config: tokio_postgres::Config,
    node: String,
    listening: Mutex<bool>,
}

impl std::fmt::Debug for PostgresStore {
    // The URL may hold a password: never printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore")
            .field("node", &self.node)
            .finish_non_exhaustive()
    }
}

impl PostgresStore {
    /// Connects to `url` (a `postgres://` URL or key=value string), migrates
    /// the schema and starts this node's batching task; `max_batch` bounds one
    /// group commit.
    pub async fn connect(url: &str, max_batch: usize) -> Result<Self> {
        let mut config: tokio_postgres::Config = url
            .parse()
            .map_err(|_| Error::Config("database: not a PostgreSQL URL".into()))?;
        config.connect_timeout(CONNECT_WAIT);
        config.application_name("rankfile-relay");
        let manager = Manager::from_config(
            config.clone(),
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(CONNECT_WAIT))
            .create_timeout(Some(CONNECT_WAIT))
            .recycle_timeout(Some(CONNECT_WAIT))
            .build()
            .map_err(|e| Error::Store(format!("database pool: {e}")))?;
        {
            let mut client = pool.get().await.map_err(pool_error)?;
            let sync: String = client
                .query_one("SHOW synchronous_commit", &[])
                .await
                .map_err(pg_error)?
                .get(0);
            if sync == "off" {
                return Err(Error::Config(
                    "database: synchronous_commit is off; the relay needs durable commits".into(),
                ));
            }
            schema::migrate(&mut client).await?;
        }
        let mut id = [0u8; 8];
        rand::rng().fill_bytes(&mut id);
        let node = hex::encode(id);
        let (tx, rx) = mpsc::channel(WRITE_QUEUE);
        tokio::spawn(batch::run(pool.clone(), rx, max_batch.max(1), node.clone()));
        Ok(PostgresStore {
            pool,
            writer: tx,
            config,
            node,
            listening: Mutex::new(false),
        })
    }

    /// A pooled connection.
    async fn client(&self) -> Result<Object> {
        self.pool.get().await.map_err(pool_error)
    }

    /// Hands a request to the batching task and waits for its answer.
    async fn batched<T>(&self, req: Request, rx: oneshot::Receiver<Result<T>>) -> Result<T> {
        self.writer
            .send(req)
            .await
            .map_err(|_| Error::StoreClosed)?;
        rx.await.map_err(|_| Error::StoreClosed)?
    }

    /// Starts listening for other nodes' mail (once per store).
    fn listen(&self) -> Option<mpsc::UnboundedReceiver<RemoteMail>> {
        let mut listening = self.listening.lock().ok()?;
        if *listening {
            return None;
        }
        *listening = true;
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(listen::run(self.config.clone(), self.node.clone(), tx));
        Some(rx)
    }
}

/// A database error as the relay reports it: the SQLSTATE and the server's
/// message, never its DETAIL (which can quote row values such as account IDs).
pub(super) fn pg_error(e: tokio_postgres::Error) -> Error {
    match e.as_db_error() {
        Some(db) => Error::Store(format!("{}: {}", db.code().code(), db.message())),
        None => Error::Store(format!("database: {e}")),
    }
}

/// No connection could be had from the pool (the database is down or slow).
pub(super) fn pool_error(e: deadpool_postgres::PoolError) -> Error {
    match e {
        deadpool_postgres::PoolError::Backend(e) => pg_error(e),
        other => Error::Store(format!("database unavailable: {other}")),
    }
}

/// A time or ID as PostgreSQL's BIGINT (saturating: both are far below it).
pub(super) fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// A BIGINT read back (never negative for what the relay writes).
pub(super) fn to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}
