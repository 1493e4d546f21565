//! Load for the failure tests (a node killed, the database restarted):
//! senders that record which sends the relay acknowledged, and receivers
//! that acknowledge what they get and, when their connection dies, log in
//! again to the first node that answers. Neither panics on a dead
//! connection: that is what the tests make happen.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use prost::Message as _;
use rankfile_proto::v1::{self as pb, client_frame::Body as In, server_frame::Body as Out};
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::Message;

use super::{send_to, tls_config, Client, Identity};

/// A relay node to connect to.
#[derive(Clone, Debug)]
pub struct Node {
    pub addr: SocketAddr,
    pub fingerprint: String,
}

/// What a receiver got: (relay message ID, envelope), in arrival order.
pub type Received = Arc<Mutex<Vec<(u64, Vec<u8>)>>>;

/// A copy of an identity (same keys, account and device).
pub fn same(id: &Identity) -> Identity {
    id.other_device(id.device)
}

async fn next_frame(c: &mut Client, wait: Duration) -> Result<Option<pb::ServerFrame>, ()> {
    match timeout(wait, c.ws.next()).await {
        Err(_) => Ok(None),
        Ok(Some(Ok(Message::Binary(b)))) => {
            pb::ServerFrame::decode(&b[..]).map(Some).map_err(|_| ())
        }
        Ok(Some(Ok(Message::Close(_)))) | Ok(None) | Ok(Some(Err(_))) => Err(()),
        Ok(Some(Ok(_))) => Ok(None),
    }
}

async fn send_frame(c: &mut Client, request_id: u64, body: In) -> Result<(), ()> {
    let f = pb::ClientFrame {
        version: 1,
        request_id,
        body: Some(body),
    };
    let sent = timeout(
        Duration::from_secs(5),
        c.ws.send(Message::binary(f.encode_to_vec())),
    )
    .await;
    match sent {
        Ok(Ok(())) => Ok(()),
        _ => Err(()),
    }
}

/// Connects and logs in to one node; `None` if anything fails.
async fn try_login(node: &Node, id: &Identity) -> Option<Client> {
    let tcp = timeout(
        Duration::from_secs(2),
        tokio::net::TcpStream::connect(node.addr),
    )
    .await
    .ok()?
    .ok()?;
    let connector = tokio_rustls::TlsConnector::from(tls_config(&node.fingerprint));
    let name = rustls::pki_types::ServerName::try_from("localhost").ok()?;
    let tls = timeout(Duration::from_secs(5), connector.connect(name, tcp))
        .await
        .ok()?
        .ok()?;
    let (ws, _) = timeout(
        Duration::from_secs(5),
        tokio_tungstenite::client_async_with_config(
            "ws://localhost/",
            tls,
            Some(rankfile_relay::websocket_config()),
        ),
    )
    .await
    .ok()?
    .ok()?;
    let mut c = Client {
        ws,
        hello: pb::Hello::default(),
        next_id: 1,
        backlog: Default::default(),
    };
    match next_frame(&mut c, Duration::from_secs(5))
        .await
        .ok()??
        .body?
    {
        Out::Hello(h) => c.hello = h,
        _ => return None,
    }
    let auth = In::Auth(id.auth(&c.hello.challenge));
    send_frame(&mut c, 1, auth).await.ok()?;
    loop {
        let f = next_frame(&mut c, Duration::from_secs(5)).await.ok()??;
        match f.body? {
            Out::AuthOk(_) => return Some(c),
            Out::Error(_) => return None,
            _ => continue,
        }
    }
}

