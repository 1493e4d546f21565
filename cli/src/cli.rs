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
  8  not allowed: your role in the committee does not permit it (e.g. a member
     raising an alert); nothing was sent

Naming committees, channels and members:
  COMMITTEE  its name (if no other of your committees has it), or a prefix of its
             ID of at least 4 hex digits, as `committee list` shows (8 digits)
  CHANNEL    a prefix of its ID (at least 4 hex digits, `channel list` shows 8),
             or COMMITTEE/discussion or COMMITTEE/announcement when that
             committee has one channel of that kind
  MEMBER     a contact's name, an account ID (rf1-…), or the start of one that
             matches one member only
  ALERT      a prefix of its ID (at least 4 hex digits; `alert list` shows 8)
  PROPOSAL   a prefix of a link proposal's ID, as `link list` shows it

Passphrase:
  Asked for on the terminal, without echo, unless given by --passphrase-file,
  RANKFILE_PASSPHRASE_FILE or RANKFILE_PASSPHRASE (in that order). A duress
  passphrase (`rankfile duress set`) typed at any of these wipes the home and is
  answered as a wrong passphrase is (exit code 3).

Environment:
  RANKFILE_HOME             the home directory (like --home)
  RANKFILE_PASSPHRASE_FILE  a file whose first line is the passphrase (like --passphrase-file)
  RANKFILE_PASSPHRASE       the passphrase itself, for scripts. WARNING: other processes
                            of the same user can read a process's environment (on
                            Linux, /proc/PID/environ); prefer a passphrase file";

/// Rankfile: end-to-end encrypted messaging for rank-and-file committees.
#[derive(Debug, Parser)]
#[command(name = "rankfile", version, about, after_help = AFTER_HELP)]
pub struct Cli {
    /// The home directory holding this device's encrypted store
    /// (default: the user's data directory, e.g. ~/.local/share/rankfile).
    #[arg(long, global = true, env = "RANKFILE_HOME", value_name = "DIR")]
    pub home: Option<PathBuf>,
    /// Read the passphrase from the first line of this file (its line ending
    /// stripped), as restic's RESTIC_PASSWORD_FILE. Keep the file readable
    /// by you alone.
    #[arg(
        long,
        global = true,
        env = "RANKFILE_PASSPHRASE_FILE",
        value_name = "PATH"
    )]
    pub passphrase_file: Option<PathBuf>,
    /// Print JSON for scripts (one object per line) instead of text for people.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
// `Relay` carries every relay setting; the enum is parsed once per process,
// so its size costs nothing worth a box.
#[allow(clippy::large_enum_variant)]
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
    /// Set the disappearing timer of the conversation with a contact (either
    /// side may): both phones delete each message that long after it is sent.
    Timer(TimerArgs),
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
    /// Emergency alerts: raise one, answer one, see who answered.
    #[command(subcommand)]
    Alert(AlertCommand),
    /// Links between committees: propose, accept, list (the delegates of
    /// linked committees meet in a council, and network alerts cascade).
    #[command(subcommand)]
    Link(LinkCommand),
    /// Panic wipe, with no passphrase: destroy the salt and key-derivation
    /// files, then the store (even a corrupt one) and the configuration.
    Wipe(WipeArgs),
    /// Delete this account at the relay (mailbox, keys, push endpoint, uploads);
    /// the home stays readable until `wipe`, and no longer connects.
    DeleteAccount(DeleteAccountArgs),
    /// Set or clear a duress passphrase: typed at any unlock instead of the
    /// passphrase, it wipes this home and answers as a wrong passphrase does.
    #[command(subcommand)]
    Duress(DuressCommand),
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

/// `rankfile timer`.
#[derive(Debug, Args)]
pub struct TimerArgs {
    /// The contact (name or account ID).
    pub contact: String,
    /// How long messages last: `off`, or a number with s, m, h, d or w
    /// (`30m`, `1d`, `1w`), at most a year.
    pub duration: String,
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
    /// Withdraw an invite (its ID as `committee members` lists it): nobody
    /// is admitted from it any more.
    Revoke(RevokeArgs),
}

