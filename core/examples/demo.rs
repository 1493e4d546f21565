//! The demo of what Rankfile's core does so far: phones with their own
//! encrypted stores create identities, verify each other by safety number, and
//! exchange end-to-end encrypted messages — delivered late, out of order and
//! twice, across app restarts — and every message is stored exactly once.
//!
//! Until the relay exists, envelopes travel through an in-process queue per
//! phone that deliberately shuffles and duplicates them.
//!
//! `cargo xtask demo [--phones N] [--data DIR]`

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use rand::seq::SliceRandom;
use rankfile_core::{Account, AccountId, DatabaseKey, Event, Received};

struct Phone {
    name: String,
    account: Option<Account>,
    path: PathBuf,
    key: DatabaseKey,
    inbox: Vec<Vec<u8>>,
}

impl Phone {
    fn account(&mut self) -> &mut Account {
        self.account.as_mut().expect("open")
    }
    fn restart(&mut self) -> Result<(), rankfile_core::Error> {
        drop(self.account.take());
        self.account = Some(Account::open(&self.path, &self.key)?);
        Ok(())
    }
}

struct Args {
    phones: usize,
    data: Option<PathBuf>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        phones: 3,
        data: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--phones" => {
                let v = it.next().ok_or("--phones needs a number")?;
                args.phones = v
                    .parse()
                    .map_err(|_| format!("--phones: `{v}` is not a number"))?;
                if !(2..=200).contains(&args.phones) {
                    return Err("--phones must be between 2 and 200".into());
                }
            }
            "--data" => {
                args.data = Some(PathBuf::from(it.next().ok_or("--data needs a directory")?))
            }
            "-h" | "--help" => {
                println!("usage: demo [--phones N] [--data DIR]");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument `{other}` (try --help)")),
        }
    }
    Ok(args)
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("demo: {e}");
            return ExitCode::from(2);
        }
    };
    let tmp;
    let dir: &Path = match &args.data {
        Some(d) => {
            if let Err(e) = std::fs::create_dir_all(d) {
                eprintln!("demo: cannot create {}: {e}", d.display());
                return ExitCode::FAILURE;
            }
            d
        }
        None => match tempfile::tempdir() {
            Ok(t) => {
                tmp = t;
                tmp.path()
            }
            Err(e) => {
                eprintln!("demo: no temporary directory: {e}");
                return ExitCode::FAILURE;
            }
        },
    };
    match run(&args, dir) {
        Ok(line) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("demo failed: {e}");
            ExitCode::FAILURE
        }
    }
}

fn step(t0: Instant, text: &str) {
    println!("[{:>7.1} ms] {text}", t0.elapsed().as_secs_f64() * 1e3);
}

