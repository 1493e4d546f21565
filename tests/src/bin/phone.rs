//! A phone in its own process, for tests that kill one mid-receive: opens an
//! account, connects it to a relay, and waits until it has stored a given
//! number of incoming messages.
//!
//! `rankfile-test-phone <db path> <relay addr> <fingerprint hex> <expected count>`,
//! with the database key in hex in `RANKFILE_TEST_DB_KEY`. Exits 0 once the
//! count is reached, 3 on timeout, 2 on bad arguments.

use std::process::ExitCode;
use std::time::Duration;

use rankfile_core::transport::{parse_fingerprint, Client, RelayAddress};
use rankfile_core::{Account, DatabaseKey};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 5 {
        eprintln!("usage: rankfile-test-phone <db> <relay addr> <fingerprint> <expected>");
        return ExitCode::from(2);
    }
    let key = std::env::var("RANKFILE_TEST_DB_KEY")
        .ok()
        .and_then(|k| hex::decode(k).ok())
        .and_then(|k| DatabaseKey::from_slice(&k).ok());
    let (Some(key), Ok(addr), Some(fingerprint), Ok(expected)) = (
        key,
        args[2].parse(),
        parse_fingerprint(&args[3]),
        args[4].parse::<u64>(),
    ) else {
        eprintln!("rankfile-test-phone: bad arguments");
        return ExitCode::from(2);
    };
    let account = match Account::open(std::path::Path::new(&args[1]), &key) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("rankfile-test-phone: {e}");
            return ExitCode::from(2);
        }
    };
    let Ok(rt) = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
    else {
        return ExitCode::from(2);
    };
    rt.block_on(async move {
        let Ok(client) = Client::start(account, RelayAddress { addr, fingerprint }) else {
            return ExitCode::from(2);
        };
        for _ in 0..600 {
            let count = client
                .with_account(|a| a.message_count().unwrap_or(0))
                .await
                .unwrap_or(0);
            if count >= expected {
                println!("stored {count}");
                let _ = client.shutdown().await;
                return ExitCode::SUCCESS;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        ExitCode::from(3)
    })
}
