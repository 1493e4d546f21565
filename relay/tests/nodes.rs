//! Several relay nodes on one PostgreSQL database, in this process, over real
//! TLS sockets: a committee of 50 phones spread over two nodes gets every
//! post, once, at once (other nodes' mail arrives by LISTEN/NOTIFY, not by
//! polling: a connected phone that has read its backlog reads the store only
//! when woken); an alert to a sleeping phone is one push wake-up across all
//! nodes; a mailbox quota holds across nodes.

mod support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use rankfile_proto::v1::{error::Code, server_frame::Body as Out};
use rankfile_relay::{Config, DatabaseUrl, RelayHandle};
use support::postgres as pg;
use support::push_server::PushServer;
use support::*;

/// Relay nodes on one fresh database, sharing one data directory (its
/// certificate, sealed-sender keys and attachments), as docs/deploy.md says.
struct Nodes {
    nodes: Vec<RelayHandle>,
    _dir: tempfile::TempDir,
}

impl Nodes {
    async fn start(test: &str, n: usize, tweak: impl Fn(&mut Config)) -> Option<Nodes> {
        let cluster = pg::cluster(test)?;
        let url = pg::fresh_database(&cluster).await;
        let dir = tempfile::tempdir().expect("tempdir");
        let mut nodes = Vec::new();
        for _ in 0..n {
            let mut config = Config::local(dir.path());
            config.database = Some(DatabaseUrl(url.clone()));
            tweak(&mut config);
            nodes.push(rankfile_relay::start(config).await.expect("node starts"));
        }
        Some(Nodes { nodes, _dir: dir })
    }

    async fn device(&self, node: usize, id: &Identity) -> Client {
        let h = &self.nodes[node];
        let mut c = Client::connect(h.local_addr(), h.fingerprint()).await;
        c.auth(id).await;
        c
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_committee_of_50_over_two_nodes_gets_every_post_once() {
    let Some(nodes) = Nodes::start("committee_of_50", 2, |_| {}).await else {
        return;
    };
    let nodes = Arc::new(nodes);
    let members: Arc<Vec<Identity>> = Arc::new((0..50).map(|_| Identity::new(1)).collect());
    // Every member logs in (half on each node) and reads its empty backlog
    // before anyone posts: what follows reaches it only by being woken.
    let mut clients = Vec::new();
    for (i, m) in members.iter().enumerate() {
        let mut c = nodes.device(i % 2, m).await;
        assert!(c.backlog_deliveries().await.is_empty());
        clients.push(c);
    }
    const POSTERS: usize = 10;
    let tasks: Vec<_> = clients
        .into_iter()
        .enumerate()
        .map(|(i, mut c)| {
            let members = members.clone();
            tokio::spawn(async move {
                if i < POSTERS {
                    for (j, to) in members.iter().enumerate() {
                        if j != i {
                            assert_sent(
                                c.request(send_to(to, format!("post {i}").as_bytes())).await,
                            );
                        }
                    }
                }
                let expected = if i < POSTERS { POSTERS - 1 } else { POSTERS };
                let mut got: BTreeMap<Vec<u8>, u64> = BTreeMap::new();
                while got.len() < expected {
                    let d = c.delivery().await;
                    if let Some(first) = got.insert(d.envelope.clone(), d.id) {
                        panic!("member {i} got a post twice (ids {first} and {})", d.id);
                    }
                    c.ack(vec![d.id]).await;
                }
                // Nothing more is on its way: a ping's answer comes after it.
                c.ping().await;
                assert!(
                    !c.backlog
                        .iter()
                        .any(|f| matches!(f.body, Some(Out::Deliver(_)))),
                    "member {i} got more than the posts"
                );
                got.len()
            })
        })
        .collect();
    let mut total = 0;
    for t in tasks {
        total += tokio::time::timeout(Duration::from_secs(120), t)
            .await
            .expect("every member gets every post in time")
            .expect("member");
    }
    assert_eq!(total, POSTERS * 49);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alert_wakes_a_sleeping_phone_once_across_nodes() {
    let server = PushServer::start().await;
    let Some(nodes) = Nodes::start("alert_once", 2, |c| c.push_allow_http = true).await else {
        return;
    };
    let bob = Identity::new(1);
    let mut b = nodes.device(1, &bob).await;
    assert!(matches!(
        b.set_push_endpoint(&server.url("/up/bob")).await,
        Out::Ok(_)
    ));
    b.close().await;
    let mut alice = nodes.device(0, &Identity::new(1)).await;
    assert_sent(alice.request(high_to(&bob, b"strike now")).await);
    server.wait_for("/up/bob", 1, 20).await;
    // Time for any other node to post its own wake-up, had it one to post.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        server.requests_to("/up/bob").len(),
        1,
        "one wake-up, not one per node"
    );
    let sent: u64 = nodes.nodes.iter().map(|n| n.push_stats().sent).sum();
    assert_eq!(sent, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mailbox_quota_holds_across_nodes() {
    let Some(nodes) = Nodes::start("quota_across_nodes", 2, |c| c.mailbox_quota = 5).await else {
        return;
    };
    let bob = Identity::new(1);
    nodes.device(0, &bob).await.close().await;
    let mut senders = [
        nodes.device(0, &Identity::new(1)).await,
        nodes.device(1, &Identity::new(1)).await,
    ];
    let mut stored = 0;
    let mut full = 0;
    for n in 0..12 {
        let c = &mut senders[n % 2];
        match c.request(send_to(&bob, format!("m{n}").as_bytes())).await {
            Out::SendResult(_) => stored += 1,
            other => {
                assert_eq!(error_code(&other), Code::QuotaExceeded);
                full += 1;
            }
        }
    }
    assert_eq!((stored, full), (5, 7), "five fit, whichever node took them");
}
