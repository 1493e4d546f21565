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
    include_str!("migrations/0012_alerts_by_key.sql"),
    include_str!("migrations/0013_sessions_by_row.sql"),
    include_str!("migrations/0014_committee_owed.sql"),
    include_str!("migrations/0015_outbox_reseal.sql"),
    include_str!("migrations/0016_repair.sql"),
    include_str!("migrations/0017_received_day.sql"),
    include_str!("migrations/0018_conversation_timers.sql"),
    include_str!("migrations/0019_signed_alerts.sql"),
    include_str!("migrations/0020_outbox_parking.sql"),
    include_str!("migrations/0021_access_key_rotation.sql"),
    include_str!("migrations/0022_uploaded_attachments.sql"),
    include_str!("migrations/0023_access_key_order.sql"),
];

/// The schema version this build writes.
pub const SCHEMA_VERSION: u32 = MIGRATIONS.len() as u32;

pub(super) fn migrate(conn: &mut Connection) -> Result<()> {
    migrate_to(conn, SCHEMA_VERSION)
}

/// Brings the store up to `target` (at most [`SCHEMA_VERSION`]).
fn migrate_to(conn: &mut Connection, target: u32) -> Result<()> {
    let found: u32 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if found > SCHEMA_VERSION {
        return Err(Error::SchemaTooNew {
            found,
            supported: SCHEMA_VERSION,
        });
    }
    let todo = MIGRATIONS.iter().enumerate().take(target as usize);
    for (i, sql) in todo.skip(found as usize) {
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
    fn alerts_keep_their_rows_when_keyed_by_their_primary_keys() {
        let mut conn = Connection::open_in_memory().expect("memory db");
        migrate_to(&mut conn, 11).expect("schema 11");
        conn.execute_batch(
            "INSERT INTO alerts (alert_id, via, sender, kind, scope, title, body, place,
                 starts_at, expires_at, answers_wanted, received_at, forwarded, my_answer,
                 my_answered_at)
             VALUES (x'01', x'02', NULL, 1, 2, 'Raid', 'Come now', 'Gate', 5, 6, 1, 7, 0, 3, 8),
                    (x'09', x'02', x'03', 0, 1, 'Meeting', '', '', 0, 0, 0, 4, 1, NULL, NULL);
             INSERT INTO alert_recipients VALUES (x'01', x'aa', 2, 11), (x'01', x'bb', NULL, NULL);
             INSERT INTO alert_holds VALUES (x'09', x'cc', 12);",
        )
        .expect("rows at schema 11");
        let dump = |conn: &Connection| -> Vec<String> {
            let mut rows = Vec::new();
            for sql in [
                "SELECT quote(alert_id), quote(via), quote(sender), kind, scope, title, body,
                     place, starts_at, expires_at, answers_wanted, received_at, forwarded,
                     quote(my_answer), quote(my_answered_at) FROM alerts ORDER BY alert_id",
                "SELECT quote(alert_id), quote(account), quote(answer), quote(answered_at), '', '',
                     '', '', '', '', '', '', '', '', '' FROM alert_recipients ORDER BY account",
                "SELECT quote(alert_id), quote(committee_id), held_at, '', '', '', '', '', '',
                     '', '', '', '', '', '' FROM alert_holds",
            ] {
                let mut stmt = conn.prepare(sql).expect("dump");
                let found = stmt
                    .query_map([], |r| {
                        (0..15)
                            .map(|i| {
                                r.get::<_, rusqlite::types::Value>(i)
                                    .map(|v| format!("{v:?}"))
                            })
                            .collect::<rusqlite::Result<Vec<_>>>()
                    })
                    .expect("query");
                rows.extend(found.map(|r| r.expect("row").join("|")));
            }
            rows
        };
        let before = dump(&conn);
        assert_eq!(before.len(), 5);
        migrate_to(&mut conn, 12).expect("schema 12");
        assert_eq!(dump(&conn), before);
        for table in ["alerts", "alert_recipients", "alert_holds"] {
            let keyed_only = conn.prepare(&format!("SELECT rowid FROM {table}")).is_err();
            assert!(keyed_only, "{table} still has a rowid");
        }
    }

    #[test]
    fn sessions_keep_their_records_in_a_rowid_table() {
        let mut conn = Connection::open_in_memory().expect("memory db");
        migrate_to(&mut conn, 12).expect("schema 12");
        let big: Vec<u8> = (0..5_773u32).map(|i| (i * 7) as u8).collect();
        conn.execute(
            "INSERT INTO sessions (address, record) VALUES ('aa.1', x'0102'), ('bb.2', ?1)",
            [&big],
        )
        .expect("rows at schema 12");
        let dump = |conn: &Connection| -> Vec<(String, Vec<u8>)> {
            conn.prepare("SELECT address, record FROM sessions ORDER BY address")
                .expect("dump")
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
                .expect("query")
                .collect::<rusqlite::Result<_>>()
                .expect("rows")
        };
        let before = dump(&conn);
        migrate(&mut conn).expect("schema 13");
        assert_eq!(dump(&conn), before);
        assert!(conn.prepare("SELECT rowid FROM sessions").is_ok());
        // The store's write keeps one row per address, rewritten in place.
        let rowid = |conn: &Connection| -> i64 {
            conn.query_row(
                "SELECT rowid FROM sessions WHERE address = 'bb.2'",
                [],
                |r| r.get(0),
            )
            .expect("row")
        };
        let first = rowid(&conn);
        conn.execute(
            crate::store::signal::PUT_SESSION_SQL,
            rusqlite::params!["bb.2", &[9u8][..]],
        )
        .expect("upsert");
        assert_eq!(rowid(&conn), first);
        let n: i64 = conn
            .query_row("SELECT count(*) FROM sessions", [], |r| r.get(0))
            .expect("count");
        assert_eq!(n, 2);
    }

    #[test]
    fn received_envelopes_keep_only_the_day() {
        let mut conn = Connection::open_in_memory().expect("memory db");
        migrate_to(&mut conn, 16).expect("schema 16");
        // 2024-03-09 17:46:40.123 UTC, and a moment later the same day.
        conn.execute_batch(
            "INSERT INTO received_envelopes VALUES (x'01', 1710006400123), (x'02', 1710006499999)",
        )
        .expect("rows at schema 16");
        migrate_to(&mut conn, 17).expect("schema 17");
        let days: Vec<i64> = conn
            .prepare("SELECT received_day FROM received_envelopes ORDER BY envelope_id")
            .expect("select")
            .query_map([], |r| r.get(0))
            .expect("query")
            .collect::<rusqlite::Result<_>>()
            .expect("rows");
        assert_eq!(days, vec![19_791, 19_791]);
    }

    #[test]
    fn alerts_from_before_signing_go_and_the_new_columns_are_there() {
        let mut conn = Connection::open_in_memory().expect("memory db");
        migrate_to(&mut conn, 13).expect("schema 13");
        conn.execute_batch(
            "INSERT INTO alerts (alert_id, via, sender, kind, scope, title, body, place,
                 starts_at, expires_at, answers_wanted, received_at)
             VALUES (x'01', x'02', NULL, 1, 2, 'Raid', 'Come now', 'Gate', 5, 6, 1, 7);
             INSERT INTO alert_recipients (alert_id, account) VALUES (x'01', x'aa');
             INSERT INTO alert_holds VALUES (x'01', x'cc', 12);
             INSERT INTO alert_owed VALUES (x'01', x'bb', x'02', 0);",
        )
        .expect("rows at schema 13");
        migrate(&mut conn).expect("schema 19");
        for table in ["alerts", "alert_recipients", "alert_holds", "alert_owed"] {
            let n: i64 = conn
                .query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
                .expect("count");
            assert_eq!(
                n, 0,
                "{table}: unsigned alerts cannot be checked or passed on"
            );
        }
        conn.prepare(
            "SELECT raised, signature, origin, raiser, raised_at, counter, counts_version,
                 rollcall_due_at FROM alerts",
        )
        .expect("signed alert columns");
        conn.prepare("SELECT committee_id, reached_before FROM alert_recipients")
            .expect("recipient columns");
        conn.prepare("SELECT * FROM alert_counts, alert_notes_owed")
            .expect("roll-call tables");
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
