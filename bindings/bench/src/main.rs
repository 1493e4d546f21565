//! The Rust half of `cargo xtask bench-ffi` (a phone back from a weekend
//! offline catches up): `prepare` makes the phone and its backlog at a relay
//! xtask started, `rust` catches a copy of it up through the Rust facade.
//! The Kotlin half (`bindings/kotlin`, `CatchUpBench.kt`) catches up another
//! copy through the generated bindings; xtask compares the two.
//!
//! ```text
//! ffi-catchup prepare <dir> <relay addr> <fingerprint> <messages>
//! ffi-catchup rust <dir> <relay addr> <fingerprint> <messages>
//! ```
//! `<dir>/phone/rankfile.db` is the phone's store (where the bindings'
//! `Client.open` looks), `<dir>/key` its database key in hex.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use rankfile_core::committee::{ChannelKind, CommitteeMeta, Role};
use rankfile_core::transport::{
    parse_fingerprint, Client, ClientEvent, ConnectionState, RelayAddress,
};
use rankfile_core::{Account, DatabaseKey, Event};
use tokio::sync::broadcast;

/// How long any one wait may take before the bench gives up.
const PATIENCE: Duration = Duration::from_secs(600);

type Res<T> = Result<T, String>;

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("ffi-catchup: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["prepare", dir, addr, fp, n] => runtime.block_on(prepare(dir.as_ref(), addr, fp, n)),
        ["rust", dir, addr, fp, n] => runtime.block_on(catch_up(dir.as_ref(), addr, fp, n)),
        _ => Err(
            "usage: ffi-catchup prepare|rust <dir> <relay addr> <fingerprint> <messages>".into(),
        ),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ffi-catchup: {e}");
            ExitCode::FAILURE
        }
    }
}

fn relay(addr: &str, fp: &str) -> Res<RelayAddress> {
    Ok(RelayAddress {
        addr: addr.parse().map_err(err)?,
        fingerprint: parse_fingerprint(fp).ok_or("bad fingerprint")?,
    })
}

fn store(dir: &Path) -> PathBuf {
    // Where `Client::open` (and so the bindings' `Client.open`) looks.
    Client::database_path(&dir.join("phone"))
}

async fn connected(client: &Client) -> Res<()> {
    let deadline = Instant::now() + PATIENCE;
    while !matches!(client.connection_state(), ConnectionState::Connected { .. }) {
        if Instant::now() > deadline {
            return Err("the relay was not reached".into());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

/// Waits for `n` stored messages (1:1 or channel) among `events`.
async fn stored(events: &mut broadcast::Receiver<ClientEvent>, n: u64) -> Res<()> {
    let mut seen = 0;
    while seen < n {
        match tokio::time::timeout(PATIENCE, events.recv()).await {
            Ok(Ok(ClientEvent::Core(
                Event::MessageStored { .. } | Event::ChannelMessageStored { .. },
            ))) => seen += 1,
            Ok(Ok(_)) => {}
            Ok(Err(broadcast::error::RecvError::Lagged(k))) => {
                return Err(format!("the event stream dropped {k} events"))
            }
            Ok(Err(e)) => return Err(err(e)),
            Err(_) => return Err(format!("only {seen} of {n} messages arrived")),
        }
    }
    Ok(())
}

/// The phone (online once, then offline), a comrade, one committee with a
/// discussion channel, and `n` messages for the phone waiting at the relay:
/// every other one 1:1, the rest channel posts.
async fn prepare(dir: &Path, addr: &str, fp: &str, n: &str) -> Res<()> {
    let n: u64 = n.parse().map_err(err)?;
    let relay = relay(addr, fp)?;
    std::fs::create_dir_all(dir.join("phone")).map_err(err)?;
    let key = DatabaseKey::generate();
    std::fs::write(dir.join("key"), hex::encode(key.expose_for_keystore())).map_err(err)?;
    let phone = Client::start(
        Account::create(&store(dir), &key).map_err(err)?,
        relay.clone(),
    )
    .map_err(err)?;
    let comrade_account =
        Account::create(&dir.join("comrade.db"), &DatabaseKey::generate()).map_err(err)?;
    let comrade_id = comrade_account.id();
    let comrade = Client::start(comrade_account, relay).map_err(err)?;
    connected(&phone).await?;
    connected(&comrade).await?;
    let phone_id = phone.id().await.map_err(err)?;
    let mut phone_events = phone.subscribe();

    // A session both ways, then the committee and its channel.
    comrade
        .add_contact_from_relay("phone".into(), phone_id)
        .await
        .map_err(err)?;
    comrade
        .send_text(phone_id, "hello".into())
        .await
        .map_err(err)?;
    stored(&mut phone_events, 1).await?;
    phone
        .send_text(comrade_id, "hello".into())
        .await
        .map_err(err)?;
    phone.flush().await.map_err(err)?;
    let committee = comrade
        .create_committee(CommitteeMeta {
            name: "Weekend".into(),
            ..CommitteeMeta::default()
        })
        .await
        .map_err(err)?;
    comrade
        .add_member(committee, phone_id, Role::Member)
        .await
        .map_err(err)?;
    let channel = comrade
        .create_channel(committee, ChannelKind::Discussion)
        .await
        .map_err(err)?;
    let deadline = Instant::now() + PATIENCE;
    while !phone
        .committee(committee)
        .await
        .is_ok_and(|s| s.channels.contains_key(&channel))
    {
        if Instant::now() > deadline {
            return Err("the phone never got the channel".into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // One post while online, so the phone holds the comrade's sender key.
    comrade
        .post(committee, channel, "welcome".into())
        .await
        .map_err(err)?;
    stored(&mut phone_events, 1).await?;
    phone.flush().await.map_err(err)?;
    phone.close().await.map_err(err)?;

    // The weekend: the backlog piles up at the relay.
    for i in 0..n {
        if i % 2 == 0 {
            comrade
                .send_text(phone_id, format!("message {i}"))
                .await
                .map_err(err)?;
        } else {
            comrade
                .post(committee, channel, format!("post {i}"))
                .await
                .map_err(err)?;
        }
        if i % 500 == 499 {
            comrade.flush().await.map_err(err)?;
        }
    }
    comrade.flush().await.map_err(err)?;
    comrade.close().await.map_err(err)?;
    Ok(())
}

/// Opens the phone through the Rust facade and times it from open to the
/// last of the `n` messages stored; prints `ms=<milliseconds>`.
async fn catch_up(dir: &Path, addr: &str, fp: &str, n: &str) -> Res<()> {
    let n: u64 = n.parse().map_err(err)?;
    let relay = relay(addr, fp)?;
    let key_hex = std::fs::read_to_string(dir.join("key")).map_err(err)?;
    let key = DatabaseKey::from_slice(&hex::decode(key_hex.trim()).map_err(err)?).map_err(err)?;
    let start = Instant::now();
    let phone =
        Client::start(Account::open(&store(dir), &key).map_err(err)?, relay).map_err(err)?;
    let mut events = phone.subscribe();
    stored(&mut events, n).await?;
    let ms = start.elapsed().as_millis();
    phone.close().await.map_err(err)?;
    println!("ms={ms}");
    Ok(())
}
