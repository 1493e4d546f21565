//! A temporary PostgreSQL cluster for `cargo xtask test`: the relay's store
//! suite and multi-node tests run against it. It lives in a fresh directory on
//! loopback on a free port, run by an unprivileged user (PostgreSQL refuses to
//! run as root: as root, the `postgres` user the package creates, made if
//! absent), and is stopped and deleted afterwards. `postgresql` is installed
//! with apt-get when no server is found (CI machines start bare).
//!
//! The tests get its URL in `RANKFILE_TEST_POSTGRES`, its binaries in
//! `RANKFILE_TEST_POSTGRES_BIN` (tests that stop and restart a server start
//! their own), and `RANKFILE_REQUIRE_POSTGRES=1`, which makes a test that
//! needs PostgreSQL fail, not skip, if the URL is missing.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

/// Runs `f` (the tests) with a cluster's URL in the environment: a new
/// temporary cluster, stopped afterwards, unless `RANKFILE_TEST_POSTGRES`
/// already names one.
pub fn with_cluster(f: impl FnOnce() -> ExitCode) -> ExitCode {
    let cluster = match std::env::var("RANKFILE_TEST_POSTGRES") {
        Ok(_) => None,
        Err(_) => match Cluster::start() {
            Ok(c) => Some(c),
            Err(e) => {
                eprintln!("xtask: could not start the PostgreSQL test cluster: {e}");
                return ExitCode::FAILURE;
            }
        },
    };
    if let Some(c) = &cluster {
        std::env::set_var("RANKFILE_TEST_POSTGRES", &c.url);
        std::env::set_var("RANKFILE_TEST_POSTGRES_BIN", c.bin());
    }
    std::env::set_var("RANKFILE_REQUIRE_POSTGRES", "1");
    let code = f();
    drop(cluster);
    code
}

/// A running temporary cluster; stopped and removed on drop.
pub struct Cluster {
    dir: PathBuf,
    bin: PathBuf,
    user: Option<String>,
    /// `postgres://…` URL of its `postgres` database.
    pub url: String,
}

impl Cluster {
    /// Installs PostgreSQL if needed and starts a cluster.
    pub fn start() -> Result<Cluster, String> {
        let bin = match find_bin() {
            Some(b) => b,
            None => {
                install()?;
                find_bin().ok_or("postgresql installed but no initdb found")?
            }
        };
        let root = is_root();
        let user = if root {
            ensure_user("postgres")?;
            Some("postgres".to_string())
        } else {
            None
        };
        let dir = std::env::temp_dir().join(format!("rankfile-pg-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        if let Some(u) = &user {
            run("chown", &["-R", &format!("{u}:"), &path_str(&dir)?], None)?;
        }
        let port = free_port()?;
        let data = path_str(&dir.join("data"))?;
        let cluster = Cluster {
            dir: dir.clone(),
            bin: bin.clone(),
            user,
            url: format!("postgres://postgres@127.0.0.1:{port}/postgres"),
        };
        cluster.pg(
            "initdb",
            &["-D", &data, "-U", "postgres", "--auth=trust", "-E", "UTF8"],
        )?;
        let options = format!(
            "-c listen_addresses=127.0.0.1 -p {port} -k {} -c max_connections=400",
            path_str(&dir)?
        );
        let log = path_str(&dir.join("server.log"))?;
        cluster.pg(
            "pg_ctl",
            &[
                "-D", &data, "-l", &log, "-o", &options, "-w", "-t", "60", "start",
            ],
        )?;
        wait_for_port(port)?;
        Ok(cluster)
    }

    /// The directory of its binaries (initdb, pg_ctl, postgres).
    pub fn bin(&self) -> &Path {
        &self.bin
    }

    /// Runs one of its binaries as the cluster's user.
    fn pg(&self, tool: &str, args: &[&str]) -> Result<(), String> {
        let exe = path_str(&self.bin.join(tool))?;
        run(&exe, args, self.user.as_deref())
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if let Ok(data) = path_str(&self.dir.join("data")) {
            let _ = self.pg("pg_ctl", &["-D", &data, "-m", "immediate", "-w", "stop"]);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn path_str(p: &Path) -> Result<String, String> {
    p.to_str()
        .map(str::to_owned)
        .ok_or_else(|| format!("not UTF-8: {}", p.display()))
}

/// Runs a command (as `user` through runuser when given), failing on a
/// non-zero exit.
fn run(exe: &str, args: &[&str], user: Option<&str>) -> Result<(), String> {
    let mut cmd = match user {
        Some(u) => {
            let mut c = Command::new("runuser");
            c.args(["-u", u, "--", exe]);
            c
        }
        None => Command::new(exe),
    };
    let out = cmd.args(args).output().map_err(|e| format!("{exe}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{exe} {}: {}\n{}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(())
}

/// The newest `/usr/lib/postgresql/<version>/bin` holding initdb.
fn find_bin() -> Option<PathBuf> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .flatten()
        .filter_map(|e| {
            let v: u32 = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((v, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, b)| b)
}

/// Installs Debian's `postgresql` package (its post-install starts no
/// cluster we use; ours is separate).
fn install() -> Result<(), String> {
    eprintln!("xtask: PostgreSQL not found; installing it with apt-get");
    let sudo = !is_root();
    let apt = |args: &[&str]| {
        let mut c = if sudo {
            let mut c = Command::new("sudo");
            c.arg("apt-get");
            c
        } else {
            Command::new("apt-get")
        };
        c.args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .map_err(|e| format!("apt-get: {e}"))
            .and_then(|s| {
                s.success()
                    .then_some(())
                    .ok_or(format!("apt-get {args:?}: {s}"))
            })
    };
    apt(&["update", "-q"])?;
    apt(&[
        "install",
        "-y",
        "-q",
        "--no-install-recommends",
        "postgresql",
    ])
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

fn ensure_user(name: &str) -> Result<(), String> {
    let exists = Command::new("id")
        .arg(name)
        .output()
        .is_ok_and(|o| o.status.success());
    if exists {
        return Ok(());
    }
    run("useradd", &["--system", "--no-create-home", name], None)
}

fn free_port() -> Result<u16, String> {
    let l = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("free port: {e}"))?;
    l.local_addr()
        .map(|a| a.port())
        .map_err(|e| format!("free port: {e}"))
}

fn wait_for_port(port: u16) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err(format!("PostgreSQL did not open port {port}"))
}
