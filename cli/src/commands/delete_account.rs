//! `rankfile delete-account`: deletes this account at its relay — every
//! device's record, mailbox, prekeys and push endpoint there, and the
//! attachments this device uploaded. The home stays: history and contacts
//! remain readable here until `rankfile wipe`, but the account never connects
//! again (that would register it anew). Asks for a typed confirmation unless
//! `--yes`.

use std::io::{BufRead, IsTerminal, Write};

use serde_json::json;

use crate::cli::DeleteAccountArgs;
use crate::error::{CliError, Result};
use crate::home::Home;
use crate::net;
use crate::output::{Output, Style};

/// What the user types to confirm.
const CONFIRM_WORD: &str = "delete";

/// Runs `rankfile delete-account`.
pub fn run(home: &Home, args: &DeleteAccountArgs, out: &Output) -> Result<()> {
    let relay = home.relay(&args.relay)?;
    if !args.yes {
        confirm()?;
    }
    let rt = net::runtime()?;
    let id = rt.block_on(async {
        let client = home.open(Some(&relay))?;
        let (client, _events) = net::connect(client, &relay, out).await?;
        let id = client.id().await?;
        out.wait("deleting the account at the relay", client.delete_account())
            .await?;
        Ok::<_, CliError>(id)
    })?;
    out.emit(
        || {
            format!(
                "{} at the relay: {id}. This home keeps its history until `rankfile wipe`, and no longer connects.",
                out.paint(Style::Bad, "account deleted"),
            )
        },
        || json!({ "deleted": id.to_string() }),
    );
    Ok(())
}

fn confirm() -> Result<()> {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        return Err(CliError::Usage(
            "delete-account needs a typed confirmation; run it in a terminal, or pass --yes".into(),
        ));
    }
    eprint!(
        "This deletes the account at the relay for good: your mailbox, keys there and uploads.\nType `{CONFIRM_WORD}` to go on: "
    );
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    stdin
        .lock()
        .read_line(&mut line)
        .map_err(CliError::io("reading the confirmation"))?;
    if line.trim() != CONFIRM_WORD {
        return Err(CliError::Usage("not confirmed; nothing was deleted".into()));
    }
    Ok(())
}
