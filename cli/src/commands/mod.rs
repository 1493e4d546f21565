//! One module per command; [`run`] picks the one the command line names.

mod alert;
mod alert_status;
mod channel;
mod committee;
mod contact;
mod delete_account;
mod duress;
mod id;
mod init;
mod link;
mod relay;
mod send;
mod sync;
mod timer;
mod watch;
mod wipe;

use rankfile_core::transport::Client;
use rankfile_core::AccountId;

use crate::cli::{Cli, Command, RelayOpts};
use crate::error::{CliError, Result};
use crate::home::Home;
use crate::net::{self, Online};
use crate::output::Output;

/// Runs the command.
pub fn run(cli: Cli, out: &Output) -> Result<()> {
    let home = || Home::resolve(cli.home.clone(), cli.passphrase_file.clone());
    match cli.command {
        Command::Init(args) => init::run(&home()?, &args, out),
        Command::Id => id::run(&home()?, out),
        Command::Contact(cmd) => contact::run(&home()?, cmd, out),
        Command::Send(args) => send::run(&home()?, &args, out),
        Command::Timer(args) => timer::run(&home()?, &args, out),
        Command::Watch(args) => watch::run(&home()?, &args, out),
        Command::Sync(args) => sync::run(&home()?, &args, out),
        Command::Committee(cmd) => committee::run(&home()?, cmd, out),
        Command::Channel(cmd) => channel::run(&home()?, cmd, out),
        Command::Alert(cmd) => alert::run(&home()?, cmd, out),
        Command::Link(cmd) => link::run(&home()?, cmd, out),
        Command::Wipe(args) => wipe::run(&home()?, &args, out),
        Command::DeleteAccount(args) => delete_account::run(&home()?, &args, out),
        Command::Duress(cmd) => duress::run(&home()?, cmd, out),
        Command::Relay(args) => relay::run(args),
        Command::Demo(args) => crate::demo::run(&args, out),
    }
}

/// Parses an account ID typed by a person, with a plain error.
pub fn parse_account_id(text: &str) -> Result<AccountId> {
    AccountId::parse(text).map_err(|e| {
        CliError::Usage(format!(
            "`{}` is not an account ID ({e}); it looks like rf1-xxxxx-xxxxx-…, see `rankfile id` on their device",
            quoted(text)
        ))
    })
}

/// Longest part of a person's input an error message repeats.
const QUOTED_CHARS: usize = 60;

/// Input repeated in an error message: its start only (a pasted page is not
/// printed back whole), with control characters escaped (a pasted link cannot
/// send the terminal escape sequences).
pub fn quoted(text: &str) -> String {
    let mut shown: String = text
        .chars()
        .take(QUOTED_CHARS)
        .flat_map(|c| {
            let escaped: Vec<char> = if c.is_control() {
                c.escape_default().collect()
            } else {
                vec![c]
            };
            escaped
        })
        .collect();
    if text.chars().nth(QUOTED_CHARS).is_some() {
        shown.push('…');
    }
    shown
}

/// Runs `act` with the home's account online and caught up with its mailbox,
/// then sends what it queued and waits until the relay holds it. The outbox
/// is sent even when `act` fails: what it committed should not linger.
pub fn online<T>(
    home: &Home,
    relay: &RelayOpts,
    out: &Output,
    act: impl AsyncFnOnce(&Online) -> Result<T>,
) -> Result<T> {
    let relay = home.relay(relay)?;
    let rt = net::runtime()?;
    rt.block_on(async {
        let client = home.open(Some(&relay))?;
        let online = net::online(client, &relay, out).await?;
        let acted = act(&online).await;
        let closed = online.close().await;
        let done = acted?;
        closed.map(|()| done)
    })
}

/// Runs `act` with the home's account opened with no relay: a command that
/// only reads or changes the store. What it queues goes with the next
/// networked command.
pub fn offline<T>(home: &Home, act: impl AsyncFnOnce(&Client) -> Result<T>) -> Result<T> {
    let rt = net::runtime()?;
    rt.block_on(async {
        let client = home.open(None)?;
        let acted = act(&client).await;
        let closed = client.close().await;
        let done = acted?;
        closed.map(|()| done).map_err(CliError::from)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_input_is_short_and_escaped() {
        assert_eq!(quoted("rf1-abc"), "rf1-abc");
        assert_eq!(quoted("a\u{1b}[2Jb\n"), "a\\u{1b}[2Jb\\n");
        let long = quoted(&"é".repeat(1000));
        assert_eq!(long.chars().count(), QUOTED_CHARS + 1);
        assert!(long.ends_with('…'));
    }
}
