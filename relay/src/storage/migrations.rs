//! Numbered SQL migrations embedded in the binary. The schema version lives in
//! exactly one place: `PRAGMA user_version`.

use rusqlite::Connection;

use crate::error::{Error, Result};

/// Migration `i` takes the schema from version `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[
    include_str!("migrations/001_initial.sql"),
    include_str!("migrations/002_push_endpoints.sql"),
    include_str!("migrations/003_identified_index.sql"),
    include_str!("migrations/004_attachment_delete_hash.sql"),
];

/// Brings the schema up to date, each migration in its own transaction together
/// with the version bump.
pub(super) fn migrate(conn: &mut Connection) -> Result<()> {
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    let version =
        usize::try_from(version).map_err(|_| Error::Corrupt("negative schema version"))?;
    if version > MIGRATIONS.len() {
        return Err(Error::Store(format!(
            "database schema {version} is newer than this relay ({})",
            MIGRATIONS.len()
        )));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)?;
        tx.commit()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrates_once() {
        let mut conn = Connection::open_in_memory().expect("open");
        migrate(&mut conn).expect("first");
        migrate(&mut conn).expect("second is a no-op");
        let v: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .expect("version");
        assert_eq!(v, MIGRATIONS.len() as i64);
    }
}
