//! What a relay run leaves behind, at the default log level (`RUST_LOG` and
//! `RANKFILE_RELAY_LOG` unset): a load of sealed and identified sends, a
//! refused one, an attachment and a push wake-up, then a graceful stop. Its
//! log holds no account ID (hex or `rf1-`), no IP address and no envelope
//! size, and its store keeps no record of the messages once delivered.

mod support;

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};

use rankfile_proto::v1::{self as pb, client_frame::Body as In, server_frame::Body as Out};
use sha2::{Digest, Sha256};
use support::push_server::PushServer;
use support::*;

/// Envelope and blob sizes no other number in a log is likely to match.
const SEALED_LEN: usize = 1337;
const IDENTIFIED_LEN: usize = 1733;
const ALERT_LEN: usize = 1511;
const BLOB_LEN: usize = 4243;

/// Whether `text` holds something shaped like an IPv4 address.
fn has_ipv4(text: &str) -> bool {
    text.split(|c: char| !(c.is_ascii_digit() || c == '.'))
        .any(|word| {
            let parts: Vec<&str> = word.trim_matches('.').split('.').collect();
            parts.len() == 4
                && parts
                    .iter()
                    .all(|p| !p.is_empty() && p.len() <= 3 && p.parse::<u8>().is_ok())
        })
}

#[tokio::test]
async fn a_load_run_logs_no_account_address_or_size_and_keeps_no_message_record() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let config = dir.path().join("relay.toml");
    std::fs::write(
        &config,
        format!(
            "bind = \"127.0.0.1:0\"\ndata_dir = {:?}\npush_allow_http = true\n",
            data.to_str().expect("utf8")
        ),
    )
    .expect("config");
    let mut child = Command::new(env!("CARGO_BIN_EXE_rankfile-relay"))
        .arg("--config")
        .arg(&config)
        .env_remove("RUST_LOG")
        .env_remove("RANKFILE_RELAY_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("relay starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("startup line");
    let words: Vec<&str> = line.split_whitespace().collect();
    let addr: std::net::SocketAddr = words[3].parse().expect("address");
    let fingerprint = words[5].to_owned();
    // The log is read on a thread, so a chatty relay never blocks on it.
    let mut stderr = child.stderr.take().expect("stderr");
    let log = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });

    let push = PushServer::start().await;
    let ids: Vec<Identity> = (0..4).map(|_| Identity::new(1)).collect();
    let (alice, bob, carol, dave) = (&ids[0], &ids[1], &ids[2], &ids[3]);
    let connect = || Client::connect(addr, &fingerprint);

    // Dave: offline, with a push endpoint.
    let mut d = connect().await;
    d.auth(dave).await;
    assert!(matches!(
        d.set_push_endpoint(&push.url("/up/dave")).await,
        Out::Ok(_)
    ));
    d.close().await;
    // Bob: online, with an access key.
    let mut b = connect().await;
    b.auth(bob).await;
    let key = [3u8; 16];
    assert!(matches!(
        b.request(In::SetAccessKey(pb::SetAccessKey {
            access_key: key.to_vec()
        }))
        .await,
        Out::Ok(_)
    ));
    assert!(b.backlog_deliveries().await.is_empty());

    let mut a = connect().await;
    a.auth(alice).await;
    let mut c = connect().await;
    c.auth(carol).await;
    let mut anon = connect().await;
    anon.request(In::Anonymous(pb::Anonymous {})).await;
    for i in 0..10u8 {
        assert_sent(anon.request(sealed_to(bob, &key, &[i; SEALED_LEN])).await);
        assert_sent(c.request(send_to(bob, &[i; IDENTIFIED_LEN])).await);
    }
    // Refused: a wrong access key, an unknown recipient.
    anon.request(sealed_to(bob, &[9u8; 16], &[1; SEALED_LEN]))
        .await;
    c.request(send_to(&Identity::new(1), &[1; IDENTIFIED_LEN]))
        .await;
    // An alert wakes Dave.
    assert_sent(a.request(high_to(dave, &[7; ALERT_LEN])).await);
    push.wait_for("/up/dave", 1, 30).await;
    // An attachment.
    let blob = vec![5u8; BLOB_LEN];
    let token = upload_token(&mut a, BLOB_LEN as u64).await;
    let out = anon
        .request(first_chunk(
            &token,
            &Sha256::digest(&blob),
            BLOB_LEN as u64,
            &blob,
        ))
        .await;
    assert!(matches!(out, Out::AttachmentStored(s) if s.complete));

    // Bob takes everything; Dave comes back and takes the alert.
    let mut got = Vec::new();
    while got.len() < 20 {
        got.push(b.delivery().await.id);
    }
    b.ack(got).await;
    b.ping().await;
    let mut d = connect().await;
    d.auth(dave).await;
    let alert = d.delivery().await;
    d.ack(vec![alert.id]).await;
    d.ping().await;

    // A graceful stop (SIGTERM), so everything logged at the end is there.
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    child.wait().expect("relay exits");
    let log = log.join().expect("log thread");
    // The log was captured at info: the wake-up counters are there.
    assert!(log.contains("push wake-ups"), "log:\n{log}");

    for id in &ids {
        assert!(
            !log.contains(&hex::encode(id.account)),
            "account ID in:\n{log}"
        );
    }
    assert!(!log.contains("rf1-"), "account ID in:\n{log}");
    assert!(!has_ipv4(&log), "IP address in:\n{log}");
    assert!(!log.contains("[::1]"), "IP address in:\n{log}");
    for n in [SEALED_LEN, IDENTIFIED_LEN, ALERT_LEN, BLOB_LEN] {
        assert!(!log.contains(&n.to_string()), "size {n} in:\n{log}");
    }

    // Delivered messages are deleted, not marked; no table records sends.
    let db = rusqlite::Connection::open_with_flags(
        data.join("relay.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .expect("db");
    let messages: i64 = db
        .query_row("SELECT COUNT(*) FROM messages", [], |r| r.get(0))
        .expect("count");
    assert_eq!(messages, 0);
    let mut tables: Vec<String> = db
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        .expect("tables")
        .query_map([], |r| r.get(0))
        .expect("rows")
        .collect::<Result<_, _>>()
        .expect("names");
    tables.retain(|t| t != "sqlite_sequence");
    assert_eq!(
        tables,
        [
            "attachments",
            "devices",
            "messages",
            "one_time_prekeys",
            "push_endpoints",
            "signed_prekeys"
        ]
    );
}

#[test]
fn ipv4_is_recognised() {
    assert!(has_ipv4("peer 127.0.0.1:443 gone"));
    assert!(has_ipv4("from 10.1.2.3"));
    assert!(!has_ipv4("version 0.85.3 at 12:00"));
}
