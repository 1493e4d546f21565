//! A committee change reaches every member, or is retried: over real stores
//! with the envelopes handed over by hand — a member that missed a removal
//! asks for it, a change survives a crash right after its commit, a change a
//! member could not be sent goes once a session opens, a sender key counts
//! as held only once the relay has it, and a stranger's entries leave no rows.

use crate::account::Account;
use crate::account_id::AccountId;
use crate::alert::tests::{committee, deliver};
use crate::committee::{ChannelKind, CommitteeMeta, Op, Role};
use crate::message::Body;
use crate::send::OutgoingEnvelope;
use crate::store::DatabaseKey;

fn account(dir: &tempfile::TempDir, name: &str) -> Account {
    Account::create(
        &dir.path().join(format!("{name}.db")),
        &DatabaseKey::generate(),
    )
    .expect("account")
}

/// What `from` has in its outbox for `to`, oldest first.
fn waiting_for(from: &Account, to: &AccountId) -> Vec<OutgoingEnvelope> {
    from.outbox()
        .expect("outbox")
        .into_iter()
        .filter(|e| e.recipient == *to)
        .collect()
}

fn entry_rows(a: &Account) -> i64 {
    a.store
        .conn()
        .query_row("SELECT count(*) FROM committee_entries", [], |r| r.get(0))
        .expect("count")
}

/// The organizer removes m2; m1 never gets that entry (its copy was lost),
/// then gets two later changes built on it. m1 holds them waiting, asks the
/// organizer for what it lacks, and once answered folds the removal: its
/// next post goes to nobody removed. Before, m1 kept the two changes waiting
/// for ever and went on posting (and sending sender keys) to m2.
#[test]
fn a_member_who_missed_a_removal_asks_for_it_and_stops_sending_to_the_removed() {
    let dir = tempfile::tempdir().expect("dir");
    let (mut organizer, mut m1, mut m2, id) = committee(&dir);
    let (channel, made) = organizer
        .create_channel(&id, ChannelKind::Discussion)
        .expect("channel");
    deliver(&mut m1, &made.sent);
    deliver(&mut m2, &made.sent);
    let removal = organizer.remove_member(&id, &m2.id()).expect("removes m2");
    // m1's copy of the removal is lost; m2 gets its own.
    deliver(&mut m2, &removal.sent);
    let mut later = Vec::new();
    later.extend(
        organizer
            .rename(
                &id,
                CommitteeMeta {
                    name: "Bakery, night shift".into(),
                    ..CommitteeMeta::default()
                },
            )
            .expect("renames")
            .sent,
    );
    later.extend(
        organizer
            .create_channel(&id, ChannelKind::Announcement)
            .expect("channel")
            .1
            .sent,
    );
    let asked_before = waiting_for(&m1, &organizer.id()).len();
    deliver(&mut m1, &later);
    assert!(
        m1.committee(&id)
            .expect("state")
            .members
            .contains_key(&m2.id()),
        "m1 cannot fold the later changes without the removal"
    );
    // m1 asked the organizer, who sent them, for what it lacks.
    let asks: Vec<_> = waiting_for(&m1, &organizer.id())
        .into_iter()
        .skip(asked_before)
        .collect();
    assert_eq!(asks.len(), 1, "one request");
    let answer_from = waiting_for(&organizer, &m1.id()).len();
    deliver(&mut organizer, &asks);
    let answers: Vec<_> = waiting_for(&organizer, &m1.id())
        .into_iter()
        .skip(answer_from)
        .collect();
    assert_eq!(answers.len(), 1, "one answer");
    deliver(&mut m1, &answers);
    let state = m1.committee(&id).expect("state");
    assert!(!state.members.contains_key(&m2.id()));
    assert_eq!(state.meta.name, "Bakery, night shift");
    assert_eq!(state.channels.len(), 2);
    assert_eq!(m1.committee_entries(&id).expect("entries").len(), 7);
    // Caught up, m1 asks no more, and posts to the organizer alone.
    assert_eq!(m1.ask_for_missing_entries().expect("asks"), 0);
    let (_, recipients, keys) = m1.prepare_post(&id, &channel).expect("post");
    assert_eq!(recipients, vec![organizer.id()]);
    assert!(keys.iter().all(|k| k.recipient != m2.id()));
}