fn run(args: &Args, dir: &Path) -> Result<String, Box<dyn std::error::Error>> {
    let t0 = Instant::now();
    let names = [
        "maria", "kwame", "li", "ana", "tomasz", "fatima", "joe", "priya",
    ];
    let mut phones: Vec<Phone> = Vec::new();
    for i in 0..args.phones {
        let name = if i < names.len() {
            names[i].to_string()
        } else {
            format!("worker{i}")
        };
        let path = dir.join(format!("{name}.db"));
        if path.exists() {
            return Err(format!(
                "{} already exists; use an empty --data directory",
                path.display()
            )
            .into());
        }
        let key = DatabaseKey::generate();
        let account = Account::create(&path, &key)?;
        step(
            t0,
            &format!(
                "{name}: new identity {} (encrypted store {})",
                account.id(),
                path.display()
            ),
        );
        phones.push(Phone {
            name,
            account: Some(account),
            path,
            key,
            inbox: Vec::new(),
        });
    }

    // The organizer (phone 0) and each worker scan each other's QR codes:
    // bundles both ways, then safety numbers compared by scanning.
    for i in 1..phones.len() {
        let (left, right) = phones.split_at_mut(i);
        let organizer = &mut left[0];
        let worker = &mut right[0];
        let wb = worker.account().prekey_bundle()?;
        let ob = organizer.account().prekey_bundle()?;
        let worker_name = worker.name.clone();
        let organizer_name = organizer.name.clone();
        let w = organizer.account().add_contact(&worker_name, &wb)?;
        let o = worker.account().add_contact(&organizer_name, &ob)?;
        let sn_o = organizer.account().safety_number(&w)?;
        let sn_w = worker.account().safety_number(&o)?;
        if sn_o.digits != sn_w.digits {
            return Err("safety numbers differ between the two phones".into());
        }
        organizer.account().verify_contact(&w, &sn_w.scannable)?;
        worker.account().verify_contact(&o, &sn_o.scannable)?;
        step(
            t0,
            &format!(
                "{organizer_name} ⇄ {worker_name}: PQXDH sessions; safety number {} verified by QR",
                sn_o.digits
            ),
        );
    }

    let ids: Vec<AccountId> = phones.iter_mut().map(|p| p.account().id()).collect();
    let index: HashMap<AccountId, usize> = ids.iter().enumerate().map(|(i, id)| (*id, i)).collect();
    let mut sent_at: HashMap<[u8; 16], Instant> = HashMap::new();
    let mut latencies: Vec<f64> = Vec::new();
    let mut sent = 0usize;
    let mut rng = rand::rng();

    // Round 1: the organizer writes to everyone; each worker answers.
    let send = |phones: &mut Vec<Phone>,
                from: usize,
                to: usize,
                text: &str,
                sent_at: &mut HashMap<[u8; 16], Instant>|
     -> Result<(), Box<dyn std::error::Error>> {
        let e = phones[from].account().send_text(&ids[to], text)?;
        sent_at.insert(e.envelope_id, Instant::now());
        phones[from].account().confirm_sent(&e.envelope_id)?;
        // The "network" delivers every envelope twice.
        phones[to].inbox.push(e.bytes.clone());
        phones[to].inbox.push(e.bytes);
        Ok(())
    };
    for w in 1..phones.len() {
        send(
            &mut phones,
            0,
            w,
            "Meeting tonight, 19:00, the usual place. Don't use the work phones.",
            &mut sent_at,
        )?;
        sent += 1;
    }
    step(
        t0,
        &format!(
            "{}: sent {} messages (each committed before it left the phone)",
            phones[0].name,
            phones.len() - 1
        ),
    );

    let deliver = |phones: &mut Vec<Phone>,
                   who: usize,
                   latencies: &mut Vec<f64>,
                   sent_at: &HashMap<[u8; 16], Instant>|
     -> Result<(usize, usize), Box<dyn std::error::Error>> {
        let mut inbox = std::mem::take(&mut phones[who].inbox);
        inbox.shuffle(&mut rand::rng());
        let refs: Vec<&[u8]> = inbox.iter().map(Vec::as_slice).collect();
        let results = phones[who].account().receive_batch(&refs)?;
        let (mut stored, mut dup) = (0, 0);
        for (r, bytes) in results.into_iter().zip(&inbox) {
            match r? {
                Received::Stored { .. } | Received::Held { .. } => {
                    stored += 1;
                    use prost::Message as _;
                    let env = rankfile_proto::v1::Envelope::decode(bytes.as_slice())?;
                    let id: [u8; 16] = env.id.as_slice().try_into()?;
                    if let Some(t) = sent_at.get(&id) {
                        latencies.push(t.elapsed().as_secs_f64() * 1e3);
                    }
                }
                Received::Duplicate => dup += 1,
                _ => {}
            }
        }
        Ok((stored, dup))
    };

    // The last worker is offline for now; the others read and reply.
    let offline = phones.len() - 1;
    for w in 1..offline {
        let (stored, dup) = deliver(&mut phones, w, &mut latencies, &sent_at)?;
        step(
            t0,
            &format!(
                "{}: stored {stored}, recognised {dup} redelivered copies",
                phones[w].name
            ),
        );
        send(
            &mut phones,
            w,
            0,
            "I'll be there. Bringing two from the night shift.",
            &mut sent_at,
        )?;
        sent += 1;
    }
    if phones.len() > 2 {
        phones[1].restart()?;
        step(
            t0,
            &format!(
                "{}: app restarted; store reopened with its key",
                phones[1].name
            ),
        );
    }
    let (stored, dup) = deliver(&mut phones, 0, &mut latencies, &sent_at)?;
    step(
        t0,
        &format!(
            "{}: stored {stored} replies, dropped {dup} duplicates",
            phones[0].name
        ),
    );

    // While the last worker is offline, the organizer keeps writing.
    for i in 0..5 {
        send(
            &mut phones,
            0,
            offline,
            &format!(
                "Update {}: the list of demands is ready for the vote.",
                i + 1
            ),
            &mut sent_at,
        )?;
        sent += 1;
    }
    step(
        t0,
        &format!(
            "{}: offline; 5 more messages wait for them",
            phones[offline].name
        ),
    );
    let (stored, dup) = deliver(&mut phones, offline, &mut latencies, &sent_at)?;
    step(
        t0,
        &format!(
            "{}: back online, caught up in one transaction: {stored} stored, {dup} duplicates",
            phones[offline].name
        ),
    );
    send(
        &mut phones,
        offline,
        0,
        "Read everything. Count me in for the vote.",
        &mut sent_at,
    )?;
    sent += 1;
    let (stored, _) = deliver(&mut phones, 0, &mut latencies, &sent_at)?;
    let _ = stored;

    // Check: every message that was sent is stored once, and only once.
    let mut total_stored = 0usize;
    for p in phones.iter_mut() {
        let me = p.account().id();
        for e in p.account().drain_events() {
            if let Event::IdentityMismatch { .. } = e {
                return Err(format!("{}: unexpected identity mismatch", p.name).into());
            }
        }
        for peer in &ids {
            if *peer == me {
                continue;
            }
            let h = p.account().history(peer, None, 10_000)?;
            total_stored += h.iter().filter(|m| !m.outgoing).count();
        }
        let _ = index.get(&me);
    }
    let lost = sent.saturating_sub(total_stored);
    if total_stored > sent {
        return Err(format!("{} messages stored more than once", total_stored - sent).into());
    }
    latencies.sort_by(f64::total_cmp);
    let pct = |q: f64| {
        latencies
            .get(((latencies.len() as f64 - 1.0) * q).round() as usize)
            .copied()
            .unwrap_or(0.0)
    };
    println!();
    println!("summary");
    println!("  phones            {}", phones.len());
    println!("  messages sent     {sent}");
    println!("  stored once each  {total_stored}");
    println!("  delivery latency  p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms (send → decrypted and committed)", pct(0.5), pct(0.99), pct(1.0));
    println!(
        "  databases         {} (SQLCipher; no plaintext on disk)",
        dir.display()
    );
    if lost > 0 {
        return Err(format!("{lost} messages lost").into());
    }
    let _ = &mut rng;
    Ok(format!(
        "demo ok: phones={} messages={sent} lost=0",
        phones.len()
    ))
}