/// `rankfile committee revoke`.
#[derive(Debug, Args)]
pub struct RevokeArgs {
    /// The committee (name or ID prefix).
    pub committee: String,
    /// The invite: a prefix of its ID (at least 4 hex digits).
    pub invite: String,
    #[command(flatten)]
    pub relay: RelayOpts,
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

/// `rankfile alert …`.
#[derive(Debug, Subcommand)]
pub enum AlertCommand {
    /// Raise an alert in a committee or council (organizers and delegates):
    /// it goes to every member at once, ahead of chat, and wakes their phones.
    Send(AlertSendArgs),
    /// List the alerts on this device, newest first, after receiving what waits.
    List(AlertListArgs),
    /// Count the answers to an alert you raised or passed on, and name who
    /// has not answered.
    Status(AlertRefArgs),
    /// Answer an alert (to whoever delivered it to you).
    Answer(AlertAnswerArgs),
    /// Send the alert again to those who have not answered.
    Renotify(AlertRefArgs),
    /// Let a held alert into your committee (organizers, on a hold link).
    Approve(AlertRefArgs),
}

/// What an alert calls for, as typed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AlertKindArg {
    /// Come to a meeting now.
    EmergencyMeeting,
    /// Something is happening (a raid, a lock-out): come and help.
    RapidResponse,
    /// Take an action (walk out, sign, call).
    ActionCall,
    /// For information.
    Information,
}

/// An answer, as typed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AlertAnswerArg {
    /// Seen it.
    Received,
    /// I am coming.
    Coming,
    /// I cannot come.
    CannotCome,
    /// I am safe.
    Safe,
}

/// `rankfile alert send`.
#[derive(Debug, Args)]
pub struct AlertSendArgs {
    /// The committee or council (name or ID prefix).
    pub committee: String,
    /// The title, shown large on every phone.
    pub title: String,
    /// What it calls for.
    #[arg(long, value_enum, default_value_t = AlertKindArg::EmergencyMeeting)]
    pub kind: AlertKindArg,
    /// More words under the title.
    #[arg(long, default_value = "")]
    pub text: String,
    /// Where.
    #[arg(long, default_value = "")]
    pub place: String,
    /// When it starts, in minutes from now (none if left out).
    #[arg(long = "in", value_name = "MINUTES",
          value_parser = clap::value_parser!(u32).range(0..=60 * 24 * 30))]
    pub starts_in: Option<u32>,
    /// How long it asks for answers, in hours.
    #[arg(long, default_value_t = 12, value_name = "HOURS",
          value_parser = clap::value_parser!(u32).range(1..=24 * 30))]
    pub hours: u32,
    /// Send it on along every link, to every linked committee (each phone gets it once).
    #[arg(long)]
    pub network: bool,
    /// Ask for no answers (information only).
    #[arg(long)]
    pub no_answers: bool,
    #[command(flatten)]
    pub relay: RelayOpts,
}

/// `rankfile alert list`.
#[derive(Debug, Args)]
pub struct AlertListArgs {
    /// Show what this device holds without connecting to the relay first.
    #[arg(long)]
    pub offline: bool,
    #[command(flatten)]
    pub relay: RelayOpts,
}

/// An alert, for commands that take only that.
#[derive(Debug, Args)]
pub struct AlertRefArgs {
    /// The alert (a prefix of its ID).
    pub alert: String,
    #[command(flatten)]
    pub relay: RelayOpts,
}

/// `rankfile alert answer`.
#[derive(Debug, Args)]
pub struct AlertAnswerArgs {
    /// The alert (a prefix of its ID).
    pub alert: String,
    /// Your answer.
    #[arg(value_enum)]
    pub answer: AlertAnswerArg,
    #[command(flatten)]
    pub relay: RelayOpts,
}

/// `rankfile link …`.
#[derive(Debug, Subcommand)]
pub enum LinkCommand {
    /// Propose to an organizer of another committee (or council) to link
    /// with yours; you name your delegates to the council.
    Propose(LinkProposeArgs),
    /// Accept a proposal made to you (`link list` shows them): a council
    /// forms, or the proposer's committee joins your council.
    Accept(LinkAcceptArgs),
    /// Decline a proposal.
    Decline(LinkRefArgs),
    /// The links of your councils, and proposals waiting for you.
    List(AlertListArgs),
}

/// How alerts from the council enter a committee, as typed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LinkPolicyArg {
    /// At once, to every member.
    Forward,
    /// Only once an organizer of the committee approves each one.
    Hold,
}

/// `rankfile link propose`.
#[derive(Debug, Args)]
pub struct LinkProposeArgs {
    /// Your committee (name or ID prefix).
    pub committee: String,
    /// The committee or council to link with: its full ID (32 hex digits), as
    /// its organizer reads it from `rankfile committee list --json`.
    pub target: String,
    /// That committee's organizer you propose to (contact name or account ID).
    #[arg(long, value_name = "ACCOUNT")]
    pub to: String,
    /// Your delegates to the council (delegates or organizers of your
    /// committee); repeat for several.
    #[arg(long = "delegate", required = true, value_name = "MEMBER")]
    pub delegates: Vec<String>,
    /// How alerts from the council enter your committee.
    #[arg(long, value_enum, default_value_t = LinkPolicyArg::Forward)]
    pub policy: LinkPolicyArg,
    /// A name for a new council; leave out to join the target when it is
    /// already a council.
    #[arg(long, default_value = "")]
    pub council: String,
    #[command(flatten)]
    pub relay: RelayOpts,
}

