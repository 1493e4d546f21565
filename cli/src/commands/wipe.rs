//! `rankfile wipe`: the panic wipe, with no passphrase. Destroys the unlock
//! material first (salt, key-derivation parameters, duress verifier: without
//! them the passphrase opens nothing), then the store — overwritten, synced
//! and unlinked by the core, which needs no key, so a locked or corrupt
//! store goes the same way — then the configuration, and the home directory
//! if it is empty. Asks for a typed confirmation unless `--yes`.

use std::io::{BufRead, IsTerminal, Write};

use serde_json::json;

use crate::cli::WipeArgs;
use crate::error::{CliError, Result};
use crate::home::Home;
use crate::output::{Output, Style};

/// What the user types to confirm.
const CONFIRM_WORD: &str = "wipe";

/// Runs `rankfile wipe`.
pub fn run(home: &Home, args: &WipeArgs, out: &Output) -> Result<()> {
    if !home.has_anything() {
        return Err(CliError::NoHome(home.dir().to_path_buf()));
    }
    if !args.yes {
        confirm(home)?;
    }
    let removed_dir = home.panic_wipe()?;
    out.emit(
        || {
            format!(
                "{} {}: unlock material, store and configuration destroyed{}",
                out.paint(Style::Bad, "wiped"),
                home.dir().display(),
                if removed_dir {
                    ""
                } else {
                    " (other files in the home were left alone)"
                }
            )
        },
        || json!({ "wiped": home.dir(), "home_removed": removed_dir }),
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
