//! Numbered SQL migrations, embedded in the binary.
//!
//! The schema version lives in one place only: SQLite's `user_version`. Each
//! migration runs in one transaction that also bumps it, so a crash leaves the
//! store at the old version or the new one, never between.

use rusqlite::Connection;

use crate::error::{Error, Result};

/// Migrations in order; migration `i` (0-based) brings the store to version `i + 1`.
const MIGRATIONS: &[&str] = &[
    include_str!("migrations/0001_init.sql"),
    include_str!("migrations/0002_sealed_sender.sql"),
    include_str!("migrations/0003_channels.sql"),
    include_str!("migrations/0004_committees.sql"),
    include_str!("migrations/0005_joins.sql"),
    include_str!("migrations/0006_channel_messages.sql"),
    include_str!("migrations/0007_alerts.sql"),
    include_str!("migrations/0008_member_access_keys.sql"),
    include_str!("migrations/0009_search_backlog.sql"),
    include_str!("migrations/0010_alerts_owed.sql"),
    include_str!("migrations/0011_contacts_by_successor.sql"),
];

/// The schema version this build writes.
pub const SCHEMA_VERSION: u32 = MIGRATIONS.len() as u32;

pub(super) fn migrate(conn: &mut Connection) -> Result<()> {
    let found: u32 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if found > SCHEMA_VERSION {
        return Err(Error::SchemaTooNew {
            found,
            supported: SCHEMA_VERSION,
        });
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", i as u32 + 1)?;
        tx.commit()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_apply_once_and_set_the_version() {
        let mut conn = Connection::open_in_memory().expect("memory db");
        migrate(&mut conn).expect("first run");
        migrate(&mut conn).expect("second run is a no-op");
        let v: u32 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .expect("version");
        assert_eq!(v, SCHEMA_VERSION);
    }

    #[test]
    fn a_newer_store_is_refused() {
        let mut conn = Connection::open_in_memory().expect("memory db");
        conn.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
            .expect("set");
        assert!(matches!(
            migrate(&mut conn),
            Err(Error::SchemaTooNew { .. })
        ));
    }
}