/// A removed member who asks is not answered: it learns nothing made after
/// its removal.
#[test]
fn a_removed_member_is_not_answered() {
    let dir = tempfile::tempdir().expect("dir");
    let (mut organizer, _m1, mut m2, id) = committee(&dir);
    organizer.remove_member(&id, &m2.id()).expect("removes m2");
    let heads = m2.logs.get(m2.store.conn(), &id).expect("log").heads();
    let ask = m2
        .send_body(
            &organizer.id(),
            &Body::CommitteeEntriesRequest {
                committee_id: id,
                heads,
                missing: Vec::new(),
            },
        )
        .expect("asks");
    let before = waiting_for(&organizer, &m2.id()).len();
    assert!(organizer.receive(&ask.bytes).is_err());
    assert_eq!(waiting_for(&organizer, &m2.id()).len(), before);
}

/// Set in the child process: the directory of the stores, and the
/// organizer's key, in hex.
const CRASH_DIR: &str = "RANKFILE_CRASH_TEST_DIR";
const CRASH_KEY: &str = "RANKFILE_CRASH_TEST_KEY";

/// The organizer's device dies right after a change commits. The entries
/// owed to every member committed with it: when it starts again they are in
/// the outbox and reach the members. Before, they were sent member by member
/// after the commit, and a crash there meant nobody ever got the change.
#[test]
fn a_change_survives_a_crash_right_after_its_commit() {
    if let (Some(dir), Some(key)) = (std::env::var_os(CRASH_DIR), std::env::var_os(CRASH_KEY)) {
        // The child: opens the organizer's store and removes m2; the
        // failpoint ends the process right after the commit.
        let key = hex::decode(key.to_string_lossy().as_bytes()).expect("key");
        let key = DatabaseKey::from_slice(&key).expect("key");
        let path = std::path::Path::new(&dir).join("o.db");
        let mut organizer = Account::open(&path, &key).expect("opens");
        let id = organizer.committees().expect("list")[0];
        let members: Vec<AccountId> = organizer
            .committee(&id)
            .expect("state")
            .members
            .keys()
            .copied()
            .collect();
        let m2 = members
            .iter()
            .find(|m| **m != organizer.id())
            .copied()
            .expect("a member");
        let _ = organizer.remove_member(&id, &m2);
        panic!("the failpoint did not fire");
    }
    let dir = tempfile::tempdir().expect("dir");
    let key = DatabaseKey::generate();
    let mut organizer = Account::create(&dir.path().join("o.db"), &key).expect("organizer");
    let (mut m1, mut m2) = (account(&dir, "m1"), account(&dir, "m2"));
    for m in [&mut m1, &mut m2] {
        let bundle = m.prekey_bundle().expect("bundle");
        organizer.add_contact("", &bundle).expect("contact");
    }
    let id = organizer
        .create_committee(CommitteeMeta {
            name: "Bakery".into(),
            ..CommitteeMeta::default()
        })
        .expect("founds");
    for m in [m1.id(), m2.id()] {
        let sent = organizer
            .add_member(&id, &m, Role::Member)
            .expect("adds")
            .sent;
        deliver(&mut m1, &sent);
        deliver(&mut m2, &sent);
    }
    let confirmed: Vec<_> = organizer
        .outbox()
        .expect("outbox")
        .iter()
        .map(|e| e.envelope_id)
        .collect();
    organizer.confirm_sent_all(&confirmed).expect("confirmed");
    drop(organizer);
    let exe = std::env::current_exe().expect("test binary");
    let out = std::process::Command::new(exe)
        .args([
            "--exact",
            "committee_delivery_tests::a_change_survives_a_crash_right_after_its_commit",
            "--test-threads=1",
        ])
        .env(CRASH_DIR, dir.path())
        .env(CRASH_KEY, hex::encode(key.expose_for_keystore()))
        .env("RANKFILE_FAILPOINT", "committee_change_committed")
        .output()
        .expect("child runs");
    assert!(!out.status.success(), "the child died at the failpoint");
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("the failpoint did not fire"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let mut organizer = Account::open(&dir.path().join("o.db"), &key).expect("reopens");
    let removed = if organizer
        .committee(&id)
        .expect("state")
        .members
        .contains_key(&m1.id())
    {
        m2.id()
    } else {
        m1.id()
    };
    assert!(!organizer
        .committee(&id)
        .expect("state")
        .members
        .contains_key(&removed));
    let owed = organizer.outbox().expect("outbox");
    assert_eq!(owed.len(), 2, "the removal, to each member before it");
    for m in [&mut m1, &mut m2] {
        deliver(m, &owed);
        assert!(!m
            .committee(&id)
            .expect("state")
            .members
            .contains_key(&removed));
    }
}

/// A change made by an organizer that has no session with a member yet (a
/// member another organizer added) is owed to them, and goes, once, when a
/// session opens.
#[test]
fn a_change_a_member_could_not_be_sent_goes_once_a_session_opens() {
    let dir = tempfile::tempdir().expect("dir");
    let (mut organizer, mut m1, _m2, id) = committee(&dir);
    // m1 becomes an organizer and adds y, whom the founder has never met.
    let promote = organizer
        .change_role(&id, &m1.id(), Role::Organizer)
        .expect("promotes m1");
    deliver(&mut m1, &promote.sent);
    let mut y = account(&dir, "y");
    let bundle = y.prekey_bundle().expect("bundle");
    m1.add_contact("y", &bundle).expect("contact");
    let added = m1.add_member(&id, &y.id(), Role::Member).expect("adds y");
    deliver(&mut organizer, &added.sent);
    deliver(&mut y, &added.sent);
    assert!(organizer
        .committee(&id)
        .expect("state")
        .members
        .contains_key(&y.id()));
    let rename = organizer
        .rename(
            &id,
            CommitteeMeta {
                name: "Bakery and dispatch".into(),
                ..CommitteeMeta::default()
            },
        )
        .expect("renames");
    assert_eq!(rename.unreachable, vec![y.id()]);
    assert!(organizer.send_owed_entries().expect("owed").is_empty());
    // A session with y opens (the transport fetched y's bundle).
    let member = organizer
        .members_to_greet(true)
        .expect("members")
        .into_iter()
        .find(|m| m.account == y.id())
        .expect("y to greet");
    let greeting = organizer
        .greet_member(&member, &y.prekey_bundle().expect("bundle"))
        .expect("greets");
    let owed = organizer.send_owed_entries().expect("owed");
    assert_eq!(owed.len(), 1);
    assert_eq!(owed[0].sent.len(), 1);
    deliver(&mut y, &greeting.into_iter().collect::<Vec<_>>());
    deliver(&mut y, &owed[0].sent);
    assert_eq!(
        y.committee(&id).expect("state").meta.name,
        "Bakery and dispatch"
    );
    // Sent once: nothing is owed any more.
    assert!(organizer.send_owed_entries().expect("owed").is_empty());
}

/// A member counts as holding a sender key once the relay has the envelope
/// carrying it: refused for good, the key goes again before the next post.
#[test]
fn a_sender_key_counts_as_held_only_once_the_relay_has_it() {
    let dir = tempfile::tempdir().expect("dir");
    let (mut organizer, mut m1, mut m2, id) = committee(&dir);
    let (channel, made) = organizer
        .create_channel(&id, ChannelKind::Discussion)
        .expect("channel");
    deliver(&mut m1, &made.sent);
    deliver(&mut m2, &made.sent);
    let (_, _, keys) = organizer.prepare_post(&id, &channel).expect("post");
    assert_eq!(keys.len(), 2);
    // Still on its way: not sent twice.
    let (_, _, again) = organizer.prepare_post(&id, &channel).expect("post");
    assert!(again.is_empty());
    // The relay takes m1's and refuses m2's for good.
    let (to_m1, to_m2): (Vec<_>, Vec<_>) = keys.iter().partition(|k| k.recipient == m1.id());
    organizer
        .confirm_sent_all(&[to_m1[0].envelope_id])
        .expect("confirmed");
    organizer
        .refused_sent_all(&[to_m2[0].envelope_id])
        .expect("refused");
    let (_, _, resent) = organizer.prepare_post(&id, &channel).expect("post");
    assert_eq!(resent.len(), 1);
    assert_eq!(resent[0].recipient, m2.id());
}

/// A change sent right after a member's welcome can reach it first (the
/// relay keeps no order between envelopes sent together): it waits, and is
/// folded once the welcome arrives. Before, it was refused for want of a
/// genesis and the member never had the channel.
#[test]
fn a_change_that_overtakes_the_welcome_waits_for_it() {
    let dir = tempfile::tempdir().expect("dir");
    let mut organizer = account(&dir, "o");
    let mut m1 = account(&dir, "m1");
    let bundle = m1.prekey_bundle().expect("bundle");
    organizer.add_contact("", &bundle).expect("contact");
    let id = organizer
        .create_committee(CommitteeMeta {
            name: "Depot".into(),
            ..CommitteeMeta::default()
        })
        .expect("found");
    let welcome = organizer
        .add_member(&id, &m1.id(), Role::Member)
        .expect("add");
    let (channel, made) = organizer
        .create_channel(&id, ChannelKind::Discussion)
        .expect("channel");
    assert!(made.sent.iter().any(|e| e.recipient == m1.id()));
    let early = deliver(&mut m1, &made.sent);
    assert!(early
        .iter()
        .all(|r| *r == crate::receive::Received::Waiting));
    assert!(m1.committee(&id).is_err());
    deliver(&mut m1, &welcome.sent);
    let state = m1.committee(&id).expect("state");
    assert!(state.channels.contains_key(&channel));
    assert_eq!(state.members.len(), 2);
}

/// Someone who was never a member, with a session to a member, sends it
/// entries of its own making against the committee's real heads: refused,
/// and not one row of them is stored.
#[test]
fn a_stranger_s_entries_leave_no_rows() {
    let dir = tempfile::tempdir().expect("dir");
    let (mut organizer, mut m1, _m2, id) = committee(&dir);
    let mut stranger = account(&dir, "stranger");
    let bundle = m1.prekey_bundle().expect("bundle");
    stranger.add_contact("m1", &bundle).expect("contact");
    let hello = stranger.send_text(&m1.id(), "hi").expect("hello");
    m1.receive(&hello.bytes).expect("receives");
    // Entries the stranger makes against the heads, as if it held the log.
    let heads = organizer
        .logs
        .get(organizer.store.conn(), &id)
        .expect("log")
        .heads();
    let forge = |op: Op| {
        let entry = crate::committee::Entry {
            committee_id: id,
            parents: heads.clone(),
            author: stranger.id(),
            created_at_ms: 1,
            op,
        };
        crate::committee::SignedEntry::sign(&stranger.me.key_pair, &entry).expect("signs")
    };
    let forged = vec![
        forge(Op::Leave),
        forge(Op::Remove {
            account: organizer.id(),
        }),
    ];
    let rows = entry_rows(&m1);
    let update = stranger
        .send_body(
            &m1.id(),
            &Body::CommitteeUpdate {
                committee_id: id,
                entries: forged,
                access_keys: Vec::new(),
            },
        )
        .expect("sends");
    assert!(m1.receive(&update.bytes).is_err());
    assert_eq!(entry_rows(&m1), rows);
    assert!(m1.committee(&id).expect("state").members.len() == 3);
}
