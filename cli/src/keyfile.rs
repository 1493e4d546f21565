//! The store key from a passphrase: Argon2id over the passphrase with a random
//! salt kept beside the database (`home/salt`) and the cost parameters kept
//! too (`home/kdf.toml`), so a later build with other defaults still opens an
//! old home. Neither the passphrase nor the key is ever written anywhere.

use std::io::IsTerminal;
use std::path::Path;

use argon2::{Algorithm, Argon2, Params, Version};
use rankfile_core::{DatabaseKey, DATABASE_KEY_LEN};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::error::{CliError, Result};

/// Bytes of random salt: 128 bits, so no two homes share a key derivation.
pub const SALT_LEN: usize = 16;
/// Memory per derivation, KiB (64 MiB: costly for a seized disk's attacker,
/// still well under a second on a laptop).
const DEFAULT_MEMORY_KIB: u32 = 64 * 1024;
/// Passes over the memory.
const DEFAULT_ITERATIONS: u32 = 3;
/// Lanes; one keeps it predictable on small machines.
const DEFAULT_PARALLELISM: u32 = 1;
/// Where scripts put the passphrase.
pub const PASSPHRASE_ENV: &str = "RANKFILE_PASSPHRASE";

/// Argon2id's cost parameters, as stored in `home/kdf.toml`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KdfParams {
    /// Always `argon2id`; the field lets a later version change it.
    pub algorithm: String,
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
}

impl Default for KdfParams {
    fn default() -> Self {
        KdfParams {
            algorithm: "argon2id".into(),
            memory_kib: DEFAULT_MEMORY_KIB,
            iterations: DEFAULT_ITERATIONS,
            parallelism: DEFAULT_PARALLELISM,
        }
    }
}

impl KdfParams {
    /// Reads the parameters file.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(CliError::io(format!(
            "reading the key-derivation parameters {}",
            path.display()
        )))?;
        let params: KdfParams = toml::from_str(&text).map_err(|e| {
            CliError::Other(format!(
                "the key-derivation parameters in {} are damaged: {e}",
                path.display()
            ))
        })?;
        if params.algorithm != "argon2id" {
            return Err(CliError::Other(format!(
                "unknown key derivation `{}` in {}",
                params.algorithm,
                path.display()
            )));
        }
        Ok(params)
    }

    /// The file's text.
    pub fn to_toml(&self) -> Result<String> {
        toml::to_string(self).map_err(|e| CliError::Other(e.to_string()))
    }
}

/// A fresh random salt.
pub fn new_salt() -> [u8; SALT_LEN] {
    let mut salt = [0u8; SALT_LEN];
    rand::Rng::fill(&mut rand::rng(), &mut salt);
    salt
}

/// Derives the 32-byte store key from `passphrase`.
pub fn derive_key(passphrase: &str, salt: &[u8], params: &KdfParams) -> Result<DatabaseKey> {
    let argon_params = Params::new(
        params.memory_kib,
        params.iterations,
        params.parallelism,
        Some(DATABASE_KEY_LEN),
    )
    .map_err(|e| CliError::Other(format!("bad key-derivation parameters: {e}")))?;
    let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, argon_params);
    // Written straight into the key: no other copy of it to wipe.
    DatabaseKey::fill(|key| {
        argon
            .hash_password_into(passphrase.as_bytes(), salt, key)
            .map_err(|e| CliError::Other(format!("key derivation failed: {e}")))
    })
}

/// Where a passphrase file is named (like `--passphrase-file`).
pub const PASSPHRASE_FILE_ENV: &str = "RANKFILE_PASSPHRASE_FILE";
/// The longest passphrase file read: a passphrase is one line, and a file
/// much larger is not one.
const MAX_PASSPHRASE_FILE: usize = 4096;

/// The passphrase: the first line of `file` (`--passphrase-file` or
/// `RANKFILE_PASSPHRASE_FILE`) when given, else `RANKFILE_PASSPHRASE`, else
/// asked for on the terminal without echo (twice when `confirm`, for a new
/// home).
pub fn read_passphrase(file: Option<&Path>, confirm: bool) -> Result<Zeroizing<String>> {
    if let Some(path) = file {
        return read_passphrase_file(path);
    }
    if let Ok(p) = std::env::var(PASSPHRASE_ENV) {
        let p = Zeroizing::new(p);
        if p.is_empty() {
            return Err(CliError::Usage(format!(
                "{PASSPHRASE_ENV} is set but empty"
            )));
        }
        return Ok(p);
    }
    prompt("Passphrase", confirm)
}

