//! A phone in its own process for the chaos suite (`rankfile_tests::chaos`):
//! one account over its own encrypted store, connected to a relay, doing what
//! the orchestrator says on stdin, one command a line, one answer a line on
//! stdout (`ok <payload>` or `err <message>`), in order. Being a process, it
//! can be killed (SIGKILL) anywhere, or die at a core failpoint
//! (`RANKFILE_FAILPOINT`), and be started again on the same store.
//!
//! `rankfile-chaos-phone <db path> <relay addr> <fingerprint hex> <clock offset ms>`,
//! the database key in hex in `RANKFILE_TEST_DB_KEY`. The store is created on
//! the first start and opened on every later one; a store that does not open
//! is reported as `unopenable <error>` and the process exits 3.

use std::path::Path;
use std::process::ExitCode;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rankfile_core::committee::{ChannelKind, CommitteeId, CommitteeMeta, Role};
use rankfile_core::transport::{parse_fingerprint, Client, ConnectionState, RelayAddress};
use rankfile_core::{Account, AccountId, AccountOptions, Clock, DatabaseKey, Draft};

/// One-time prekeys per batch: a few, so that a phone starts quickly and
/// sessions still open on one-time keys as on a real phone.
const ONE_TIME_PREKEYS: u32 = 5;
/// The longest a command waits for the relay (a bundle fetch).
const WAIT: Duration = Duration::from_secs(30);

fn main() -> ExitCode {
    // Logs to stderr (the run's log file), at the level `RANKFILE_CHAOS_LOG` names.
    rankfile_relay::init_logging(
        &std::env::var("RANKFILE_CHAOS_LOG").unwrap_or_else(|_| "warn".into()),
    );
    let args: Vec<String> = std::env::args().collect();
    let key = std::env::var("RANKFILE_TEST_DB_KEY")
        .ok()
        .and_then(|k| hex::decode(k).ok())
        .and_then(|k| DatabaseKey::from_slice(&k).ok());
    let parsed = (args.len() == 5).then(|| {
        (
            args[2].parse::<std::net::SocketAddr>(),
            parse_fingerprint(&args[3]),
            args[4].parse::<i64>(),
        )
    });
    let (Some(key), Some((Ok(addr), Some(fingerprint), Ok(offset)))) = (key, parsed) else {
        eprintln!("usage: rankfile-chaos-phone <db> <relay addr> <fingerprint> <clock offset>");
        return ExitCode::from(2);
    };
    let offset = Arc::new(AtomicI64::new(offset));
    let options = {
        let mut o = AccountOptions::default().with_clock(Clock::shifted(offset.clone()));
        o.one_time_prekeys = ONE_TIME_PREKEYS;
        o
    };
    let path = Path::new(&args[1]);
    let account = if path.exists() {
        Account::open_with(path, &key, &options)
    } else {
        Account::create_with(path, &key, &options)
    };
    let account = match account {
        Ok(a) => a,
        Err(e) => {
            println!("unopenable {e}");
            return ExitCode::from(3);
        }
    };
    let Ok(runtime) = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
    else {
        return ExitCode::from(2);
    };
    runtime.block_on(async move {
        let client = match Client::start(account, RelayAddress { addr, fingerprint }) {
            Ok(c) => c,
            Err(e) => {
                println!("unopenable {e}");
                return ExitCode::from(3);
            }
        };
        let shown = rankfile_tests::chaos::phone_alerts::shown_log(path);
        rankfile_tests::chaos::phone_alerts::log_shown(&client, shown.clone());
        let clock = Clock::shifted(offset.clone());
        let phone = Phone {
            client,
            offset,
            clock,
            shown,
        };
        println!("ready");
        let mut rx = rankfile_tests::stdin_lines();
        while let Some(line) = rx.recv().await {
            let words: Vec<&str> = line.split_whitespace().collect();
            if words.first() == Some(&"quit") {
                break;
            }
            match phone.command(&words).await {
                Ok(payload) => println!("ok {payload}"),
                Err(e) => println!("err {}", e.replace('\n', " ")),
            }
        }
        let _ = phone.client.shutdown().await;
        ExitCode::SUCCESS
    })
}

struct Phone {
    client: Client,
    offset: Arc<AtomicI64>,
    /// This phone's clock (the account's), for the times it puts on things.
    clock: Clock,
    /// Where the alerts it shows are logged.
    shown: std::path::PathBuf,
}

fn account(s: &str) -> Result<AccountId, String> {
    AccountId::from_bytes(&hex::decode(s).map_err(|e| e.to_string())?).map_err(|e| e.to_string())
}

