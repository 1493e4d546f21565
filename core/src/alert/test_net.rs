//! A small network of phones for the alert tests: real accounts over real
//! stores sharing one movable clock, envelopes taken from each outbox and
//! handed to their recipients by hand. Two committees, A (organizer `oa`,
//! member `ma`) and B (organizer `ob`, delegate `d2`, member `mb`), linked
//! through council K: `oa` is A's delegate to it, `ob` and `d2` are B's.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use super::{AlertDraft, AlertKind, AlertScope};
use crate::account::{Account, AccountOptions};
use crate::account_id::AccountId;
use crate::clock::Clock;
use crate::committee::{CommitteeId, CommitteeMeta, LinkPolicy, Role};
use crate::error::Result;
use crate::receive::Received;
use crate::send::OutgoingEnvelope;
use crate::store::DatabaseKey;

pub(crate) struct Net {
    _dir: tempfile::TempDir,
    pub phones: BTreeMap<&'static str, Account>,
    /// Added to every phone's clock.
    pub offset: Arc<AtomicI64>,
    pub a: CommitteeId,
    pub b: CommitteeId,
    pub k: CommitteeId,
}

/// What one delivery did: who got it, and how it went.
pub(crate) type Outcome = (AccountId, Result<Received>);

impl Net {
    /// The network of the module's documentation, every change delivered.
    pub fn new() -> Net {
        Self::with_policy(LinkPolicy::Forward)
    }

    /// [`Net::new`], alerts from the council entering B by `policy`.
    pub fn with_policy(policy: LinkPolicy) -> Net {
        let dir = tempfile::tempdir().expect("tempdir");
        let offset = Arc::new(AtomicI64::new(0));
        let options = AccountOptions::default().with_clock(Clock::shifted(offset.clone()));
        let mut phones = BTreeMap::new();
        for name in ["oa", "ma", "ob", "d2", "mb"] {
            let path = dir.path().join(format!("{name}.db"));
            let account =
                Account::create_with(&path, &DatabaseKey::generate(), &options).expect("account");
            phones.insert(name, account);
        }
        let mut net = Net {
            _dir: dir,
            phones,
            offset,
            a: CommitteeId([0; 16]),
            b: CommitteeId([0; 16]),
            k: CommitteeId([0; 16]),
        };
        for (from, to) in [
            ("oa", "ma"),
            ("ob", "d2"),
            ("ob", "mb"),
            ("d2", "mb"),
            ("oa", "ob"),
            ("oa", "d2"),
        ] {
            net.introduce(from, to);
        }
        net.a = net.committee("oa", "A", &[("ma", Role::Member)]);
        net.b = net.committee("ob", "B", &[("d2", Role::Delegate), ("mb", Role::Member)]);
        // oa proposes the link to ob, who accepts with its two delegates.
        let (ob, d2) = (net.id("ob"), net.id("d2"));
        let (a, b, oa) = (net.a, net.b, net.id("oa"));
        let (proposal, _) = net
            .phone("oa")
            .propose_link(&a, &ob, b, &[oa], LinkPolicy::Forward, "K")
            .expect("propose");
        net.settle();
        let (k, _) = net
            .phone("ob")
            .accept_link(&proposal, &[ob, d2], policy)
            .expect("accept");
        net.settle();
        for name in ["oa", "ob", "d2"] {
            let links = net.phone(name).committee(&k).expect("council").links;
            assert_eq!(links.len(), 2, "{name} holds the council's links");
        }
        net.k = k;
        net
    }

    pub fn phone(&mut self, name: &str) -> &mut Account {
        self.phones.get_mut(name).expect("a phone of the net")
    }

    pub fn id(&self, name: &str) -> AccountId {
        self.phones[name].id()
    }

    /// `from` opens a session with `to` from its bundle.
    fn introduce(&mut self, from: &str, to: &str) {
        let bundle = self.phone(to).prekey_bundle().expect("bundle");
        self.phone(from).add_contact(to, &bundle).expect("contact");
    }

    /// `organizer` founds a committee and adds `members` with their roles.
    fn committee(&mut self, organizer: &str, name: &str, members: &[(&str, Role)]) -> CommitteeId {
        let meta = CommitteeMeta {
            name: name.into(),
            ..CommitteeMeta::default()
        };
        let id = self.phone(organizer).create_committee(meta).expect("found");
        for (member, role) in members {
            let m = self.id(member);
            self.phone(organizer)
                .add_member(&id, &m, *role)
                .expect("add");
            self.settle();
        }
        id
    }

    /// Takes what waits in `name`'s outbox, as if the relay had it.
    pub fn take(&mut self, name: &str) -> Vec<OutgoingEnvelope> {
        let phone = self.phone(name);
        let out = phone.outbox().expect("outbox");
        let ids: Vec<_> = out.iter().map(|e| e.envelope_id).collect();
        phone.confirm_sent_all(&ids).expect("confirm");
        out
    }

    /// Hands each envelope to its recipient.
    pub fn deliver(&mut self, sent: &[OutgoingEnvelope]) -> Vec<Outcome> {
        let mut out = Vec::new();
        for e in sent {
            let Some(to) = self.phones.values_mut().find(|p| p.id() == e.recipient) else {
                continue;
            };
            let r = if e.sealed {
                to.receive_sealed(&e.bytes)
            } else {
                to.receive(&e.bytes)
            };
            out.push((e.recipient, r));
        }
        out
    }

    /// Delivers everything every phone has queued, and what that sets off,
    /// until nothing waits; returns every delivery's outcome.
    pub fn settle(&mut self) -> Vec<Outcome> {
        let mut outcomes = Vec::new();
        loop {
            let names: Vec<&'static str> = self.phones.keys().copied().collect();
            let mut sent = Vec::new();
            for name in names {
                sent.extend(self.take(name));
            }
            if sent.is_empty() {
                return outcomes;
            }
            outcomes.extend(self.deliver(&sent));
        }
    }

    /// Moves every phone's clock forward.
    pub fn pass_ms(&self, ms: i64) {
        self.offset.fetch_add(ms, Ordering::SeqCst);
    }

    /// Runs every phone's alert upkeep; returns the messages it queued.
    pub fn upkeep(&mut self) -> usize {
        self.phones
            .values_mut()
            .map(|p| p.alert_upkeep().expect("upkeep").sent)
            .sum()
    }

    /// `oa` raises [`network_draft`] in `committee`; nothing delivered yet.
    pub fn raise(&mut self, committee: CommitteeId) -> super::AlertId {
        let draft = network_draft(self);
        let (id, _) = self
            .phone("oa")
            .send_alert(&committee, draft)
            .expect("raise");
        id
    }

    /// Now, by the phones' clock.
    pub fn now_ms(&self) -> i64 {
        self.phones["oa"].clock.now_ms()
    }
}

/// A network alert asking for answers, expiring in an hour by `net`'s clock.
pub(crate) fn network_draft(net: &Net) -> AlertDraft {
    AlertDraft {
        kind: AlertKind::EmergencyMeeting,
        scope: AlertScope::Network,
        title: "Emergency meeting".into(),
        text: "Layoffs announced. Meet now.".into(),
        place: "Union hall".into(),
        starts_at_ms: 0,
        expires_at_ms: u64::try_from(net.now_ms() + 3_600_000).expect("clock"),
        answers_wanted: true,
    }
}
