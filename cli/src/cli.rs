//! The command line: every command, flag and environment variable, and the
//! exit codes, as clap derives them (`rankfile --help` shows all of it).

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// What `rankfile --help` says after the commands.
const AFTER_HELP: &str = "\
Exit codes:
  0  ok
  1  error (see the message)
  2  usage: the command line or its input was wrong
  3  wrong passphrase for this home (nothing was changed)
  4  relay unreachable or refusing
  5  no home here (run `rankfile init`), or a home already exists
  6  safety numbers do not match
  7  not yet: another device did not answer in time (e.g. the organizer's, to
     admit you); what was sent stands

Naming committees, channels and members:
  COMMITTEE  its name (if no other of your committees has it), or a prefix of its
             ID of at least 4 hex digits, as `committee list` shows (8 digits)
  CHANNEL    a prefix of its ID (at least 4 hex digits, `channel list` shows 8),
             or COMMITTEE/discussion or COMMITTEE/announcement when that
             committee has one channel of that kind
  MEMBER     a contact's name, an account ID (rf1-…), or the start of one that
             matches one member only

Environment:
  RANKFILE_HOME        the home directory (like --home)
  RANKFILE_PASSPHRASE  the passphrase, for scripts (otherwise it is asked for, without echo)";

/// Rankfile: end-to-end encrypted messaging for rank-and-file committees.
#[derive(Debug, Parser)]
#[command(name = "rankfile", version, about, after_help = AFTER_HELP)]
pub struct Cli {
    /// The home directory holding this device's encrypted store
    /// (default: the user's data directory, e.g. ~/.local/share/rankfile).
    #[arg(long, global = true, env = "RANKFILE_HOME", value_name = "DIR")]
    pub home: Option<PathBuf>,
    /// Print JSON for scripts (one object per line) instead of text for people.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create an identity and an encrypted store in the home directory.
    Init(InitArgs),
    /// Show this account's ID and the data to verify it.
    Id,
    /// Add, list, check and verify contacts.
    #[command(subcommand)]
    Contact(ContactCommand),
    /// Send a message, waiting until the relay holds it durably.
    Send(SendArgs),
    /// Print messages as they arrive, until Ctrl-C.
    Watch(WatchArgs),
    /// Receive what waits at the relay (and answer it: admit joiners, open
    /// sessions), send the outbox, print what arrived, and exit.
    Sync(SyncArgs),
    /// Committees: found one, invite, join, list members, remove, change roles.
    #[command(subcommand)]
    Committee(CommitteeCommand),
    /// Committee channels: create, post, read the history.
    #[command(subcommand)]
    Channel(ChannelCommand),
    /// Panic wipe: destroy the store, the salt and the configuration.
    Wipe(WipeArgs),
    /// Run a relay server (same flags as the `rankfile-relay` binary).
    Relay(rankfile_relay::Args),
    /// Play the whole system on this machine: a relay and simulated phones.
    Demo(DemoArgs),
}

/// Which relay to use: saved by `init`, overridable per command.
#[derive(Debug, Clone, Default, Args)]
pub struct RelayOpts {
    /// The relay's address, e.g. 127.0.0.1:7443.
    #[arg(long, value_name = "ADDR")]
    pub relay: Option<SocketAddr>,
    /// The relay's certificate fingerprint (SHA-256, hex), as it printed on start.
    #[arg(long, value_name = "HEX")]
    pub fingerprint: Option<String>,
}

/// `rankfile init`.
#[derive(Debug, Args)]
pub struct InitArgs {
    #[command(flatten)]
    pub relay: RelayOpts,
}

/// `rankfile contact …`.
#[derive(Debug, Subcommand)]
pub enum ContactCommand {
    /// Fetch a contact's keys from the relay and open a session with it.
    Add {
        /// A name for the contact, as you will see it.
        name: String,
        /// Their account ID (rf1-…).
        account_id: String,
        #[command(flatten)]
        relay: RelayOpts,
    },
    /// List contacts and whether each is verified.
    List,
    /// Show the safety number to compare with a contact.
    Safety {
        /// Their account ID (rf1-…).
        account_id: String,
    },
    /// Mark a contact verified by their safety-number code or digits.
    Verify(VerifyArgs),
}

/// `rankfile contact verify`.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("how").required(true).args(["scanned", "digits"])))]
pub struct VerifyArgs {
    /// Their account ID (rf1-…).
    pub account_id: String,
    /// The code their phone shows (`rankfile contact safety` → scannable), in hex.
    #[arg(long, value_name = "HEX")]
    pub scanned: Option<String>,
    /// The 60 digits their phone shows, after comparing them by eye.
    #[arg(long, value_name = "DIGITS")]
    pub digits: Option<String>,
}

