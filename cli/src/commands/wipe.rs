//! `rankfile wipe`: the panic wipe. Destroys the store (overwritten, synced,
//! unlinked by the core), then the salt — without which the passphrase opens
//! nothing — and the configuration, and the home directory if it is empty.
//! Asks for a typed confirmation unless `--yes`.

use std::io::{BufRead, IsTerminal, Write};
use std::path::Path;

use rand::RngCore;
use serde_json::json;

use crate::cli::WipeArgs;
use crate::error::{CliError, Result};
use crate::home::Home;
use crate::output::{Output, Style};

/// What the user types to confirm.
const CONFIRM_WORD: &str = "wipe";

/// Runs `rankfile wipe`.
pub fn run(home: &Home, args: &WipeArgs, out: &Output) -> Result<()> {
    if !home.exists() {
        return Err(CliError::NoHome(home.dir().to_path_buf()));
    }
    if !args.yes {
        confirm(home)?;
    }
    // Opening proves the passphrase; a wrong one changes nothing.
    let account = home.open()?;
    let id = account.id();
    account.wipe()?;
    for path in [home.salt_path(), home.kdf_path(), home.relay_path()] {
        destroy(&path)?;
    }
    // Only if nothing else lives there: never delete files we did not make.
    let removed_dir = std::fs::remove_dir(home.dir()).is_ok();
    out.emit(
        || {
            format!(
                "{} account {id}: store, salt and configuration destroyed{}",
                out.paint(Style::Bad, "wiped"),
                if removed_dir {
                    ""
                } else {
                    " (other files in the home were left alone)"
                }
            )
        },
        || json!({ "wiped": id.to_string(), "home_removed": removed_dir }),
    );
    Ok(())
}

fn confirm(home: &Home) -> Result<()> {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        return Err(CliError::Usage(
            "wipe needs a typed confirmation; run it in a terminal, or pass --yes".into(),
        ));
    }
    eprint!(
        "This destroys every message and key in {} for good.\nType `{CONFIRM_WORD}` to go on: ",
        home.dir().display()
    );
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    stdin
        .lock()
        .read_line(&mut line)
        .map_err(CliError::io("reading the confirmation"))?;
    if line.trim() != CONFIRM_WORD {
        return Err(CliError::Usage("not confirmed; nothing was wiped".into()));
    }
    Ok(())
}

/// Overwrites a small file with random bytes, syncs, and removes it.
fn destroy(path: &Path) -> Result<()> {
    let len = match std::fs::metadata(path) {
        Ok(m) => m.len(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(CliError::io(format!("wiping {}", path.display()))(e)),
    };
    let mut noise = vec![0u8; usize::try_from(len).unwrap_or(0)];
    rand::rng().fill_bytes(&mut noise);
    let wiped = std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .and_then(|mut f| {
            f.write_all(&noise)?;
            f.sync_all()
        })
        .and_then(|()| std::fs::remove_file(path));
    wiped.map_err(CliError::io(format!("wiping {}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destroy_removes_and_tolerates_absence() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("salt");
        std::fs::write(&p, b"0123456789abcdef").expect("write");
        destroy(&p).expect("destroy");
        assert!(!p.exists());
        destroy(&p).expect("absent is fine");
    }
}
