//! Tests of link proposals carrying the proposer's delegates' access keys:
//! the wire form both ways, older proposals without keys, malformed keys
//! refused, and the keys learnt only by an organizer who accepts.

use libsignal_protocol::IdentityKeyPair;
use prost::Message as _;
use rankfile_proto::v1 as pb;

use crate::account_id::AccountId;
use crate::committee::{CommitteeId, LinkPolicy};
use crate::error::Error;
use crate::link::LinkProposal;
use crate::settings::ACCESS_KEY_LEN;

fn proposal(delegates: usize, keys: &[usize]) -> LinkProposal {
    let delegates: Vec<_> = (0..delegates)
        .map(|_| {
            let pair = IdentityKeyPair::generate(&mut rand::rng());
            (
                AccountId::from_identity_key(pair.identity_key()),
                *pair.identity_key(),
            )
        })
        .collect();
    let access_keys = keys
        .iter()
        .map(|i| (delegates[*i].0, [*i as u8 + 1; ACCESS_KEY_LEN]))
        .collect();
    LinkProposal {
        proposal_id: [3; crate::link::PROPOSAL_ID_LEN],
        committee_id: CommitteeId([1; 16]),
        target: CommitteeId([2; 16]),
        delegates,
        policy: LinkPolicy::Forward,
        council_name: "Depots".into(),
        access_keys,
    }
}

fn round_trip(p: &LinkProposal) -> crate::error::Result<LinkProposal> {
    let bytes = p.to_wire().encode_to_vec();
    LinkProposal::from_wire(pb::LinkProposal::decode(bytes.as_slice()).expect("decode"))
}

#[test]
fn delegate_access_keys_travel_with_the_proposal_in_delegate_order() {
    for keys in [&[0, 1, 2][..], &[2, 0], &[1], &[]] {
        let p = proposal(3, keys);
        let back = round_trip(&p).expect("parse");
        let mut expected = p.access_keys.clone();
        expected.sort_by_key(|(a, _)| p.delegates.iter().position(|(d, _)| d == a));
        assert_eq!(back.access_keys, expected, "{keys:?}");
        assert_eq!(back.delegates, p.delegates);
    }
}

/// A proposal from a version without the field parses, with no keys: its
/// delegates are reached identified until their keys arrive.
#[test]
fn a_proposal_without_access_keys_still_parses() {
    let p = proposal(2, &[0, 1]);
    let mut wire = p.to_wire();
    wire.delegate_access_keys.clear();
    let back = LinkProposal::from_wire(wire).expect("parse");
    assert!(back.access_keys.is_empty());
    assert_eq!(back.delegates, p.delegates);
}

#[test]
fn malformed_access_keys_are_refused() {
    let p = proposal(2, &[0, 1]);
    let mut fewer = p.to_wire();
    fewer.delegate_access_keys.pop();
    let mut short = p.to_wire();
    short.delegate_access_keys[1] = vec![7; ACCESS_KEY_LEN - 1];
    let mut long = p.to_wire();
    long.delegate_access_keys[0] = vec![7; ACCESS_KEY_LEN + 1];
    let mut more = p.to_wire();
    more.delegate_access_keys.push(vec![7; ACCESS_KEY_LEN]);
    for wire in [fewer, short, long, more] {
        assert!(matches!(
            LinkProposal::from_wire(wire),
            Err(Error::InvalidContent(_))
        ));
    }
}