/// Logs in to the first node that answers, trying until `stop`.
async fn login(nodes: &[Node], id: &Identity, stop: &AtomicBool) -> Option<Client> {
    while !stop.load(Ordering::Acquire) {
        for node in nodes {
            if let Some(c) = try_login(node, id).await {
                return Some(c);
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    None
}

/// Receives (and acknowledges) until `stop`, logging in again whenever the
/// connection dies.
pub async fn receive(nodes: Vec<Node>, id: Identity, got: Received, stop: Arc<AtomicBool>) {
    while let Some(mut c) = login(&nodes, &id, &stop).await {
        while !stop.load(Ordering::Acquire) {
            let Ok(frame) = next_frame(&mut c, Duration::from_millis(200)).await else {
                break;
            };
            if let Some(Out::Deliver(d)) = frame.and_then(|f| f.body) {
                got.lock().expect("lock").push((d.id, d.envelope));
                if send_frame(&mut c, 0, In::Ack(pb::Ack { ids: vec![d.id] }))
                    .await
                    .is_err()
                {
                    break;
                }
            }
        }
    }
}

/// Counters of a sender.
#[derive(Default)]
pub struct Sent {
    /// Envelopes whose send the relay acknowledged (SendResult).
    pub acknowledged: Mutex<Vec<(usize, Vec<u8>)>>,
    /// Sends the relay answered with an error (it refused the work).
    pub refused: AtomicU64,
    /// Sends whose answer never came (the connection died first).
    pub lost: AtomicU64,
}

/// The envelopes the relay acknowledged for receiver `i`, over every sender.
pub fn acknowledged_for(sent: &[Arc<Sent>], i: usize) -> Vec<Vec<u8>> {
    sent.iter()
        .flat_map(|s| {
            let acked = s.acknowledged.lock().expect("lock");
            acked
                .iter()
                .filter(|(t, _)| *t == i)
                .map(|(_, e)| e.clone())
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Sends `tag-N` envelopes round-robin to `to` until `stop`, one at a time,
/// recording the outcome of each. A send whose answer never came is not
/// repeated: every envelope is sent at most once, so any envelope a phone
/// gets under two IDs would be the relay storing one send twice.
pub async fn send(
    nodes: Vec<Node>,
    id: Identity,
    to: Vec<Identity>,
    tag: String,
    sent: Arc<Sent>,
    stop: Arc<AtomicBool>,
) {
    let mut seq = 0usize;
    while let Some(mut c) = login(&nodes, &id, &stop).await {
        while !stop.load(Ordering::Acquire) {
            let target = seq % to.len();
            let envelope = format!("{tag}-{seq}").into_bytes();
            seq += 1;
            c.next_id += 1;
            let request = c.next_id;
            if send_frame(&mut c, request, send_to(&to[target], &envelope))
                .await
                .is_err()
            {
                sent.lost.fetch_add(1, Ordering::Relaxed);
                break;
            }
            let answer = loop {
                match next_frame(&mut c, Duration::from_secs(15)).await {
                    Ok(Some(f)) if f.request_id == request => break f.body,
                    Ok(Some(_)) => continue,
                    Ok(None) | Err(()) => break None,
                }
            };
            match answer {
                Some(Out::SendResult(_)) => {
                    sent.acknowledged
                        .lock()
                        .expect("lock")
                        .push((target, envelope));
                }
                Some(_) => {
                    sent.refused.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                None => {
                    sent.lost.fetch_add(1, Ordering::Relaxed);
                    break;
                }
            }
        }
    }
}

/// Checks one receiver's mail against what was acknowledged for it: every
/// acknowledged envelope arrived, and no envelope arrived under two IDs.
/// Returns a description of what is wrong, if anything.
pub fn check(got: &[(u64, Vec<u8>)], acknowledged: &[Vec<u8>]) -> Result<(), String> {
    let mut ids_of: std::collections::HashMap<&[u8], std::collections::BTreeSet<u64>> =
        std::collections::HashMap::new();
    for (id, env) in got {
        ids_of.entry(&env[..]).or_default().insert(*id);
    }
    if let Some((env, ids)) = ids_of.iter().find(|(_, ids)| ids.len() > 1) {
        return Err(format!(
            "{} stored twice: ids {ids:?}",
            String::from_utf8_lossy(env)
        ));
    }
    let missing: Vec<String> = acknowledged
        .iter()
        .filter(|e| !ids_of.contains_key(&e[..]))
        .map(|e| String::from_utf8_lossy(e).into_owned())
        .collect();
    if !missing.is_empty() {
        return Err(format!(
            "{} acknowledged sends lost: {:?}",
            missing.len(),
            &missing[..missing.len().min(5)]
        ));
    }
    Ok(())
}
