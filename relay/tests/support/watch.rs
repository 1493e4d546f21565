//! Test support for the catalogues of bad input: two well-behaved devices
//! that keep talking while a bad client does its worst, and a dump of every
//! row of the relay's database to show a case changed nothing.

use rankfile_proto::v1::{self as pb, client_frame::Body as In, server_frame::Body as Out};

use super::{assert_sent, sealed_to, Client, Identity, TestRelay};

/// The well-behaved devices' access key: their sealed mail is not rate-limited
/// per sender, so they keep talking through the flood cases.
pub const KEY: [u8; 16] = [7; 16];

/// Two well-behaved devices: Alice sends Bob sealed mail, Bob reads it live.
pub struct Watchers {
    pub alice: Client,
    pub bob: Client,
    pub bob_id: Identity,
    sent: u32,
}

impl Watchers {
    pub async fn start(relay: &TestRelay) -> Self {
        let bob_id = Identity::new(1);
        let mut bob = relay.device(&bob_id).await;
        let set = bob
            .request(In::SetAccessKey(pb::SetAccessKey {
                access_key: KEY.to_vec(),
            }))
            .await;
        assert!(matches!(set, Out::Ok(_)), "{set:?}");
        let alice = relay.device(&Identity::new(1)).await;
        let mut w = Watchers {
            alice,
            bob,
            bob_id,
            sent: 0,
        };
        w.still_served().await;
        w
    }

    /// One message from Alice to Bob, delivered live and acknowledged.
    pub async fn still_served(&mut self) {
        self.sent += 1;
        let body = format!("still served {}", self.sent).into_bytes();
        assert_sent(
            self.alice
                .request(sealed_to(&self.bob_id, &KEY, &body))
                .await,
        );
        let d = self.bob.delivery().await;
        assert_eq!(d.envelope, body);
        self.bob.ack(vec![d.id]).await;
        self.bob.ping().await;
        self.alice.ping().await;
    }
}

/// Every row of every table of the relay's database, in a fixed order; a
/// blob as its length and a hash, so a difference prints short. Left out:
/// `sqlite_sequence`, the counter of message IDs, which the watchers' own
/// traffic during a case moves (every row they store they also delete).
pub fn dump(relay: &TestRelay) -> Vec<String> {
    use rusqlite::types::Value;
    use std::hash::{Hash, Hasher};
    let db = relay.db();
    let tables: Vec<String> = db
        .prepare(
            "SELECT name FROM sqlite_master WHERE type = 'table' \
             AND name != 'sqlite_sequence' ORDER BY name",
        )
        .expect("tables")
        .query_map([], |r| r.get(0))
        .expect("tables")
        .collect::<Result<_, _>>()
        .expect("tables");
    let show = |v: Value| match v {
        Value::Blob(b) => {
            let mut h = std::collections::hash_map::DefaultHasher::new();
            b.hash(&mut h);
            format!("blob({}, {:016x})", b.len(), h.finish())
        }
        other => format!("{other:?}"),
    };
    let mut out = Vec::new();
    for table in tables {
        let mut stmt = db
            .prepare(&format!("SELECT * FROM \"{table}\""))
            .expect("select");
        let columns = stmt.column_count();
        let mut rows: Vec<String> = stmt
            .query_map([], |r| {
                let values = (0..columns)
                    .map(|i| r.get::<_, Value>(i).map(show))
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(format!("{table}: {}", values.join(" | ")))
            })
            .expect("rows")
            .collect::<Result<_, _>>()
            .expect("rows");
        rows.sort();
        out.extend(rows);
    }
    out
}