/// `rankfile link accept`.
#[derive(Debug, Args)]
pub struct LinkAcceptArgs {
    /// The proposal (a prefix of its ID, as `link list` shows it).
    pub proposal: String,
    /// Your delegates to the council (delegates or organizers of the
    /// committee proposed to); repeat for several.
    #[arg(long = "delegate", required = true, value_name = "MEMBER")]
    pub delegates: Vec<String>,
    /// How alerts from the council enter your committee.
    #[arg(long, value_enum, default_value_t = LinkPolicyArg::Forward)]
    pub policy: LinkPolicyArg,
    #[command(flatten)]
    pub relay: RelayOpts,
}

/// A link proposal, for commands that take only that.
#[derive(Debug, Args)]
pub struct LinkRefArgs {
    /// The proposal (a prefix of its ID).
    pub proposal: String,
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

/// `rankfile delete-account`.
#[derive(Debug, Args)]
pub struct DeleteAccountArgs {
    /// Do not ask for the typed confirmation.
    #[arg(long)]
    pub yes: bool,
    #[command(flatten)]
    pub relay: RelayOpts,
}

/// `rankfile duress …`.
#[derive(Debug, Subcommand)]
pub enum DuressCommand {
    /// Set (or replace) the duress passphrase; asks for the passphrase first.
    Set(DuressSetArgs),
    /// Clear the duress passphrase; asks for the passphrase first. Nobody
    /// can tell from the home whether one was ever set.
    Clear,
}

/// `rankfile duress set`.
#[derive(Debug, Args)]
pub struct DuressSetArgs {
    /// Read the duress passphrase from the first line of this file instead
    /// of asking for it twice.
    #[arg(long, value_name = "PATH")]
    pub duress_file: Option<PathBuf>,
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
    fn alert_and_link_commands_parse() {
        let cli = Cli::try_parse_from([
            "rankfile",
            "alert",
            "send",
            "depot",
            "Meet now",
            "--kind",
            "rapid-response",
            "--in",
            "30",
            "--network",
        ])
        .expect("parses");
        match cli.command {
            Command::Alert(AlertCommand::Send(a)) => {
                assert_eq!(a.kind, AlertKindArg::RapidResponse);
                assert_eq!((a.starts_in, a.network, a.hours), (Some(30), true, 12));
            }
            other => panic!("parsed as {other:?}"),
        }
        let cli = Cli::try_parse_from(["rankfile", "alert", "answer", "5f3a", "cannot-come"])
            .expect("parses");
        match cli.command {
            Command::Alert(AlertCommand::Answer(a)) => {
                assert_eq!(a.answer, AlertAnswerArg::CannotCome)
            }
            other => panic!("parsed as {other:?}"),
        }
        assert!(Cli::try_parse_from(["rankfile", "alert", "answer", "5f3a", "maybe"]).is_err());
        // A link names at least one delegate.
        assert!(Cli::try_parse_from([
            "rankfile", "link", "propose", "depot", "00ff", "--to", "ann"
        ])
        .is_err());
        assert!(
            Cli::try_parse_from(["rankfile", "link", "accept", "00ff", "--delegate", "bob"])
                .is_ok()
        );
    }

    #[test]
    fn the_passphrase_file_is_a_flag_everywhere() {
        let cli =
            Cli::try_parse_from(["rankfile", "id", "--passphrase-file", "/p"]).expect("parses");
        assert_eq!(cli.passphrase_file, Some(PathBuf::from("/p")));
        let cli = Cli::try_parse_from(["rankfile", "duress", "set", "--duress-file", "/d"])
            .expect("parses");
        match cli.command {
            Command::Duress(DuressCommand::Set(a)) => {
                assert_eq!(a.duress_file, Some(PathBuf::from("/d")))
            }
            other => panic!("parsed as {other:?}"),
        }
    }

    #[test]
    fn help_warns_that_the_passphrase_variable_is_visible() {
        let help = Cli::command().render_long_help().to_string();
        assert!(help.contains("--passphrase-file"), "{help}");
        assert!(help.contains("RANKFILE_PASSPHRASE_FILE"), "{help}");
        assert!(help.contains("WARNING: other processes"), "{help}");
        assert!(help.contains("/proc/PID/environ"), "{help}");
    }

    #[test]
    fn help_documents_exit_codes() {
        let help = Cli::command().render_long_help().to_string();
        assert!(help.contains("3  wrong passphrase"), "{help}");
        assert!(help.contains("4  relay unreachable"));
        assert!(help.contains("7  not yet"));
        assert!(help.contains("8  not allowed"));
        assert!(help.contains("COMMITTEE/discussion"));
    }
}