fn committee(s: &str) -> Result<CommitteeId, String> {
    CommitteeId::from_bytes(&hex::decode(s).map_err(|e| e.to_string())?).map_err(|e| e.to_string())
}

fn channel(s: &str) -> Result<[u8; 16], String> {
    hex::decode(s)
        .map_err(|e| e.to_string())?
        .try_into()
        .map_err(|_| "a channel ID is 16 bytes".to_string())
}

/// Whether a channel message's body is post `tag`, as written or as edited
/// (`<tag>.e<n>`).
fn is_post(body: &str, tag: &str) -> bool {
    body == tag || body.strip_prefix(tag).is_some_and(|r| r.starts_with('.'))
}

impl Phone {
    async fn command(&self, words: &[&str]) -> Result<String, String> {
        let c = &self.client;
        let e = |e: rankfile_core::Error| e.to_string();
        match words {
            ["id"] => c
                .with_account(|a| hex::encode(a.id().as_bytes()))
                .await
                .map_err(e),
            ["connected"] => {
                let deadline = Instant::now() + WAIT;
                while Instant::now() < deadline {
                    if matches!(c.connection_state(), ConnectionState::Connected { .. }) {
                        return Ok(String::new());
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(format!("not connected: {:?}", c.connection_state()))
            }
            ["contact", id] => {
                let id = account(id)?;
                // The relay may be down a moment (restarting): try again.
                let deadline = Instant::now() + WAIT;
                loop {
                    match c.add_contact_from_relay("peer".into(), id).await {
                        Ok(_) => return Ok(String::new()),
                        Err(err) if Instant::now() > deadline => return Err(err.to_string()),
                        Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                    }
                }
            }
            ["text", to, body] => c
                .send_text(account(to)?, body.to_string())
                .await
                .map(|_| String::new())
                .map_err(e),
            ["found", name] => c
                .create_committee(CommitteeMeta {
                    name: name.to_string(),
                    ..CommitteeMeta::default()
                })
                .await
                .map(|id| hex::encode(id.0))
                .map_err(e),
            ["add", com, member] => c
                .add_member(committee(com)?, account(member)?, Role::Member)
                .await
                .map(|_| String::new())
                .map_err(e),
            ["channel", com] => c
                .create_channel(committee(com)?, ChannelKind::Discussion)
                .await
                .map(hex::encode)
                .map_err(e),
            ["members", com, chan] => {
                // 0 until the committee and its channel are here.
                let (com, chan) = (committee(com)?, channel(chan)?);
                Ok(c.committee(com)
                    .await
                    .ok()
                    .filter(|s| s.channels.contains_key(&chan))
                    .map_or(0, |s| s.members.len())
                    .to_string())
            }
            ["post", com, chan, body] => {
                let (com, chan) = (committee(com)?, channel(chan)?);
                let before = self.roster(com).await;
                c.post_message(com, chan, Draft::text(*body))
                    .await
                    .map_err(e)?;
                Ok(format!("{before} {}", self.roster(com).await))
            }
            ["edit", com, chan, tag, body] => {
                let com = committee(com)?;
                let id = self.own_post(channel(chan)?, tag).await?;
                let before = self.roster(com).await;
                c.edit_message(id, body.to_string()).await.map_err(e)?;
                Ok(format!("{before} {}", self.roster(com).await))
            }
            ["delete", com, chan, tag] => {
                let com = committee(com)?;
                let id = self.own_post(channel(chan)?, tag).await?;
                let before = self.roster(com).await;
                c.delete_message(id).await.map_err(e)?;
                Ok(format!("{before} {}", self.roster(com).await))
            }
            ["roster", com] => Ok(self.roster(committee(com)?).await),
            ["invite", com] => {
                // An hour by this phone's clock, one use.
                let expires = self.clock.now_u64() + 3_600_000;
                c.create_invite(committee(com)?, expires, 1)
                    .await
                    .map(|t| t.to_link())
                    .map_err(e)
            }
            ["flush"] => {
                // Whatever the relay takes within the wait; parked mail stays.
                let _ = tokio::time::timeout(WAIT, c.flush()).await;
                Ok(String::new())
            }
            ["pending"] => c
                .pending_joins()
                .await
                .map(|p| p.len().to_string())
                .map_err(e),
            ["join", link] => {
                // The organizer's bundle comes from the relay, which may be
                // a moment away (a cut): try again; nothing commits before.
                let deadline = Instant::now() + WAIT;
                loop {
                    match c.join(link).await {
                        Ok(id) => return Ok(hex::encode(id.0)),
                        Err(err @ rankfile_core::Error::Transport(_))
                        | Err(err @ rankfile_core::Error::Offline)
                            if Instant::now() < deadline =>
                        {
                            let _ = err;
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                        Err(err) => return Err(err.to_string()),
                    }
                }
            }
            ["remove", com, member] => c
                .remove_member(committee(com)?, account(member)?)
                .await
                .map(|_| String::new())
                .map_err(e),
            ["role", com, member, role] => {
                let role = match *role {
                    "member" => Role::Member,
                    "delegate" => Role::Delegate,
                    _ => return Err(format!("unknown role {role}")),
                };
                c.change_role(committee(com)?, account(member)?, role)
                    .await
                    .map(|_| String::new())
                    .map_err(e)
            }
            ["outbox"] => c
                .with_account(|a| a.outbox().map(|o| o.len()))
                .await
                .map_err(e)?
                .map(|n| n.to_string())
                .map_err(e),
            ["connection"] => Ok(format!("{:?}", c.connection_state()).replace(' ', "")),
            ["clock", ms] => {
                let ms = ms.parse::<i64>().map_err(|e| e.to_string())?;
                self.offset.store(ms, Ordering::Relaxed);
                Ok(String::new())
            }
            ["state", "-", "-", peers @ ..] => self.state(None, peers).await,
            ["state", com, chan, peers @ ..] => {
                let state = self.state(Some(channel(chan)?), peers).await?;
                Ok(format!("{state} {}", self.fold(committee(com)?).await))
            }
            _ => rankfile_tests::chaos::phone_alerts::command(c, &self.clock, &self.shown, words)
                .await
                .unwrap_or_else(|| Err(format!("unknown command {:?}", words.first()))),
        }
    }

    /// The committee's members as this phone folds them, `<id>:<role>`
    /// joined by commas (`-` for none, or a committee not held).
    async fn roster(&self, com: CommitteeId) -> String {
        let Ok(state) = self.client.committee(com).await else {
            return "-".into();
        };
        let roster: Vec<String> = state
            .members
            .iter()
            .map(|(id, m)| format!("{}:{}", hex::encode(id.as_bytes()), m.role))
            .collect();
        if roster.is_empty() {
            "-".into()
        } else {
            roster.join(",")
        }
    }

    /// The committee state this phone folds, as words: `r:<roster>` and
    /// `c:<digest>`, a digest of the members, their roles, the channels and
    /// the links (equal on two phones when they fold the same state).
    async fn fold(&self, com: CommitteeId) -> String {
        use std::hash::{Hash, Hasher};
        let roster = self.roster(com).await;
        // SipHash with fixed keys: the same on every phone.
        let mut h = std::hash::DefaultHasher::new();
        roster.hash(&mut h);
        if let Ok(state) = self.client.committee(com).await {
            for (id, kind) in &state.channels {
                (id, format!("{kind:?}")).hash(&mut h);
            }
            for (id, link) in &state.links {
                (id.0, &link.delegates, format!("{:?}", link.policy)).hash(&mut h);
            }
        }
        format!("r:{roster} c:{:016x}", h.finish())
    }

    /// The local ID of our post `tag` in `chan`.
    async fn own_post(&self, chan: [u8; 16], tag: &str) -> Result<i64, String> {
        let tag = tag.to_string();
        self.client
            .with_account(move |a| a.channel_history(&chan, None, 10_000))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?
            .into_iter()
            .find(|m| m.outgoing && is_post(&m.body, &tag))
            .map(|m| m.id)
            .ok_or_else(|| format!("no post {tag} of ours"))
    }

    /// What the invariants need, as words: `t:<from>:<body>` for each 1:1
    /// message received from one of `peers`, `o:<to>:<body>` for each sent to
    /// one; `p:<author>:<body>` for each post received in `chan` (if named),
    /// `q:<body>` for each of ours there.
    async fn state(&self, chan: Option<[u8; 16]>, peers: &[&str]) -> Result<String, String> {
        let peers = peers
            .iter()
            .map(|p| account(p))
            .collect::<Result<Vec<_>, _>>()?;
        self.client
            .with_account(move |a| -> rankfile_core::Result<String> {
                let mut words = Vec::new();
                for peer in &peers {
                    let p = hex::encode(peer.as_bytes());
                    for m in a.history(peer, None, 10_000)? {
                        let dir = if m.outgoing { "o" } else { "t" };
                        words.push(format!("{dir}:{p}:{}", m.body));
                    }
                }
                let posts = match chan {
                    Some(chan) => a.channel_history(&chan, None, 10_000)?,
                    None => Vec::new(),
                };
                for m in posts {
                    match m.outgoing {
                        true => words.push(format!("q:{}", m.body)),
                        false => {
                            words.push(format!("p:{}:{}", hex::encode(m.sender.as_bytes()), m.body))
                        }
                    }
                }
                Ok(words.join(" "))
            })
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())
    }
}
