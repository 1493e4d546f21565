//! The home directory: where one device's encrypted store lives, with the
//! salt and cost parameters that turn the passphrase into its key, and the
//! relay it uses (`relay.toml`). Opening a home maps the core's
//! `WrongDatabaseKey` to a plain "wrong passphrase", with nothing changed.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use rankfile_core::transport::{parse_fingerprint, RelayAddress};
use rankfile_core::{Account, DatabaseKey};
use serde::{Deserialize, Serialize};

use crate::cli::RelayOpts;
use crate::error::{CliError, Result};
use crate::keyfile::{self, KdfParams, SALT_LEN};

/// The store's file name inside the home.
const DATABASE: &str = "account.db";
/// The Argon2id salt (raw bytes).
const SALT: &str = "salt";
/// The Argon2id parameters.
const KDF: &str = "kdf.toml";
/// The relay to use.
const RELAY: &str = "relay.toml";

/// The relay saved in `home/relay.toml`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RelayConfig {
    pub address: SocketAddr,
    /// SHA-256 of the relay's certificate, hex.
    pub fingerprint: String,
}

/// A home directory (which may not exist yet).
#[derive(Debug, Clone)]
pub struct Home {
    dir: PathBuf,
}

impl Home {
    /// `--home`/`RANKFILE_HOME`, else `rankfile` under the user's data directory.
    pub fn resolve(explicit: Option<PathBuf>) -> Result<Home> {
        let dir = match explicit {
            Some(d) => d,
            None => dirs::data_dir()
                .map(|d| d.join("rankfile"))
                .ok_or_else(|| {
                    CliError::Usage("no user data directory here; pass --home DIR".into())
                })?,
        };
        Ok(Home { dir })
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The store's path.
    pub fn database(&self) -> PathBuf {
        self.dir.join(DATABASE)
    }

    /// The salt's path.
    pub fn salt_path(&self) -> PathBuf {
        self.dir.join(SALT)
    }

    /// The parameters' path.
    pub fn kdf_path(&self) -> PathBuf {
        self.dir.join(KDF)
    }

    /// The relay configuration's path.
    pub fn relay_path(&self) -> PathBuf {
        self.dir.join(RELAY)
    }

    /// Whether a store exists here.
    pub fn exists(&self) -> bool {
        self.database().exists()
    }

    /// Creates the home: salt, parameters, then the account in a new store.
    /// On failure, removes what it made.
    pub fn create(&self, passphrase: &str) -> Result<Account> {
        if self.exists() || self.salt_path().exists() {
            return Err(CliError::HomeExists(self.dir.clone()));
        }
        make_private_dir(&self.dir)?;
        let salt = keyfile::new_salt();
        let params = KdfParams::default();
        let made = (|| {
            write_private(&self.salt_path(), &salt)?;
            write_private(&self.kdf_path(), params.to_toml()?.as_bytes())?;
            let key = keyfile::derive_key(passphrase, &salt, &params)?;
            Ok(Account::create(&self.database(), &key)?)
        })();
        if made.is_err() {
            for p in [self.salt_path(), self.kdf_path()] {
                let _ = std::fs::remove_file(p);
            }
        }
        made
    }

    /// The store key for `passphrase`, from the stored salt and parameters.
    pub fn key(&self, passphrase: &str) -> Result<DatabaseKey> {
        if !self.exists() {
            return Err(CliError::NoHome(self.dir.clone()));
        }
        let salt = std::fs::read(self.salt_path()).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                CliError::Other(format!(
                    "the salt {} is missing: without it the store cannot be opened",
                    self.salt_path().display()
                ))
            } else {
                CliError::io("reading the salt")(e)
            }
        })?;
        if salt.len() != SALT_LEN {
            return Err(CliError::Other(format!(
                "the salt {} is damaged ({} bytes, expected {SALT_LEN})",
                self.salt_path().display(),
                salt.len()
            )));
        }
        let params = KdfParams::load(&self.kdf_path())?;
        keyfile::derive_key(passphrase, &salt, &params)
    }

    /// Opens the account, asking for the passphrase (or reading it from the
    /// environment). A wrong one changes nothing.
    pub fn open(&self) -> Result<Account> {
        if !self.exists() {
            return Err(CliError::NoHome(self.dir.clone()));
        }
        let passphrase = keyfile::read_passphrase(false)?;
        let key = self.key(&passphrase)?;
        Account::open(&self.database(), &key).map_err(|e| match e {
            rankfile_core::Error::WrongDatabaseKey => CliError::WrongPassphrase(self.dir.clone()),
            other => other.into(),
        })
    }

    /// The saved relay, if any.
    pub fn saved_relay(&self) -> Result<Option<RelayConfig>> {
        let path = self.relay_path();
        match std::fs::read_to_string(&path) {
            Ok(text) => toml::from_str(&text)
                .map(Some)
                .map_err(|e| CliError::Other(format!("{} is damaged: {e}", path.display()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(CliError::io(format!("reading {}", path.display()))(e)),
        }
    }

    /// Saves the relay to use.
    pub fn save_relay(&self, relay: &RelayConfig) -> Result<()> {
        let text = toml::to_string(relay).map_err(|e| CliError::Other(e.to_string()))?;
        write_private(&self.relay_path(), text.as_bytes())
    }

    /// The relay for a networked command: flags over the saved configuration.
    pub fn relay(&self, opts: &RelayOpts) -> Result<RelayAddress> {
        let saved = self.saved_relay()?;
        let addr = opts
            .relay
            .or(saved.as_ref().map(|s| s.address))
            .ok_or(CliError::NoRelay)?;
        let fingerprint = opts
            .fingerprint
            .clone()
            .or(saved.map(|s| s.fingerprint))
            .ok_or(CliError::NoRelay)?;
        relay_address(addr, &fingerprint)
    }
}

/// A relay address from its parts, checking the fingerprint.
pub fn relay_address(addr: SocketAddr, fingerprint: &str) -> Result<RelayAddress> {
    let fingerprint = parse_fingerprint(fingerprint).ok_or_else(|| {
        CliError::Usage(
            "the relay fingerprint must be 64 hex digits (SHA-256), as the relay printed".into(),
        )
    })?;
    Ok(RelayAddress { addr, fingerprint })
}

fn make_private_dir(dir: &Path) -> Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder
        .create(dir)
        .map_err(CliError::io(format!("creating {}", dir.display())))
}

/// Writes a file readable by its owner only.
fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut f = options
        .open(path)
        .map_err(CliError::io(format!("writing {}", path.display())))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .map_err(CliError::io(format!("writing {}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_override_the_saved_relay() {
        let dir = tempfile::tempdir().expect("tempdir");
        let home = Home::resolve(Some(dir.path().to_path_buf())).expect("home");
        assert!(matches!(
            home.relay(&RelayOpts::default()),
            Err(CliError::NoRelay)
        ));
        let saved = RelayConfig {
            address: "127.0.0.1:7443".parse().expect("addr"),
            fingerprint: "ab".repeat(32),
        };
        home.save_relay(&saved).expect("save");
        assert_eq!(home.saved_relay().expect("read"), Some(saved));
        let r = home.relay(&RelayOpts::default()).expect("relay");
        assert_eq!(r.addr.port(), 7443);
        let r = home
            .relay(&RelayOpts {
                relay: Some("127.0.0.1:9".parse().expect("addr")),
                fingerprint: None,
            })
            .expect("relay");
        assert_eq!(r.addr.port(), 9);
        assert_eq!(r.fingerprint, [0xab; 32]);
    }

    #[test]
    fn a_bad_fingerprint_is_a_usage_error() {
        let addr = "127.0.0.1:1".parse().expect("addr");
        assert!(matches!(
            relay_address(addr, "xyz"),
            Err(CliError::Usage(_))
        ));
    }

    #[test]
    fn no_store_means_no_home() {
        let dir = tempfile::tempdir().expect("tempdir");
        let home = Home::resolve(Some(dir.path().join("none"))).expect("home");
        assert!(matches!(home.key("p"), Err(CliError::NoHome(_))));
    }
}
