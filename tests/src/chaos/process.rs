//! A child process of the chaos suite (the relay or a phone) driven by line
//! commands: one line in on stdin, one line out on stdout, read on a thread
//! of its own so that every wait has a deadline and a dead child is seen as
//! soon as its stdout closes.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::Duration;

/// Why a command got no `ok`.
#[derive(Debug)]
pub enum Failed {
    /// The child answered `err <message>`: it refused or could not.
    Refused(String),
    /// The child died (or closed its stdout) before answering.
    Died,
    /// No answer in time.
    Timeout,
}

impl std::fmt::Display for Failed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failed::Refused(m) => write!(f, "refused: {m}"),
            Failed::Died => f.write_str("died before answering"),
            Failed::Timeout => f.write_str("no answer in time"),
        }
    }
}

/// A running child with piped stdin and stdout.
pub struct Process {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
}

impl Process {
    /// Starts `command` with stdin and stdout piped (stderr as the caller set it).
    pub fn spawn(mut command: Command) -> std::io::Result<Process> {
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()?;
        let stdout = child.stdout.take().ok_or(std::io::ErrorKind::BrokenPipe)?;
        let stdin = child.stdin.take();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Ok(Process {
            child,
            stdin,
            lines,
        })
    }

    /// The next line the child prints, within `wait`.
    pub fn line(&self, wait: Duration) -> Result<String, Failed> {
        match self.lines.recv_timeout(wait) {
            Ok(line) => Ok(line),
            Err(RecvTimeoutError::Timeout) => Err(Failed::Timeout),
            Err(RecvTimeoutError::Disconnected) => Err(Failed::Died),
        }
    }

    /// Sends one command and waits for its answer: the payload of `ok`.
    pub fn ask(&mut self, command: &str, wait: Duration) -> Result<String, Failed> {
        let stdin = self.stdin.as_mut().ok_or(Failed::Died)?;
        if writeln!(stdin, "{command}")
            .and_then(|_| stdin.flush())
            .is_err()
        {
            return Err(Failed::Died);
        }
        let line = self.line(wait)?;
        if let Some(rest) = line.strip_prefix("ok") {
            return Ok(rest.trim_start().to_string());
        }
        Err(Failed::Refused(
            line.strip_prefix("err ").unwrap_or(&line).to_string(),
        ))
    }

    /// Kills the child with SIGKILL and reaps it: no shutdown of any kind.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Asks the child to stop (`quit`, then stdin closed) and waits up to
    /// `wait` for it to exit; kills it if it does not. Whether it exited
    /// on its own with success.
    pub fn stop(&mut self, wait: Duration) -> bool {
        if let Some(mut stdin) = self.stdin.take() {
            let _ = writeln!(stdin, "quit");
        }
        let deadline = std::time::Instant::now() + wait;
        while std::time::Instant::now() < deadline {
            match self.child.try_wait() {
                Ok(Some(status)) => return status.success(),
                Ok(None) => std::thread::sleep(Duration::from_millis(20)),
                Err(_) => break,
            }
        }
        self.kill();
        false
    }

    /// Whether the child has exited (e.g. at a failpoint).
    pub fn exited(&mut self) -> bool {
        !matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}