/// Asks for a passphrase on the terminal without echo, twice when `confirm`.
pub fn prompt(what: &str, confirm: bool) -> Result<Zeroizing<String>> {
    if !std::io::stdin().is_terminal() {
        return Err(CliError::Usage(format!(
            "no passphrase: pass --passphrase-file, set {PASSPHRASE_FILE_ENV} or {PASSPHRASE_ENV}, or run this in a terminal to be asked"
        )));
    }
    let first = Zeroizing::new(
        rpassword::prompt_password(format!("{what}: "))
            .map_err(CliError::io("reading the passphrase"))?,
    );
    if first.is_empty() {
        return Err(CliError::Usage("the passphrase must not be empty".into()));
    }
    if confirm {
        let again = Zeroizing::new(
            rpassword::prompt_password(format!("{what} again: "))
                .map_err(CliError::io("reading the passphrase"))?,
        );
        if *again != *first {
            return Err(CliError::Usage(
                "the two passphrases differ; nothing was changed".into(),
            ));
        }
    }
    Ok(first)
}

/// The first line of a passphrase file, its line ending stripped. The file
/// is read into one buffer allocated once and zeroized when dropped, so no
/// copy of its bytes is left behind in freed memory.
pub fn read_passphrase_file(path: &Path) -> Result<Zeroizing<String>> {
    use std::io::Read;
    let what = || format!("reading the passphrase file {}", path.display());
    let mut file = std::fs::File::open(path).map_err(CliError::io(what()))?;
    let mut buf = Zeroizing::new(vec![0u8; MAX_PASSPHRASE_FILE + 1]);
    let mut len = 0;
    loop {
        let n = file.read(&mut buf[len..]).map_err(CliError::io(what()))?;
        if n == 0 {
            break;
        }
        len += n;
        if len > MAX_PASSPHRASE_FILE {
            return Err(CliError::Usage(format!(
                "the passphrase file {} is over {MAX_PASSPHRASE_FILE} bytes: not a passphrase",
                path.display()
            )));
        }
    }
    let line = buf[..len].split(|&b| b == b'\n').next().unwrap_or_default();
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let text = std::str::from_utf8(line).map_err(|_| {
        CliError::Usage(format!(
            "the passphrase file {} is not UTF-8 text",
            path.display()
        ))
    })?;
    if text.is_empty() {
        return Err(CliError::Usage(format!(
            "the passphrase file {} starts with an empty line",
            path.display()
        )));
    }
    Ok(Zeroizing::new(text.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cheap() -> KdfParams {
        KdfParams {
            memory_kib: 256,
            iterations: 1,
            ..KdfParams::default()
        }
    }

    #[test]
    fn same_inputs_same_key_and_salt_matters() {
        let salt = [7u8; SALT_LEN];
        let a = derive_key("correct horse", &salt, &cheap()).expect("derive");
        let b = derive_key("correct horse", &salt, &cheap()).expect("derive");
        let c = derive_key("correct horse", &[8u8; SALT_LEN], &cheap()).expect("derive");
        let d = derive_key("wrong horse", &salt, &cheap()).expect("derive");
        assert_eq!(a.expose_for_keystore(), b.expose_for_keystore());
        assert_ne!(a.expose_for_keystore(), c.expose_for_keystore());
        assert_ne!(a.expose_for_keystore(), d.expose_for_keystore());
    }

    #[test]
    fn params_round_trip_and_refuse_other_algorithms() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("kdf.toml");
        std::fs::write(&path, KdfParams::default().to_toml().expect("toml")).expect("write");
        assert_eq!(KdfParams::load(&path).expect("load"), KdfParams::default());
        std::fs::write(
            &path,
            "algorithm = \"md5\"\nmemory_kib = 1\niterations = 1\nparallelism = 1\n",
        )
        .expect("write");
        assert!(KdfParams::load(&path).is_err());
    }

    #[test]
    fn a_passphrase_file_gives_its_first_line_without_the_line_ending() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("pass");
        for (content, want) in [
            (&b"correct horse\n"[..], "correct horse"),
            (b"correct horse\r\nsecond line\n", "correct horse"),
            (b"no newline at all", "no newline at all"),
            (b" spaces kept \n", " spaces kept "),
        ] {
            std::fs::write(&path, content).expect("write");
            assert_eq!(read_passphrase_file(&path).expect("read").as_str(), want);
        }
        for bad in [&b""[..], b"\nafter an empty line", b"\xff\xfe\n"] {
            std::fs::write(&path, bad).expect("write");
            assert!(matches!(
                read_passphrase_file(&path),
                Err(CliError::Usage(_))
            ));
        }
        std::fs::write(&path, vec![b'a'; MAX_PASSPHRASE_FILE + 1]).expect("write");
        assert!(matches!(
            read_passphrase_file(&path),
            Err(CliError::Usage(_))
        ));
        assert!(matches!(
            read_passphrase_file(&dir.path().join("none")),
            Err(CliError::Io { .. })
        ));
    }

    #[test]
    fn salts_differ() {
        assert_ne!(new_salt(), new_salt());
    }
}
