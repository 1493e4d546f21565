//! The PostgreSQL schema's numbered migrations, embedded in the binary. The
//! version lives in one row of `relay_schema`; nodes starting together take
//! an advisory lock, so exactly one of them migrates.

use tokio_postgres::Client;

use super::pg_error;
use crate::error::{Error, Result};

/// Migration `i` takes the schema from version `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[include_str!("migrations/001_initial.sql")];

/// Advisory lock key held while migrating ("rfmigr" in ASCII).
const MIGRATION_LOCK: i64 = 0x7266_6d69_6772;

/// Brings the schema up to date, all pending migrations and the version bump
/// in one transaction.
pub(super) async fn migrate(client: &mut Client) -> Result<()> {
    let tx = client.transaction().await.map_err(pg_error)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(pg_error)?;
    tx.batch_execute("CREATE TABLE IF NOT EXISTS relay_schema (version INTEGER NOT NULL)")
        .await
        .map_err(pg_error)?;
    let row = tx
        .query_opt("SELECT version FROM relay_schema", &[])
        .await
        .map_err(pg_error)?;
    let version: i32 = match row {
        Some(r) => r.get(0),
        None => {
            tx.execute("INSERT INTO relay_schema (version) VALUES (0)", &[])
                .await
                .map_err(pg_error)?;
            0
        }
    };
    let version =
        usize::try_from(version).map_err(|_| Error::Corrupt("negative schema version"))?;
    if version > MIGRATIONS.len() {
        return Err(Error::Store(format!(
            "database schema {version} is newer than this relay ({})",
            MIGRATIONS.len()
        )));
    }
    for sql in &MIGRATIONS[version..] {
        tx.batch_execute(sql).await.map_err(pg_error)?;
    }
    let latest = i32::try_from(MIGRATIONS.len()).map_err(|_| Error::Corrupt("schema version"))?;
    tx.execute("UPDATE relay_schema SET version = $1", &[&latest])
        .await
        .map_err(pg_error)?;
    tx.commit().await.map_err(pg_error)
}
