//! The PostgreSQL test cluster: its URL comes from `RANKFILE_TEST_POSTGRES`
//! (exported by `cargo xtask test`, which starts a temporary cluster:
//! xtask/src/postgres.rs); each test gets a database of its own on it.
//!
//! Under `cargo xtask test` (`RANKFILE_REQUIRE_POSTGRES=1`) a missing URL
//! FAILS the test. Run by hand without it, a test that needs PostgreSQL says
//! on stderr that it is skipped and passes without checking anything.

use rand::RngCore;

/// The cluster's URL (`postgres://…` or `key=value …`).
pub const URL_VAR: &str = "RANKFILE_TEST_POSTGRES";
/// Set by `cargo xtask test`: the cluster must be there.
pub const REQUIRE_VAR: &str = "RANKFILE_REQUIRE_POSTGRES";

/// The cluster's URL, or `None` (printed) when the test is run by hand
/// without one. Panics when the cluster is required and missing.
pub fn cluster(test: &str) -> Option<String> {
    match std::env::var(URL_VAR) {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var_os(REQUIRE_VAR).is_some() => {
            panic!("{test}: {URL_VAR} is not set but {REQUIRE_VAR} is: the PostgreSQL test cluster is missing")
        }
        _ => {
            eprintln!(
                "SKIPPED {test}: no PostgreSQL ({URL_VAR} unset; `cargo xtask test` starts one)"
            );
            None
        }
    }
}

/// Creates an empty database on the cluster and returns its URL.
pub async fn fresh_database(cluster: &str) -> String {
    let (client, connection) = tokio_postgres::connect(cluster, tokio_postgres::NoTls)
        .await
        .expect("connect to the test cluster");
    tokio::spawn(connection);
    let mut id = [0u8; 8];
    rand::rng().fill_bytes(&mut id);
    let name = format!("rt_{}", hex::encode(id));
    client
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .expect("create a test database");
    with_database(cluster, &name)
}

/// The same cluster URL naming another database.
pub fn with_database(cluster: &str, name: &str) -> String {
    if let Some(rest) = cluster
        .strip_prefix("postgres://")
        .or_else(|| cluster.strip_prefix("postgresql://"))
    {
        let (base, query) = match rest.split_once('?') {
            Some((b, q)) => (b, format!("?{q}")),
            None => (rest, String::new()),
        };
        let host = base.split_once('/').map_or(base, |(h, _)| h);
        format!("postgres://{host}/{name}{query}")
    } else {
        format!("{cluster} dbname={name}")
    }
}

/// A PostgreSQL server of a test's own, for tests that stop and restart it
/// (the shared cluster serves other tests meanwhile). Made like the shared
/// one (xtask/src/postgres.rs): a temporary directory, loopback, a free port,
/// run as the unprivileged `postgres` user when the test runs as root.
pub struct OwnServer {
    dir: tempfile::TempDir,
    bin: std::path::PathBuf,
    root: bool,
    port: u16,
    /// URL of its `postgres` database.
    pub url: String,
}

impl OwnServer {
    /// Starts one, or returns `None` (printed) when run by hand without
    /// PostgreSQL; panics when it is required and missing.
    pub fn start(test: &str) -> Option<OwnServer> {
        cluster(test)?;
        Some(Self::launch())
    }

    /// Starts one unconditionally (the benchmark's database).
    pub fn launch() -> OwnServer {
        let bin = match std::env::var_os("RANKFILE_TEST_POSTGRES_BIN") {
            Some(b) => std::path::PathBuf::from(b),
            None => find_bin().expect("PostgreSQL binaries (RANKFILE_TEST_POSTGRES_BIN)"),
        };
        let dir = tempfile::tempdir().expect("tempdir");
        let root = std::process::Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
        if root {
            let ok = std::process::Command::new("chown")
                .args(["-R", "postgres:"])
                .arg(dir.path())
                .status()
                .expect("chown")
                .success();
            assert!(ok, "chown the server's directory");
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let server = OwnServer {
            url: format!("postgres://postgres@127.0.0.1:{port}/postgres"),
            dir,
            bin,
            root,
            port,
        };
        let data = server.data();
        server.pg(&[
            "initdb",
            "-D",
            &data,
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
        ]);
        server.start_again();
        server
    }

    fn data(&self) -> String {
        self.dir
            .path()
            .join("data")
            .to_str()
            .expect("utf8")
            .to_owned()
    }

    fn pg(&self, args: &[&str]) {
        let exe = self.bin.join(args[0]);
        let mut cmd = if self.root {
            let mut c = std::process::Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(exe);
            c
        } else {
            std::process::Command::new(exe)
        };
        let out = cmd
            .args(&args[1..])
            .output()
            .expect("run a PostgreSQL tool");
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Stops the server (fast shutdown: connections are cut).
    pub fn stop(&self) {
        self.pg(&["pg_ctl", "-D", &self.data(), "-m", "fast", "-w", "stop"]);
    }

    /// Starts the (stopped) server again on the same port.
    pub fn start_again(&self) {
        let socket_dir = self.dir.path().to_str().expect("utf8").to_owned();
        let options = format!(
            "-c listen_addresses=127.0.0.1 -p {} -k {socket_dir} -c max_connections=200",
            self.port
        );
        let log = format!("{socket_dir}/server.log");
        self.pg(&[
            "pg_ctl",
            "-D",
            &self.data(),
            "-l",
            &log,
            "-o",
            &options,
            "-w",
            "start",
        ]);
    }
}

impl Drop for OwnServer {
    fn drop(&mut self) {
        let exe = self.bin.join("pg_ctl");
        let data = self.data();
        let mut cmd = if self.root {
            let mut c = std::process::Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(exe);
            c
        } else {
            std::process::Command::new(exe)
        };
        let _ = cmd
            .args(["-D", &data, "-m", "immediate", "-w", "stop"])
            .output();
    }
}

fn find_bin() -> Option<std::path::PathBuf> {
    let mut bins: Vec<(u32, std::path::PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .flatten()
        .filter_map(|e| {
            let v: u32 = e.file_name().to_str()?.parse().ok()?;
            Some((v, e.path().join("bin")))
        })
        .collect();
    bins.sort();
    bins.pop().map(|(_, b)| b)
}
