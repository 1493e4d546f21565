//! A `rankfile-relay` child process for the binding tests and the FFI
//! benchmark: started on a loopback port with a data directory, its address
//! and certificate fingerprint read from its startup line, stopped
//! gracefully (SIGTERM) so its database is closed cleanly.

use std::io::BufRead;
use std::path::Path;
use std::process::{Child, Command, Stdio};

pub struct RelayProcess {
    child: Child,
    pub address: String,
    pub fingerprint: String,
}

impl RelayProcess {
    /// Starts the relay on `data_dir`, emptied first when `fresh`.
    pub fn start(binary: &Path, data_dir: &Path, fresh: bool) -> Result<Self, String> {
        if fresh {
            let _ = std::fs::remove_dir_all(data_dir);
        }
        std::fs::create_dir_all(data_dir).map_err(|e| e.to_string())?;
        let mut child = Command::new(binary)
            .args(["--bind", "127.0.0.1:0", "--log", "warn", "--data-dir"])
            .arg(data_dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("starting the relay: {e}"))?;
        let mut line = String::new();
        if let Some(out) = child.stdout.take() {
            let _ = std::io::BufReader::new(out).read_line(&mut line);
        }
        // rankfile-relay listening on <addr> fingerprint <hex>
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["rankfile-relay", "listening", "on", addr, "fingerprint", fp, ..] => {
                Ok(RelayProcess {
                    address: addr.to_string(),
                    fingerprint: fp.to_string(),
                    child,
                })
            }
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                Err(format!("unexpected relay startup line: {line:?}"))
            }
        }
    }
}

impl Drop for RelayProcess {
    fn drop(&mut self) {
        let stopped = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .is_ok_and(|s| s.success());
        if !stopped {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}
