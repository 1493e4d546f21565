//! The home directory: where one device's encrypted store lives, with its
//! unlock material — the salt and cost parameters that turn the passphrase
//! into its key, and the duress passphrase's verifier (`duress`) — and the
//! relay it uses (`relay.toml`). Opening a home maps the core's
//! `WrongDatabaseKey` to a plain "wrong passphrase", with nothing changed;
//! the duress passphrase wipes the home, then gets the very same answer.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use rankfile_core::transport::{parse_fingerprint, Client, RelayAddress};
use rankfile_core::DatabaseKey;
use serde::{Deserialize, Serialize};

use crate::cli::RelayOpts;
use crate::duress::Verifier;
use crate::error::{CliError, Result};
use crate::keyfile::{self, KdfParams, SALT_LEN};

/// The Argon2id salt (raw bytes).
const SALT: &str = "salt";
/// The Argon2id parameters.
const KDF: &str = "kdf.toml";
/// The duress passphrase's verifier (random when none is set).
const DURESS: &str = "duress";
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

/// A home directory (which may not exist yet), and where its passphrase
/// comes from.
#[derive(Debug, Clone)]
pub struct Home {
    dir: PathBuf,
    /// `--passphrase-file` / `RANKFILE_PASSPHRASE_FILE`, if given.
    passphrase_file: Option<PathBuf>,
}

impl Home {
    /// `--home`/`RANKFILE_HOME`, else `rankfile` under the user's data
    /// directory; its passphrase from `passphrase_file` when given.
    pub fn resolve(explicit: Option<PathBuf>, passphrase_file: Option<PathBuf>) -> Result<Home> {
        let dir = match explicit {
            Some(d) => d,
            None => dirs::data_dir()
                .map(|d| d.join("rankfile"))
                .ok_or_else(|| {
                    CliError::Usage("no user data directory here; pass --home DIR".into())
                })?,
        };
        Ok(Home {
            dir,
            passphrase_file,
        })
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The store's path.
    pub fn database(&self) -> PathBuf {
        Client::database_path(&self.dir)
    }

    /// The salt's path.
    pub fn salt_path(&self) -> PathBuf {
        self.dir.join(SALT)
    }

    /// The parameters' path.
    pub fn kdf_path(&self) -> PathBuf {
        self.dir.join(KDF)
    }

    /// The duress verifier's path.
    pub fn duress_path(&self) -> PathBuf {
        self.dir.join(DURESS)
    }

    /// The relay configuration's path.
    pub fn relay_path(&self) -> PathBuf {
        self.dir.join(RELAY)
    }

    /// What turns a passphrase into the store's key: without these files the
    /// store cannot be opened, so a wipe destroys them first.
    pub fn unlock_material(&self) -> [PathBuf; 3] {
        [self.salt_path(), self.kdf_path(), self.duress_path()]
    }

    /// Whether a store exists here.
    pub fn exists(&self) -> bool {
        self.database().exists()
    }

    /// Whether anything of a home is here: a store, or its unlock material
    /// (a home whose wipe was cut short still has something to wipe).
    pub fn has_anything(&self) -> bool {
        self.exists() || self.unlock_material().iter().any(|p| p.exists())
    }

    /// The passphrase, from the file, the environment or the terminal.
    pub fn passphrase(&self, confirm: bool) -> Result<zeroize::Zeroizing<String>> {
        keyfile::read_passphrase(self.passphrase_file.as_deref(), confirm)
    }

    /// Creates the home: salt, parameters, then the account in a new store,
    /// opened as a client connecting to `relay` (none with `None`); call
    /// inside a tokio runtime. On failure, removes what it made.
    pub fn create(&self, passphrase: &str, relay: Option<&RelayAddress>) -> Result<Client> {
        if self.exists() || self.salt_path().exists() {
            return Err(CliError::HomeExists(self.dir.clone()));
        }
        make_private_dir(&self.dir)?;
        let salt = keyfile::new_salt();
        let params = KdfParams::default();
        let made = (|| {
            write_private(&self.salt_path(), &salt)?;
            write_private(&self.kdf_path(), params.to_toml()?.as_bytes())?;
            Verifier::unset().save(&self.duress_path())?;
            let key = keyfile::derive_key(passphrase, &salt, &params)?;
            Ok(match relay {
                Some(r) => Client::open(&self.dir, &key, Some(r.clone()))?,
                None => Client::open_offline(&self.dir, &key)?,
            })
        })();
        if made.is_err() {
            for p in self.unlock_material() {
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

    /// Opens the account as a client, asking for the passphrase (or reading
    /// it from the file or the environment): connecting to `relay`, or to no
    /// relay with `None` (a command that only reads or changes the store).
    /// Call inside a tokio runtime. A wrong passphrase changes nothing; the
    /// duress passphrase wipes the home and is answered exactly as a wrong one.
    pub fn open(&self, relay: Option<&RelayAddress>) -> Result<Client> {
        self.open_keyed(relay).map(|(client, _key)| client)
    }

    /// [`Home::open`], also handing back the store's key.
    pub fn open_keyed(&self, relay: Option<&RelayAddress>) -> Result<(Client, DatabaseKey)> {
        if !self.exists() {
            return Err(CliError::NoHome(self.dir.clone()));
        }
        let passphrase = self.passphrase(false)?;
        // Read before the derivation, so both branches below cost the same.
        let verifier = Verifier::load(&self.duress_path())?;
        let key = self.key(&passphrase)?;
        drop(passphrase);
        // Checked on every unlock, before the store is touched: hashing and
        // comparing happen whether or not a duress passphrase is set.
        let duress = verifier
            .as_ref()
            .unwrap_or(&Verifier::unset())
            .matches(&key);
        if duress {
            drop(key);
            // Whatever the wipe manages, the answer is a wrong passphrase's.
            let _ = self.panic_wipe();
            return Err(CliError::WrongPassphrase(self.dir.clone()));
        }
        let opened = match relay {
            Some(r) => Client::open(&self.dir, &key, Some(r.clone())),
            None => Client::open_offline(&self.dir, &key),
        };
        let client = opened.map_err(|e| match e {
            rankfile_core::Error::WrongDatabaseKey => CliError::WrongPassphrase(self.dir.clone()),
            other => other.into(),
        })?;
        if verifier.is_none() {
            // A home from before duress passphrases: from now on it looks
            // like every other.
            Verifier::unset().save(&self.duress_path())?;
        }
        Ok((client, key))
    }

    /// Panic wipe, with no passphrase: the unlock material first, then the
    /// store (by the core, which needs no key), then the relay configuration,
    /// then the directory if nothing else is in it. Returns whether the
    /// directory went too.
    pub fn panic_wipe(&self) -> Result<bool> {
        let material = self.unlock_material();
        let material: Vec<&Path> = material.iter().map(PathBuf::as_path).collect();
        let wiped = rankfile_core::panic_wipe(&self.database(), &material);
        let relay = destroy(&self.relay_path());
        // Only if empty: never delete files we did not make.
        let removed_dir = std::fs::remove_dir(&self.dir).is_ok();
        wiped?;
        relay?;
        Ok(removed_dir)
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

/// Overwrites a small file with random bytes, syncs, and removes it.
fn destroy(path: &Path) -> Result<()> {
    use rand::RngCore;
    use std::io::Write;
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
        let home = Home::resolve(Some(dir.path().to_path_buf()), None).expect("home");
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
        let home = Home::resolve(Some(dir.path().join("none")), None).expect("home");
        assert!(matches!(home.key("p"), Err(CliError::NoHome(_))));
    }
}
