//! The CLI's error type: what went wrong in plain words, what to do next, and
//! the exit code that tells a script which kind of failure it was.

use std::path::PathBuf;

/// Exit code: success.
pub const EXIT_OK: u8 = 0;
/// Exit code: any failure without a more precise code.
pub const EXIT_ERROR: u8 = 1;
/// Exit code: the command line was wrong (clap uses it too).
pub const EXIT_USAGE: u8 = 2;
/// Exit code: the passphrase does not open this home's store.
pub const EXIT_WRONG_PASSPHRASE: u8 = 3;
/// Exit code: the relay could not be reached, or refused us.
pub const EXIT_RELAY: u8 = 4;
/// Exit code: no home here yet (run `rankfile init`), or one exists already.
pub const EXIT_HOME: u8 = 5;
/// Exit code: safety numbers do not match — possibly someone in the middle.
pub const EXIT_MISMATCH: u8 = 6;
/// Exit code: waited for another device (an organizer's, to admit us) without
/// an answer; what was sent stands and may still be answered.
pub const EXIT_NOT_YET: u8 = 7;

/// Exit code: your role does not allow it (e.g. a member raising an alert, or
/// posting in an announcement channel); nothing was sent.
pub const EXIT_NOT_ALLOWED: u8 = 8;

/// Everything the CLI reports as a failure.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("wrong passphrase for this home ({0}); nothing was changed. Try again, or check RANKFILE_PASSPHRASE")]
    WrongPassphrase(PathBuf),
    #[error("no Rankfile home at {0}; create one with `rankfile init` (or pass --home DIR)")]
    NoHome(PathBuf),
    #[error(
        "a Rankfile home already exists at {0}; use it, or wipe it first with `rankfile wipe`"
    )]
    HomeExists(PathBuf),
    #[error("no relay configured for this home; pass --relay ADDR --fingerprint HEX (or run `rankfile init` with them)")]
    NoRelay,
    #[error("the relay at {addr} could not be reached: {reason}. Check the address and fingerprint, and that the relay runs")]
    RelayUnreachable { addr: String, reason: String },
    #[error("the home was created, but the relay at {addr} could not be reached: {reason}. Your prekeys will be published by the next `rankfile watch`; check the address and fingerprint, and that the relay runs")]
    CreatedOffline { addr: String, reason: String },
    #[error("the relay refused: {0}")]
    RelayRefused(String),
    #[error("the safety numbers do not match: do NOT trust this contact until you have compared them in person")]
    SafetyMismatch,
    #[error("{0}")]
    Usage(String),
    #[error("{0}")]
    NotYet(String),
    #[error("{0}")]
    NotAllowed(String),
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Core(rankfile_core::Error),
    #[error("{0}")]
    Other(String),
}

impl CliError {
    /// The process exit code for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::WrongPassphrase(_) => EXIT_WRONG_PASSPHRASE,
            CliError::NoHome(_) | CliError::HomeExists(_) => EXIT_HOME,
            CliError::NoRelay | CliError::Usage(_) => EXIT_USAGE,
            CliError::RelayUnreachable { .. }
            | CliError::CreatedOffline { .. }
            | CliError::RelayRefused(_) => EXIT_RELAY,
            CliError::SafetyMismatch => EXIT_MISMATCH,
            CliError::NotYet(_) => EXIT_NOT_YET,
            CliError::NotAllowed(_) => EXIT_NOT_ALLOWED,
            CliError::Core(e) => match e {
                rankfile_core::Error::Offline
                | rankfile_core::Error::Transport(_)
                | rankfile_core::Error::Relay { .. } => EXIT_RELAY,
                rankfile_core::Error::SafetyNumberMismatch => EXIT_MISMATCH,
                rankfile_core::Error::MayNotAlert(_) | rankfile_core::Error::MayNotPost(_) => {
                    EXIT_NOT_ALLOWED
                }
                rankfile_core::Error::InvalidAccountId(_)
                | rankfile_core::Error::InvalidInvite(_) => EXIT_USAGE,
                _ => EXIT_ERROR,
            },
            CliError::Io { .. } | CliError::Other(_) => EXIT_ERROR,
        }
    }

    /// A short machine-readable name for `--json` output.
    pub fn kind(&self) -> &'static str {
        match self {
            CliError::WrongPassphrase(_) => "wrong_passphrase",
            CliError::NoHome(_) => "no_home",
            CliError::HomeExists(_) => "home_exists",
            CliError::NoRelay => "no_relay",
            CliError::RelayUnreachable { .. } | CliError::CreatedOffline { .. } => {
                "relay_unreachable"
            }
            CliError::RelayRefused(_) => "relay_refused",
            CliError::SafetyMismatch => "safety_mismatch",
            CliError::Usage(_) => "usage",
            CliError::NotYet(_) => "not_yet",
            CliError::NotAllowed(_) => "not_allowed",
            CliError::Io { .. } => "io",
            CliError::Core(_) => "core",
            CliError::Other(_) => "error",
        }
    }

    /// Wraps an I/O error with what was being done.
    pub fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> CliError {
        let what = what.into();
        move |source| CliError::Io { what, source }
    }
}

impl From<rankfile_core::Error> for CliError {
    fn from(e: rankfile_core::Error) -> Self {
        match e {
            rankfile_core::Error::SafetyNumberMismatch => CliError::SafetyMismatch,
            rankfile_core::Error::Relay { code, message } => {
                CliError::RelayRefused(format!("{code}: {message}"))
            }
            other => CliError::Core(other),
        }
    }
}

/// The CLI's result type.
pub type Result<T, E = CliError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_distinct_per_kind() {
        let cases = [
            (CliError::WrongPassphrase("h".into()), EXIT_WRONG_PASSPHRASE),
            (CliError::NoHome("h".into()), EXIT_HOME),
            (
                CliError::RelayUnreachable {
                    addr: "a".into(),
                    reason: "r".into(),
                },
                EXIT_RELAY,
            ),
            (CliError::SafetyMismatch, EXIT_MISMATCH),
            (CliError::Usage("u".into()), EXIT_USAGE),
            (CliError::NotYet("n".into()), EXIT_NOT_YET),
            (CliError::NotAllowed("n".into()), EXIT_NOT_ALLOWED),
            (CliError::Other("o".into()), EXIT_ERROR),
            (CliError::from(rankfile_core::Error::Offline), EXIT_RELAY),
            (
                CliError::from(rankfile_core::Error::SafetyNumberMismatch),
                EXIT_MISMATCH,
            ),
        ];
        for (e, code) in cases {
            assert_eq!(e.exit_code(), code, "{e}");
        }
        assert_ne!(EXIT_OK, EXIT_ERROR);
    }

    #[test]
    fn wrong_passphrase_says_what_to_do() {
        let text = CliError::WrongPassphrase("/x".into()).to_string();
        assert!(text.starts_with("wrong passphrase for this home"), "{text}");
        assert!(text.contains("nothing was changed"));
    }
}
