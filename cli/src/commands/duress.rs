//! `rankfile duress set|clear`: the duress passphrase, which — typed at any
//! unlock instead of the passphrase — wipes the home and is answered as a
//! wrong passphrase is. Both need the passphrase first; the verifier itself
//! lives beside the salt (`crate::duress`).

use serde_json::json;

use crate::cli::DuressCommand;
use crate::duress::Verifier;
use crate::error::{CliError, Result};
use crate::home::Home;
use crate::keyfile;
use crate::output::{Output, Style};

/// Runs a `rankfile duress` subcommand.
pub fn run(home: &Home, cmd: DuressCommand, out: &Output) -> Result<()> {
    // The passphrase proves the user may change this. (The duress
    // passphrase typed here wipes the home, as at every unlock.)
    let rt = crate::net::runtime()?;
    let key = rt.block_on(async {
        let (client, key) = home.open_keyed(None)?;
        client.close().await?;
        Ok::<_, CliError>(key)
    })?;
    match cmd {
        DuressCommand::Set(args) => {
            let duress = match &args.duress_file {
                Some(path) => keyfile::read_passphrase_file(path)?,
                None => keyfile::prompt("Duress passphrase", true)?,
            };
            let duress_key = home.key(&duress)?;
            drop(duress);
            let verifier = Verifier::for_key(&duress_key);
            if verifier.matches(&key) {
                return Err(CliError::Usage(
                    "the duress passphrase must differ from the passphrase (it would wipe the home at every unlock); nothing was changed".into(),
                ));
            }
            verifier.save(&home.duress_path())?;
            out.emit(
                || {
                    format!(
                        "{} typed at any unlock instead of the passphrase, it wipes {} and answers as a wrong passphrase does",
                        out.paint(Style::Bad, "duress passphrase set:"),
                        home.dir().display()
                    )
                },
                || json!({ "duress": "set" }),
            );
        }
        DuressCommand::Clear => {
            // Random bytes, like a home that never had one.
            Verifier::unset().save(&home.duress_path())?;
            out.emit(
                || format!("{} cleared", out.paint(Style::Good, "duress passphrase")),
                || json!({ "duress": "cleared" }),
            );
        }
    }
    Ok(())
}
