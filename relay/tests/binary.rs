//! The `rankfile-relay` binary: flags, the startup line, a client served, and a
//! graceful stop on SIGTERM.

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use support::*;

#[tokio::test]
async fn binary_prints_its_address_and_fingerprint_and_serves() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut child = Command::new(env!("CARGO_BIN_EXE_rankfile-relay"))
        .args(["--bind", "127.0.0.1:0", "--log", "warn", "--data-dir"])
        .arg(dir.path())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("line");
    let words: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(
        &words[..3],
        &["rankfile-relay", "listening", "on"],
        "{line:?}"
    );
    assert_eq!(words[4], "fingerprint");
    let addr = words[3].parse().expect("address");
    assert!(matches!(addr, std::net::SocketAddr::V4(a) if a.ip().is_loopback()));
    let fingerprint = words[5];
    assert_eq!(fingerprint.len(), 64);

    let me = Identity::new(1);
    let mut c = Client::connect(addr, fingerprint).await;
    c.auth(&me).await;
    c.ping().await;

    // A wrong pin is refused by the client's verifier.
    let wrong = "0".repeat(64);
    let tcp = tokio::net::TcpStream::connect(addr).await.expect("tcp");
    let connector = tokio_rustls::TlsConnector::from(tls_config(&wrong));
    let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");
    assert!(connector.connect(name, tcp).await.is_err());

    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
    let status = child.wait().expect("wait");
    assert!(status.success(), "graceful exit on SIGTERM: {status:?}");
    assert!(dir.path().join("relay.db").exists());
}

#[test]
fn bad_flags_are_refused() {
    let status = Command::new(env!("CARGO_BIN_EXE_rankfile-relay"))
        .args(["--tls-cert", "/nonexistent.pem"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("run");
    assert_eq!(
        status.code(),
        Some(2),
        "tls-cert without tls-key is a configuration error"
    );
}