/// `rankfile send`.
#[derive(Debug, Args)]
pub struct SendArgs {
    /// The recipient's account ID (rf1-…); must be a contact.
    pub account_id: String,
    /// The message.
    pub text: String,
    /// Seconds to wait for the relay before giving up (the message stays queued).
    #[arg(long, default_value_t = 30, value_name = "SECS")]
    pub timeout: u64,
    #[command(flatten)]
    pub relay: RelayOpts,
}

/// `rankfile watch`.
#[derive(Debug, Args)]
pub struct WatchArgs {
    #[command(flatten)]
    pub relay: RelayOpts,
}

/// `rankfile sync`.
#[derive(Debug, Args)]
pub struct SyncArgs {
    #[command(flatten)]
    pub relay: RelayOpts,
}

/// `rankfile committee …`.
#[derive(Debug, Subcommand)]
pub enum CommitteeCommand {
    /// Found a committee, with you its only member and organizer (no network needed).
    Create(CreateCommitteeArgs),
    /// List your committees.
    List,
    /// Make an invite: a rankfile://join/… link (also the QR code's text).
    Invite(InviteArgs),
    /// Ask to join from an invite link; the organizer's device admits you when
    /// it is online.
    Join(JoinArgs),
    /// Add a contact (with whom you have a session) directly, as an organizer.
    Add(AddMemberArgs),
    /// Show a committee: its members, their roles, its channels.
    Members(CommitteeRefArgs),
    /// Remove a member; they read nothing posted after it.
    Remove(MemberArgs),
    /// Change a member's role.
    Role(RoleArgs),
}

/// A committee, for commands that take only that.
#[derive(Debug, Args)]
pub struct CommitteeRefArgs {
    /// The committee (name or ID prefix; see `rankfile --help`).
    pub committee: String,
    /// Show what this device holds without connecting to the relay first.
    #[arg(long)]
    pub offline: bool,
    #[command(flatten)]
    pub relay: RelayOpts,
}

/// `rankfile committee create`.
#[derive(Debug, Args)]
pub struct CreateCommitteeArgs {
    /// The committee's name, seen only by its members.
    pub name: String,
    /// The workplace (a factory, depot, hospital…).
    #[arg(long, default_value = "")]
    pub workplace: String,
    /// The industry.
    #[arg(long, default_value = "")]
    pub industry: String,
    /// The region.
    #[arg(long, default_value = "")]
    pub region: String,
}

/// `rankfile committee invite`.
#[derive(Debug, Args)]
pub struct InviteArgs {
    /// The committee (name or ID prefix).
    pub committee: String,
    /// How long the invite admits newcomers, in hours.
    #[arg(long, default_value_t = 72, value_name = "HOURS",
          value_parser = clap::value_parser!(u32).range(1..=24 * 90))]
    pub hours: u32,
    /// How many people it admits.
    #[arg(long, default_value_t = 1, value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub uses: u32,
    #[command(flatten)]
    pub relay: RelayOpts,
}

/// `rankfile committee join`.
#[derive(Debug, Args)]
pub struct JoinArgs {
    /// The invite link (rankfile://join/…), or the text of its QR code.
    pub link: String,
    /// Wait this many seconds to be admitted (exit code 7 if not by then);
    /// 0 sends the request and exits.
    #[arg(long, default_value_t = 0, value_name = "SECS")]
    pub wait: u64,
    #[command(flatten)]
    pub relay: RelayOpts,
}

/// `rankfile committee add`.
#[derive(Debug, Args)]
pub struct AddMemberArgs {
    /// The committee (name or ID prefix).
    pub committee: String,
    /// The contact to add (name or account ID).
    pub member: String,
    /// Their role.
    #[arg(long, value_enum, default_value_t = RoleArg::Member)]
    pub role: RoleArg,
    #[command(flatten)]
    pub relay: RelayOpts,
}

/// A committee and one of its members.
#[derive(Debug, Args)]
pub struct MemberArgs {
    /// The committee (name or ID prefix).
    pub committee: String,
    /// The member (contact name, account ID, or its unique start).
    pub member: String,
    #[command(flatten)]
    pub relay: RelayOpts,
}

/// `rankfile committee role`.
#[derive(Debug, Args)]
pub struct RoleArgs {
    /// The committee (name or ID prefix).
    pub committee: String,
    /// The member (contact name, account ID, or its unique start).
    pub member: String,
    /// The new role.
    #[arg(value_enum)]
    pub role: RoleArg,
    #[command(flatten)]
    pub relay: RelayOpts,
}

/// A member's role, as typed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RoleArg {
    /// Reads and posts in discussion channels, votes.
    Member,
    /// Elected to speak for the committee.
    Delegate,
    /// Changes the membership.
    Organizer,
}

