//! Shared support for the end-to-end scenarios in `tests/tests/`: simulated
//! phones, each an [`Account`] over its own encrypted store in a temporary
//! directory.

use std::ops::{Deref, DerefMut};
use std::path::{Path, PathBuf};

use rankfile_core::{Account, AccountId, DatabaseKey};

/// A simulated phone: an account, its database path and its key. Derefs to
/// its [`Account`].
pub struct Phone {
    pub name: String,
    account: Option<Account>,
    pub path: PathBuf,
    pub key: DatabaseKey,
}

impl Deref for Phone {
    type Target = Account;
    fn deref(&self) -> &Account {
        self.account.as_ref().expect("the phone's account is open")
    }
}

impl DerefMut for Phone {
    fn deref_mut(&mut self) -> &mut Account {
        self.account.as_mut().expect("the phone's account is open")
    }
}

impl Phone {
    /// Creates a new account in `dir`.
    pub fn new(dir: &Path, name: &str) -> Phone {
        let path = dir.join(format!("{name}.db"));
        let key = DatabaseKey::generate();
        let account = Account::create(&path, &key).expect("create account");
        Phone {
            name: name.to_string(),
            account: Some(account),
            path,
            key,
        }
    }

    /// This phone's account ID.
    pub fn id(&self) -> AccountId {
        Deref::deref(self).id()
    }

    /// Closes and reopens the store, as after an app restart.
    pub fn reopen(&mut self) {
        drop(self.account.take());
        self.account = Some(Account::open(&self.path, &self.key).expect("reopen"));
    }

    /// Takes the account out, closing nothing (for a wipe).
    pub fn into_account(mut self) -> Account {
        self.account.take().expect("the phone's account is open")
    }

    /// Every file of this phone's store: database, WAL and shared memory.
    pub fn files(&self) -> Vec<PathBuf> {
        ["", "-wal", "-shm"]
            .iter()
            .map(|s| {
                let mut p = self.path.clone().into_os_string();
                p.push(s);
                PathBuf::from(p)
            })
            .filter(|p| p.exists())
            .collect()
    }

    /// The raw bytes of every file of the store, concatenated.
    pub fn raw_bytes(&self) -> Vec<u8> {
        self.files()
            .iter()
            .flat_map(|p| std::fs::read(p).expect("read store file"))
            .collect()
    }
}

/// `a` adds `b` as a contact from `b`'s bundle, opening a session.
pub fn introduce(a: &mut Phone, b: &mut Phone) {
    let bundle = b.prekey_bundle().expect("bundle");
    let name = b.name.clone();
    a.add_contact(&name, &bundle).expect("add contact");
}

/// Whether `needle` occurs in `haystack`.
pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}
