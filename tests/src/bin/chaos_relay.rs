//! A relay in its own process for the chaos suite (`rankfile_tests::chaos`),
//! so that killing it (SIGKILL) is a real crash: no shutdown, no flush beyond
//! what its commits already made durable.
//!
//! `rankfile-chaos-relay <data dir> <bind addr> <clock offset ms> <mailbox quota>`
//! (a quota of 0 keeps the default). Prints `ready <addr> <fingerprint hex>`
//! once listening. Started again on the same data dir and address after a
//! kill, it is the same relay (its TLS key and database are in the data dir).
//! Reads commands on stdin, one a line: `clock <offset ms>` moves its clock
//! (the orchestrator moves the phones' clocks by the same offset).

use std::process::ExitCode;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rankfile_relay::{Clock, Config};

fn main() -> ExitCode {
    // Logs to stderr (the run's log file), at the level `RANKFILE_CHAOS_LOG` names.
    rankfile_relay::init_logging(
        &std::env::var("RANKFILE_CHAOS_LOG").unwrap_or_else(|_| "warn".into()),
    );
    let args: Vec<String> = std::env::args().collect();
    let parsed = (args.len() == 5).then(|| {
        (
            args[2].parse::<std::net::SocketAddr>(),
            args[3].parse::<i64>(),
            args[4].parse::<u64>(),
        )
    });
    let Some((Ok(bind), Ok(offset), Ok(quota))) = parsed else {
        eprintln!("usage: rankfile-chaos-relay <data dir> <bind addr> <clock offset ms> <quota>");
        return ExitCode::from(2);
    };
    let offset = Arc::new(AtomicI64::new(offset));
    let mut config = Config::local(&args[1]);
    config.bind = bind;
    config.clock = Clock::shifted(offset.clone());
    if quota > 0 {
        config.mailbox_quota = quota;
    }
    let Ok(runtime) = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
    else {
        return ExitCode::from(2);
    };
    runtime.block_on(async move {
        // After a kill the old socket may linger a moment: try for 10 s.
        let mut relay = None;
        for _ in 0..100 {
            match rankfile_relay::start(config.clone()).await {
                Ok(h) => {
                    relay = Some(h);
                    break;
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
        let Some(relay) = relay else {
            eprintln!("rankfile-chaos-relay: could not listen on {bind}");
            return ExitCode::FAILURE;
        };
        println!("ready {} {}", relay.local_addr(), relay.fingerprint());
        let mut rx = rankfile_tests::stdin_lines();
        while let Some(line) = rx.recv().await {
            let words: Vec<&str> = line.split_whitespace().collect();
            match words.as_slice() {
                ["clock", ms] => match ms.parse::<i64>() {
                    Ok(ms) => {
                        offset.store(ms, Ordering::Relaxed);
                        println!("ok");
                    }
                    Err(_) => println!("err bad offset"),
                },
                ["quit"] => break,
                _ => println!("err unknown command"),
            }
        }
        // stdin closed (the orchestrator is gone) or quit: stop cleanly.
        relay.shutdown().await;
        ExitCode::SUCCESS
    })
}