/// `rankfile channel …`.
#[derive(Debug, Subcommand)]
pub enum ChannelCommand {
    /// Make a channel in a committee (organizers).
    Create(CreateChannelArgs),
    /// List a committee's channels (or every committee's).
    List {
        /// The committee (name or ID prefix); all of them if left out.
        committee: Option<String>,
    },
    /// Post in a channel; exits once the relay holds it durably.
    Send(ChannelSendArgs),
    /// Show a channel's messages, oldest first, after receiving what waits.
    History(HistoryArgs),
    /// Find a channel's messages containing every word given (or words that
    /// start so), newest first; searched on this device, in its encrypted store.
    Search(SearchArgs),
}

/// `rankfile channel create`.
#[derive(Debug, Args)]
pub struct CreateChannelArgs {
    /// The committee (name or ID prefix).
    pub committee: String,
    /// An announcement channel (organizers post, members read) instead of a
    /// discussion (everyone posts).
    #[arg(long)]
    pub announcement: bool,
    #[command(flatten)]
    pub relay: RelayOpts,
}

/// `rankfile channel send`.
#[derive(Debug, Args)]
pub struct ChannelSendArgs {
    /// The channel (ID prefix, or COMMITTEE/discussion).
    pub channel: String,
    /// The message.
    pub text: String,
    #[command(flatten)]
    pub relay: RelayOpts,
}

/// `rankfile channel history`.
#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// The channel (ID prefix, or COMMITTEE/discussion).
    pub channel: String,
    /// The most recent messages to show.
    #[arg(long, default_value_t = 50, value_name = "N")]
    pub limit: u32,
    /// Show what this device holds without connecting to the relay first.
    #[arg(long)]
    pub offline: bool,
    #[command(flatten)]
    pub relay: RelayOpts,
}

/// `rankfile channel search`.
#[derive(Debug, Args)]
pub struct SearchArgs {
    /// The channel (ID prefix, or COMMITTEE/discussion).
    pub channel: String,
    /// The words to look for (case and accents aside; `vot` finds `vote`).
    #[arg(required = true, num_args = 1..)]
    pub words: Vec<String>,
    /// The most matches to show.
    #[arg(long, default_value_t = 20, value_name = "N")]
    pub limit: u32,
    /// Search what this device holds without connecting to the relay first.
    #[arg(long)]
    pub offline: bool,
    #[command(flatten)]
    pub relay: RelayOpts,
}

/// `rankfile wipe`.
#[derive(Debug, Args)]
pub struct WipeArgs {
    /// Do not ask for the typed confirmation.
    #[arg(long)]
    pub yes: bool,
}

/// `rankfile demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Simulated phones: one organizer and the rest members (2–200).
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(2..=200))]
    pub phones: u16,
    /// Keep every database (relay and phones) in DIR instead of a temporary directory.
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// Messages the organizer sends to the phone that is offline.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u16).range(1..=1000))]
    pub offline_messages: u16,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn relay_takes_the_relay_binary_flags() {
        let cli =
            Cli::try_parse_from(["rankfile", "relay", "--bind", "127.0.0.1:0"]).expect("parses");
        match cli.command {
            Command::Relay(args) => assert_eq!(args.bind.map(|a| a.port()), Some(0)),
            other => panic!("parsed as {other:?}"),
        }
    }

    #[test]
    fn verify_needs_a_way_to_verify() {
        assert!(Cli::try_parse_from(["rankfile", "contact", "verify", "rf1-x"]).is_err());
        assert!(
            Cli::try_parse_from(["rankfile", "contact", "verify", "rf1-x", "--digits", "1"])
                .is_ok()
        );
    }

    #[test]
    fn committee_commands_parse() {
        let cli =
            Cli::try_parse_from(["rankfile", "committee", "role", "depot", "ann", "delegate"])
                .expect("parses");
        match cli.command {
            Command::Committee(CommitteeCommand::Role(a)) => {
                assert_eq!((a.committee.as_str(), a.member.as_str()), ("depot", "ann"));
                assert_eq!(a.role, RoleArg::Delegate);
            }
            other => panic!("parsed as {other:?}"),
        }
        assert!(
            Cli::try_parse_from(["rankfile", "committee", "role", "depot", "ann", "boss"]).is_err()
        );
        assert!(
            Cli::try_parse_from(["rankfile", "committee", "invite", "depot", "--uses", "0"])
                .is_err()
        );
    }

    #[test]
    fn help_documents_exit_codes() {
        let help = Cli::command().render_long_help().to_string();
        assert!(help.contains("3  wrong passphrase"), "{help}");
        assert!(help.contains("4  relay unreachable"));
        assert!(help.contains("7  not yet"));
        assert!(help.contains("COMMITTEE/discussion"));
    }
}
