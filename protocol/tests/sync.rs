//! Sync sessions between in-memory replicas: pairs, a township relaying to the county,
//! scope, authority, revocation, forgery and sessions cut at every message.

mod common;

use common::mesh::*;
use guihe_protocol::cert::{CertError, RevocationBody, Revoked, Role};
use guihe_protocol::ingest::commit_local;
use guihe_protocol::record::{Command, Record};
use guihe_protocol::store::Store;
use guihe_protocol::sync::{Config, Session, SessionError};
use guihe_protocol::wire::Message;
use rand_core::SeedableRng;

const V1: &str = "500240101201";
const V2: &str = "500240101202";
const V3: &str = "500240102201";
const T1: &str = "500240101000";
const COUNTY: &str = "500240000000";

#[test]
fn disjoint_and_overlapping_histories_converge() {
    let mut county = County::new(1);
    let mut village = county.node(Role::Village, V1);
    let mut township = county.node(Role::Township, T1);
    let a = county.case(&mut village, &[V1], 3);
    let b = county.case(&mut township, &[V1], 2);
    sync(&county, &mut village, &mut township).unwrap();
    assert!(same(&village, &township, a) && same(&village, &township, b));

    // Both now work on both records, apart, and meet again.
    county.work(&mut village, b);
    county.work(&mut township, a);
    county.work(&mut township, b);
    let c = county.case(&mut village, &[V1], 1);
    let run = sync(&county, &mut township, &mut village).unwrap();
    for id in [a, b, c] {
        assert!(same(&village, &township, id), "{id} differs");
    }
    assert!(run.round_trips() <= 4, "{run:?}");
    // Views agree too.
    let va = village.record(b).unwrap().view(&county.rules).unwrap();
    let vb = township.record(b).unwrap().view(&county.rules).unwrap();
    assert_eq!(va, vb);
}

#[test]
fn township_relays_a_village_to_the_county_which_verifies_the_village_signatures() {
    let mut county = County::new(2);
    let mut village = county.node(Role::Village, V1);
    let mut township = county.node(Role::Township, T1);
    let mut top = county.node(Role::County, COUNTY);
    let id = county.case(&mut village, &[V1], 4);
    sync(&county, &mut village, &mut township).unwrap();
    sync(&county, &mut township, &mut top).unwrap();
    assert!(same(&village, &top, id));
    // Every change at the county is the village's, signed by the village, and the county
    // learnt the village's certificate from the township.
    let doc = top.store.doc(id).unwrap().unwrap();
    for change in doc.get_changes(&[]) {
        let stored = top.store.change(&change.hash()).unwrap().unwrap();
        assert_eq!(stored.signer, village.identity.key.public());
    }
    assert_eq!(
        top.store
            .certificates_of(&village.identity.key.public())
            .unwrap(),
        vec![village.identity.cert.clone()]
    );
}

#[test]
fn village_never_receives_or_hears_of_another_villages_records() {
    let mut county = County::new(3);
    let mut v1 = county.node(Role::Village, V1);
    let mut v3 = county.node(Role::Village, V3);
    let mut top = county.node(Role::County, COUNTY);
    let own = county.case(&mut v1, &[V1], 2);
    let other = county.case(&mut v3, &[V3], 2);
    sync(&county, &mut v3, &mut top).unwrap();
    // The county holds the other village's record; a session with v1 must not carry it,
    // nor announce its keys: the reconciliation runs over v1's scope only.
    let run = sync(&county, &mut v1, &mut top).unwrap();
    assert!(same(&v1, &top, own));
    assert!(v1.store.doc(other).unwrap().is_none());
    assert_eq!(v1.store.records().unwrap(), vec![own]);
    assert_eq!(
        run.b.changes_out, 0,
        "the county sent v1 nothing: v1 already had all of its own"
    );

    // Directly between two villages, nothing at all is in scope.
    let run = sync(&county, &mut v1, &mut v3).unwrap();
    assert_eq!(run.a.changes_out + run.b.changes_out, 0);
    assert!(v3.store.doc(own).unwrap().is_none());
}

#[test]
fn a_cross_village_case_reaches_both_villages() {
    let mut county = County::new(4);
    let mut township = county.node(Role::Township, T1);
    let mut v1 = county.node(Role::Village, V1);
    let mut v2 = county.node(Role::Village, V2);
    let id = county.case(&mut township, &[V1, V2], 3);
    sync(&county, &mut v1, &mut township).unwrap();
    sync(&county, &mut v2, &mut township).unwrap();
    assert!(same(&v1, &township, id) && same(&v2, &township, id));
}

#[test]
fn a_village_may_not_write_a_record_that_reaches_beyond_it() {
    let mut county = County::new(5);
    let mut township = county.node(Role::Township, T1);
    let mut v1 = county.node(Role::Village, V1);
    let id = county.case(&mut township, &[V1, V2], 1);
    sync(&county, &mut v1, &mut township).unwrap();
    // v1 can read the cross-village case, but may not write it: its replica refuses...
    let err = v1
        .apply(
            id,
            county.now_ms + 60_000,
            &mut county.rng,
            &county.rules.clone(),
            note(),
        )
        .unwrap_err();
    assert!(err.to_string().contains("may not write"), "{err}");
    // ...and a change a modified build makes to it anyway is refused upstream and kept
    // aside; the session goes on.
    let made = county.forged_work(&mut v1, id);
    sync(&county, &mut v1, &mut township).unwrap();
    assert!(!township.store.has_change(&made[0].hash).unwrap());
    let refused = township.store.quarantined().unwrap();
    assert_eq!(refused.len(), 1);
    assert_eq!(refused[0].code, "not_authorised");
    assert_eq!(refused[0].signer, v1.identity.key.public());
}

#[test]
fn an_observer_cannot_write() {
    let mut county = County::new(6);
    let mut observer = county.node(Role::Observer, T1);
    let mut township = county.node(Role::Township, T1);
    // The observer's replica refuses to write; a modified build's record is refused
    // upstream.
    let new = guihe_protocol::workload::new_record(
        &mut county.rng,
        guihe_protocol::model::Kind::Case,
        &[V1.parse().unwrap()],
    );
    let rules = county.rules.clone();
    let err = observer
        .create(county.now_ms, &mut county.rng, &rules, new)
        .unwrap_err();
    assert!(err.to_string().contains("may not write"), "{err}");
    county.forged_case(&mut observer, &[V1]);
    sync(&county, &mut observer, &mut township).unwrap();
    // Nothing but the township's own quarantine report, which names the refusal.
    let records = township.store.records().unwrap();
    assert!(records.iter().all(|r| r.is_owned()), "{records:?}");
    assert_eq!(
        township.store.quarantined().unwrap()[0].code,
        "not_authorised"
    );
}

#[test]
fn a_node_of_another_root_gets_nothing() {
    let mut county = County::new(7);
    let mut township = county.node(Role::Township, T1);
    county.case(&mut township, &[V1], 2);
    let mut elsewhere = County::new(99);
    let mut stranger = elsewhere.node(Role::County, COUNTY);
    let err = sync(&county, &mut stranger, &mut township).unwrap_err();
    assert_eq!(err, SessionError::Certificate(CertError::UnknownRoot));
    assert!(stranger.store.records().unwrap().is_empty());
}

#[test]
fn a_revoked_node_is_refused_at_hello_and_its_later_changes_everywhere() {
    let mut county = County::new(8);
    let mut village = county.node(Role::Village, V1);
    let mut township = county.node(Role::Township, T1);
    let mut top = county.node(Role::County, COUNTY);
    let id = county.case(&mut village, &[V1], 1);
    sync(&county, &mut village, &mut township).unwrap();

    // The village PC is stolen. The county revokes it from now on; the list reaches the
    // township at their next contact.
    let revoked_from = county.now_ms + 1;
    let list = county
        .root
        .revocations(RevocationBody {
            version: 1,
            revoked: vec![Revoked {
                serial: village.identity.cert.body.serial,
                node: village.identity.key.public(),
                from_ms: revoked_from,
            }],
        })
        .unwrap();
    top.store.put_revocations(&list).unwrap();
    sync(&county, &mut township, &mut top).unwrap();
    assert_eq!(township.store.revocations().unwrap(), Some(list.clone()));

    // Later changes of the thief's copy: refused at hello by the township...
    county.now_ms = revoked_from + 60_000;
    let later = county.work(&mut village, id);
    let err = sync(&county, &mut village, &mut township).unwrap_err();
    assert!(
        matches!(err, SessionError::Certificate(CertError::Revoked { .. })),
        "{err}"
    );
    // ...and refused by anyone a copy of them reaches, even carried by an honest node.
    // The change is refused and kept aside; the carrier's session goes on.
    let mut carrier = county.node(Role::Township, T1);
    carrier.store = village.store.clone();
    carrier.store.put_revocations(&list).unwrap();
    sync(&county, &mut carrier, &mut top).unwrap();
    assert!(!top.store.has_change(&later[0].hash).unwrap());
    let refused = top.store.quarantined().unwrap();
    assert_eq!(refused.len(), 1);
    assert_eq!(refused[0].code, "revoked");
    assert_eq!(refused[0].change_hash(), later[0].hash);
    // What the village recorded before the theft stays valid.
    assert!(same(&township, &top, id));
}

#[test]
fn a_forged_or_altered_change_is_refused_and_nothing_of_its_batch_is_stored() {
    let mut county = County::new(9);
    let mut village = county.node(Role::Village, V1);
    let mut township = county.node(Role::Township, T1);
    let id = county.case(&mut village, &[V1], 3);
    let root = county.root.public();

    // Build the batch the village would send, then alter one change's bytes and re-frame.
    let mut record = village.record(id).unwrap();
    let before = record.heads();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
    record
        .apply(
            &mut village
                .writer
                .ctx(county.now_ms + 1, &mut rng, &county.rules),
            Command::EditSummary {
                text: "篡改后的摘要".into(),
                reason: "伪造".into(),
            },
        )
        .unwrap();
    let mut honest = village.store.clone();
    let forged = commit_local(&mut honest, &village.identity.key, &record, &before).unwrap();
    let mut all: Vec<_> = village
        .store
        .doc(id)
        .unwrap()
        .unwrap()
        .get_changes(&[])
        .iter()
        .map(|c| village.store.change(&c.hash()).unwrap().unwrap().signed)
        .collect();
    let mut altered = forged[0].signed.clone();
    let last = altered.bytes.len() - 1;
    altered.bytes[last] ^= 0x01;
    all.push(altered);

    let mut sb = Session::new(
        Config::default(),
        root,
        township.identity.clone(),
        false,
        &township.store,
    )
    .unwrap();
    let hello = Message::Hello {
        version: guihe_protocol::wire::PROTOCOL_VERSION,
        cert: village.identity.cert.clone(),
        revocations: 0,
    };
    sb.handle(&hello.encode().unwrap(), &mut township.store, county.now_ms)
        .unwrap();
    let batch = Message::Changes {
        batch: 0,
        certs: vec![village.identity.cert.clone()],
        changes: all,
    };
    let err = sb
        .handle(&batch.encode().unwrap(), &mut township.store, county.now_ms)
        .unwrap_err();
    assert!(matches!(err, SessionError::Change(_)), "{err}");
    assert!(
        township.store.records().unwrap().is_empty(),
        "nothing of the batch was stored"
    );
    assert_eq!(township.store.change_count(), 0);

    // A change signed by someone else's key, claiming to be the village's, is refused too.
    let mut impostor = forged[0].signed.clone();
    impostor.signature = township.identity.key.sign(b"anything");
    let mut sb = Session::new(
        Config::default(),
        root,
        township.identity.clone(),
        false,
        &township.store,
    )
    .unwrap();
    sb.handle(&hello.encode().unwrap(), &mut township.store, county.now_ms)
        .unwrap();
    let batch = Message::Changes {
        batch: 0,
        certs: vec![],
        changes: vec![impostor],
    };
    assert!(
        sb.handle(&batch.encode().unwrap(), &mut township.store, county.now_ms)
            .is_err()
    );
    assert_eq!(township.store.change_count(), 0);
}

#[test]
fn a_session_cut_at_every_message_resumes_and_converges() {
    let mut base = County::new(10);
    let mut village = base.node(Role::Village, V1);
    let mut township = base.node(Role::Township, T1);
    let ids: Vec<_> = (0..3).map(|_| base.case(&mut village, &[V1], 4)).collect();
    let t = base.case(&mut township, &[V1], 3);
    // How many messages does an uncut session deliver?
    let total = {
        let (mut a, mut b) = (clone(&village), clone(&township));
        sync(&base, &mut a, &mut b).unwrap().delivered
    };
    assert!(total > 4);
    for cut in 0..=total {
        let (mut a, mut b) = (clone(&village), clone(&township));
        sync_limited(&base, &mut a, &mut b, cut).unwrap();
        sync(&base, &mut a, &mut b).unwrap();
        for id in ids.iter().chain([&t]) {
            assert!(same(&a, &b, *id), "cut after {cut} messages: {id} differs");
        }
    }
}

#[test]
fn changes_that_arrive_before_their_dependencies_wait_and_apply_later() {
    let mut county = County::new(12);
    let mut village = county.node(Role::Village, V1);
    let mut township = county.node(Role::Township, T1);
    let id = county.case(&mut village, &[V1], 3);
    let doc = village.store.doc(id).unwrap().unwrap();
    let mut changes: Vec<_> = doc
        .get_changes(&[])
        .iter()
        .map(|c| village.store.change(&c.hash()).unwrap().unwrap())
        .collect();
    changes.reverse();
    let verified: Vec<_> = changes
        .into_iter()
        .map(|c| {
            township
                .store
                .put_certificate(&village.identity.cert)
                .unwrap();
            guihe_protocol::signed::verify_change(
                c.signed,
                &guihe_protocol::store::StoreCerts(&township.store),
                &Default::default(),
            )
            .unwrap()
        })
        .collect();
    // Deliver the newest first, one at a time: each waits until the first arrives.
    let n = verified.len();
    for (i, v) in verified.into_iter().enumerate() {
        guihe_protocol::ingest::ingest(&mut township.store, vec![Ok(v)], county.now_ms).unwrap();
        if i + 1 < n {
            assert_eq!(township.store.pending(id).unwrap().len(), i + 1);
        }
    }
    assert!(township.store.pending(id).unwrap().is_empty());
    assert!(same(&village, &township, id));
    assert!(Record::from_doc(township.store.doc(id).unwrap().unwrap()).is_ok());
}

fn clone(n: &Node) -> Node {
    guihe_protocol::replica::Replica {
        identity: n.identity.clone(),
        store: n.store.clone(),
        writer: n.writer.clone(),
        last_write_ms: n.last_write_ms,
    }
}

#[test]
fn a_second_contact_reconciles_only_the_tail_since_the_watermark() {
    let mut county = County::new(13);
    let mut village = county.node(Role::Village, V1);
    let mut township = county.node(Role::Township, T1);
    let ids: Vec<_> = (0..50)
        .map(|_| county.case(&mut village, &[V1], 1))
        .collect();
    let first = sync(&county, &mut village, &mut township).unwrap();
    assert!(
        village
            .store
            .watermark(&township.identity.key.public())
            .unwrap()
            .is_some()
    );
    let id = ids[7];
    county.work(&mut village, id);
    let second = sync(&county, &mut village, &mut township).unwrap();
    assert!(same(&village, &township, id));
    assert!(second.bytes() < first.bytes(), "{second:?} vs {first:?}");
}

#[test]
fn a_change_that_arrives_below_the_watermark_is_still_found() {
    let mut county = County::new(14);
    let mut village = county.node(Role::Village, V1);
    let mut township = county.node(Role::Township, T1);
    let mut top = county.node(Role::County, COUNTY);
    let id = county.case(&mut village, &[V1], 2);
    // A change made at the county with an old time, which the village has not seen.
    sync(&county, &mut township, &mut top).unwrap();
    sync(&county, &mut village, &mut top).unwrap();
    let early = county.now_ms;
    county.now_ms += 3_600_000;
    county.work(&mut village, id);
    sync(&county, &mut village, &mut township).unwrap();
    let saved = county.now_ms;
    county.now_ms = early;
    county.work(&mut top, id);
    county.now_ms = saved;
    // The township gets the county's change now; the village's watermark with the
    // township lies after that change's time, so only the full fallback can find it.
    sync(&county, &mut township, &mut top).unwrap();
    sync(&county, &mut village, &mut township).unwrap();
    assert!(same(&village, &township, id) && same(&township, &top, id));
}

#[test]
fn new_changes_are_pushed_live_while_connected() {
    let mut county = County::new(15);
    let mut village = county.node(Role::Village, V1);
    let mut township = county.node(Role::Township, T1);
    let id = county.case(&mut village, &[V1], 1);
    let mut link = Link::open(&county, &village, &township);
    link.settle(&county, &mut village, &mut township);
    assert!(link.a.is_reconciled());
    assert!(same(&village, &township, id));

    // A new record and a new event at the village go up on the open session, in one flight
    // each way (the batch and its acknowledgement), without reconciling again.
    let fresh = county.case(&mut village, &[V1], 0);
    let mut changes = county.work(&mut village, id);
    changes.extend(
        village
            .store
            .doc(fresh)
            .unwrap()
            .unwrap()
            .get_changes(&[])
            .iter()
            .map(|c| village.store.change(&c.hash()).unwrap().unwrap()),
    );
    link.a.offer(&changes, &village.store).unwrap();
    let flights = link.settle(&county, &mut village, &mut township);
    assert_eq!(flights, 2);
    assert!(same(&village, &township, id) && same(&village, &township, fresh));
    // Offering the same changes again sends nothing.
    link.a.offer(&changes, &village.store).unwrap();
    assert!(link.a.poll_transmit().is_none());
}

#[test]
fn a_node_whose_certificate_has_expired_or_is_not_yet_valid_gets_nothing() {
    use guihe_protocol::cert::{Identity, Keypair};
    use guihe_protocol::replica::Replica;
    use guihe_protocol::store::MemStore;
    let mut county = County::new(11);
    let mut township = county.node(Role::Township, T1);
    county.case(&mut township, &[V1], 2);
    // A village certificate valid for one day only, from the day after T0.
    let day = 86_400_000;
    let key = Keypair::generate(&mut county.rng);
    let cert = county
        .root
        .issue(guihe_protocol::cert::CertBody {
            serial: 900,
            node: key.public(),
            role: Role::Village,
            division: V1.parse().unwrap(),
            not_before_ms: common::T0 + day,
            not_after_ms: common::T0 + 2 * day,
        })
        .unwrap();
    let mut village = Replica::new(
        Identity { key, cert },
        MemStore::new(),
        "worker".parse().unwrap(),
        1,
    );
    for now in [common::T0, common::T0 + 3 * day] {
        county.now_ms = now;
        let err = sync(&county, &mut village, &mut township).unwrap_err();
        assert!(
            matches!(err, SessionError::Certificate(CertError::Expired { .. })),
            "{err:?}"
        );
        assert!(village.store.records().unwrap().is_empty());
    }
    // Inside its window the same village is served.
    county.now_ms = common::T0 + day + 1;
    sync(&county, &mut village, &mut township).unwrap();
    assert_eq!(village.store.records().unwrap().len(), 1);
}

#[test]
fn a_want_for_an_unknown_hash_and_for_an_out_of_scope_hash_get_the_same_answer() {
    let mut county = County::new(41);
    let v1 = county.node(Role::Village, V1);
    let mut v3 = county.node(Role::Village, V3);
    let mut top = county.node(Role::County, COUNTY);
    let other = county.case(&mut v3, &[V3], 1);
    sync(&county, &mut v3, &mut top).unwrap();
    let outside = top.store.doc(other).unwrap().unwrap().get_heads()[0];
    let answer = |hash: [u8; 32], top: &mut Node| {
        let mut session = Session::new(
            Config::default(),
            county.root.public(),
            top.identity.clone(),
            false,
            &top.store,
        )
        .unwrap();
        let hello = Message::Hello {
            version: guihe_protocol::wire::PROTOCOL_VERSION,
            cert: v1.identity.cert.clone(),
            revocations: 0,
        };
        session
            .handle(&hello.encode().unwrap(), &mut top.store, county.now_ms)
            .unwrap();
        while session.poll_transmit().is_some() {}
        session
            .handle(
                &Message::Want(vec![hash]).encode().unwrap(),
                &mut top.store,
                county.now_ms,
            )
            .unwrap();
        std::iter::from_fn(|| session.poll_transmit()).collect::<Vec<_>>()
    };
    let unknown = answer([0x5a; 32], &mut top);
    let out_of_scope = answer(outside.0, &mut top);
    assert!(unknown.is_empty());
    assert_eq!(unknown, out_of_scope);
}

#[test]
fn the_dialling_side_sends_nothing_from_its_store_to_a_peer_whose_key_is_not_its_certificates() {
    let mut county = County::new(42);
    let mut village = county.node(Role::Village, V1);
    let township = county.node(Role::Township, T1);
    let impostor = county.node(Role::Village, V2);
    county.case(&mut village, &[V1], 2);
    // The village dials what should be its township; the transport authenticated the
    // township's key, but the peer presents another node's certificate.
    let mut session = Session::new(
        Config::default(),
        county.root.public(),
        village.identity.clone(),
        true,
        &village.store,
    )
    .unwrap()
    .expecting(township.identity.key.public(), &village.store);
    let hello = |cert| Message::Hello {
        version: guihe_protocol::wire::PROTOCOL_VERSION,
        cert,
        revocations: 0,
    };
    while session.poll_transmit().is_some() {}
    let err = session
        .handle(
            &hello(impostor.identity.cert.clone()).encode().unwrap(),
            &mut village.store,
            county.now_ms,
        )
        .unwrap_err();
    assert_eq!(err, SessionError::Impostor);
    assert!(
        session.poll_transmit().is_none(),
        "nothing derived from the store"
    );
    assert!(session.peer().is_none());
    // The right certificate: reconciliation starts at once.
    let mut session = Session::new(
        Config::default(),
        county.root.public(),
        village.identity.clone(),
        true,
        &village.store,
    )
    .unwrap()
    .expecting(township.identity.key.public(), &village.store);
    while session.poll_transmit().is_some() {}
    session
        .handle(
            &hello(township.identity.cert.clone()).encode().unwrap(),
            &mut village.store,
            county.now_ms,
        )
        .unwrap();
    assert!(session.poll_transmit().is_some());
}

#[test]
fn a_renewed_node_whose_newest_certificate_is_revoked_gets_nothing_with_its_older_one() {
    let mut county = County::new(43);
    let mut village = county.node(Role::Village, V1);
    let mut township = county.node(Role::Township, T1);
    let id = county.case(&mut township, &[V1], 1);
    // The village was renewed: a second certificate for the same key, which is then
    // reported stolen and revoked.
    let old = village.identity.cert.clone();
    county.serial += 1;
    let renewed = county
        .root
        .issue(guihe_protocol::cert::CertBody {
            serial: county.serial,
            ..old.body.clone()
        })
        .unwrap();
    let list = county
        .root
        .revocations(RevocationBody {
            version: 1,
            revoked: vec![Revoked {
                serial: renewed.body.serial,
                node: renewed.node(),
                from_ms: county.now_ms - 1,
            }],
        })
        .unwrap();
    township.store.put_revocations(&list).unwrap();
    // The thief presents the older, unrevoked certificate: refused at hello all the same.
    village.identity.cert = old;
    let err = sync(&county, &mut village, &mut township).unwrap_err();
    assert!(
        matches!(err, SessionError::Certificate(CertError::Revoked { .. })),
        "{err}"
    );
    assert!(village.store.doc(id).unwrap().is_none());
}

/// A stolen village PC, revoked with a frontier, writes with its clock set back: through an
/// honest carrier its changes are refused at the county, while what the county held before
/// stands. With the revocation's time alone as the cut-off they would have been accepted.
#[test]
fn a_revoked_nodes_backdated_changes_are_refused_through_a_carrier_and_directly() {
    use guihe_protocol::cert::{CertError, FrontierBody};
    let mut county = County::new(44);
    let mut village = county.node(Role::Village, V1);
    let mut township = county.node(Role::Township, T1);
    let mut top = county.node(Role::County, COUNTY);
    let id = county.case(&mut village, &[V1], 2);
    sync(&county, &mut village, &mut township).unwrap();
    sync(&county, &mut township, &mut top).unwrap();
    // Stolen. The county revokes the key from now, with the frontier of what it holds.
    let revoked_from = county.now_ms + 1;
    let list = county
        .root
        .revocations(RevocationBody {
            version: 1,
            revoked: vec![Revoked {
                serial: village.identity.cert.body.serial,
                node: village.identity.key.public(),
                from_ms: revoked_from,
            }],
        })
        .unwrap();
    let body: FrontierBody =
        guihe_protocol::revoke::frontier(&top.store, 1, &[village.identity.key.public()]).unwrap();
    assert_eq!(body.keys[0].records.len(), 1);
    let frontier = county.root.frontier(body).unwrap();
    top.store.put_revocations(&list).unwrap();
    top.store.put_frontier(&frontier).unwrap();
    // The thief sets the clock back to before the revocation and writes: more on the
    // record the county holds, and a new record.
    county.now_ms = revoked_from - 150_000;
    let later = county.work(&mut village, id);
    let fresh = county.case(&mut village, &[V1], 0);
    assert!(later[0].time_ms < revoked_from);
    assert!(
        village
            .store
            .change(&village.store.doc(fresh).unwrap().unwrap().get_heads()[0])
            .unwrap()
            .unwrap()
            .time_ms
            < revoked_from
    );
    // Directly: the key is refused at hello.
    county.now_ms = revoked_from + 60_000;
    let err = sync(&county, &mut village, &mut top).unwrap_err();
    assert!(
        matches!(err, SessionError::Certificate(CertError::Revoked { .. })),
        "{err}"
    );
    // Through an honest carrier that took the thief's changes before it heard of the
    // revocation: the county refuses both and keeps them aside.
    let mut carrier = county.node(Role::Township, T1);
    carrier.store = village.store.clone();
    sync(&county, &mut carrier, &mut top).unwrap();
    assert!(!top.store.has_change(&later[0].hash).unwrap());
    assert!(top.store.doc(fresh).unwrap().is_none());
    let kept = top.store.quarantined().unwrap();
    assert_eq!(kept.len(), 2, "{kept:?}");
    assert!(kept.iter().all(|q| q.code == "revoked"));
    // The carrier learnt the frontier from the county (protocol version 2).
    assert_eq!(carrier.store.frontier().unwrap(), Some(frontier));
    // What the office recorded before the theft stands.
    assert!(same(&township, &top, id));

    // Without the frontier, the revocation's time was the cut-off, and the backdated
    // changes passed: the hole the frontier closes.
    let mut old_county = county.node(Role::County, COUNTY);
    sync(&county, &mut township, &mut old_county).unwrap();
    old_county.store.put_revocations(&list).unwrap();
    let mut carrier = county.node(Role::Township, T1);
    carrier.store = village.store.clone();
    sync(&county, &mut carrier, &mut old_county).unwrap();
    assert!(old_county.store.has_change(&later[0].hash).unwrap());
}

/// A session speaking protocol version 1 (a peer not yet upgraded) syncs as before: no
/// greeting, no frontier, and the records converge.
#[test]
fn a_session_speaking_version_1_syncs_with_a_peer_not_upgraded() {
    let mut county = County::new(45);
    let mut village = county.node(Role::Village, V1);
    let mut township = county.node(Role::Township, T1);
    let a = county.case(&mut village, &[V1], 3);
    let b = county.case(&mut township, &[V1], 2);
    let root = county.root.public();
    let mut link = Link::speaking(&county, &village, &township, 1);
    link.settle(&county, &mut village, &mut township);
    assert!(same(&village, &township, a) && same(&village, &township, b));
    assert_eq!(link.a.skew_ms(), None, "no greeting in version 1");
    // A version 2 session meeting a version 1 hello refuses it: the transport must agree
    // the version first.
    let mut v2 = Session::new(
        Config::default(),
        root,
        township.identity.clone(),
        false,
        &township.store,
    )
    .unwrap();
    let hello = Message::Hello {
        version: 1,
        cert: village.identity.cert.clone(),
        revocations: 0,
    };
    assert_eq!(
        v2.handle(&hello.encode().unwrap(), &mut township.store, county.now_ms),
        Err(SessionError::Version(1))
    );
}

#[test]
fn a_node_whose_clock_is_before_its_certificate_or_its_last_entry_refuses_to_write() {
    use guihe_protocol::record::CommandError;
    use guihe_protocol::replica::ReplicaError;
    let mut county = County::new(46);
    let mut village = county.node(Role::Village, V1);
    let new = |county: &mut County| {
        guihe_protocol::workload::new_record(
            &mut county.rng,
            guihe_protocol::model::Kind::Case,
            &[V1.parse().unwrap()],
        )
    };
    // A PC whose date reset to before its certificate was issued.
    let before = village.identity.cert.body.not_before_ms - 86_400_000;
    let n = new(&mut county);
    let err = village
        .create(before, &mut county.rng, &county.rules, n)
        .unwrap_err();
    assert!(
        matches!(
            err,
            ReplicaError::Command(CommandError::ClockOutsideCertificate { .. })
        ),
        "{err}"
    );
    assert!(err.to_string().contains("请校正电脑的日期和时间"), "{err}");
    assert!(
        village.store.records().unwrap().is_empty(),
        "nothing written"
    );
    // A clock set back a day after an entry: refused too, until the operator accepts it.
    county.now_ms += 5 * 86_400_000;
    let id = county.case(&mut village, &[V1], 0);
    let n = new(&mut county);
    let err = village
        .create(
            county.now_ms - 86_400_000,
            &mut county.rng,
            &county.rules,
            n,
        )
        .unwrap_err();
    assert!(
        matches!(err, ReplicaError::Command(CommandError::ClockBehind { .. })),
        "{err}"
    );
    // A few minutes back is within the tolerance.
    let n = new(&mut county);
    village
        .create(county.now_ms - 60_000, &mut county.rng, &county.rules, n)
        .unwrap();
    let _ = id;
}

#[test]
fn a_change_stamped_far_ahead_is_held_never_applied_early_nor_relayed() {
    let mut county = County::new(47);
    let mut village = county.node(Role::Village, V1);
    let mut township = county.node(Role::Township, T1);
    let mut top = county.node(Role::County, COUNTY);
    // The village PC's clock is 300 days fast.
    let now = county.now_ms;
    county.now_ms = now + 300 * 86_400_000;
    let ahead = county.case(&mut village, &[V1], 1);
    county.now_ms = now;
    let honest = {
        let mut other = county.node(Role::Village, V1);
        county.case(&mut other, &[V1], 0);
        other
    };
    let _ = honest;
    sync(&county, &mut village, &mut township).unwrap();
    assert!(
        township.store.doc(ahead).unwrap().is_none(),
        "not applied early"
    );
    assert_eq!(township.store.held().unwrap().len(), 2);
    assert!(
        township.store.quarantined().unwrap().is_empty(),
        "not refused for good"
    );
    // Not relayed: the county gets nothing of it from the township.
    sync(&county, &mut township, &mut top).unwrap();
    assert!(top.store.doc(ahead).unwrap().is_none());
    assert!(top.store.held().unwrap().is_empty());
    // Its time comes: it is verified and applied, and then passed on.
    let later = now + 300 * 86_400_000;
    let ingested = guihe_protocol::ingest::retry_held(&mut township.store, later).unwrap();
    assert_eq!(ingested.applied.len(), 2);
    assert!(township.store.held().unwrap().is_empty());
    assert!(same(&village, &township, ahead));
    let mut late = county;
    late.now_ms = later;
    sync(&late, &mut township, &mut top).unwrap();
    assert!(same(&village, &top, ahead));
}

/// A township that took a stolen PC's backdated entries before it heard of the revocation
/// keeps them (others may build on them), and the frontier, when it arrives, names their
/// record for review; the county, which revoked with the frontier, refuses them.
#[test]
fn entries_taken_before_the_frontier_arrived_put_their_record_up_for_review() {
    let mut county = County::new(48);
    let mut village = county.node(Role::Village, V1);
    let mut township = county.node(Role::Township, T1);
    let mut top = county.node(Role::County, COUNTY);
    let id = county.case(&mut village, &[V1], 1);
    let other = county.case(&mut village, &[V1], 1);
    sync(&county, &mut village, &mut township).unwrap();
    sync(&county, &mut township, &mut top).unwrap();
    let revoked_from = county.now_ms + 1;
    let list = county
        .root
        .revocations(RevocationBody {
            version: 1,
            revoked: vec![Revoked {
                serial: village.identity.cert.body.serial,
                node: village.identity.key.public(),
                from_ms: revoked_from,
            }],
        })
        .unwrap();
    let body =
        guihe_protocol::revoke::frontier(&top.store, 1, &[village.identity.key.public()]).unwrap();
    let frontier = county.root.frontier(body).unwrap();
    top.store.put_revocations(&list).unwrap();
    top.store.put_frontier(&frontier).unwrap();
    // The thief, clock set back, reaches the township before the list does.
    county.now_ms = revoked_from - 90_000;
    let later = county.work(&mut village, id);
    sync(&county, &mut village, &mut township).unwrap();
    assert!(township.store.has_change(&later[0].hash).unwrap());
    // The township hears of it from the county: the record is up for review there.
    county.now_ms = revoked_from + 60_000;
    sync(&county, &mut township, &mut top).unwrap();
    let held = township.store.frontier().unwrap().unwrap();
    assert_eq!(
        guihe_protocol::revoke::beyond_frontier(&township.store, &held.body).unwrap(),
        vec![id]
    );
    let mut view = township.record(id).unwrap().view(&county.rules).unwrap();
    view.flag_revoked_entries();
    assert!(view.common().needs_review && view.common().revoked_entries);
    // The county refused the entry the township carried; the other record is untouched.
    assert!(!top.store.has_change(&later[0].hash).unwrap());
    assert!(same(&township, &top, other));
}

/// A change of a revoked key that was verified and left waiting before the frontier
/// arrived is held against the frontier when its dependency comes, not applied.
#[test]
fn a_waiting_change_of_a_revoked_key_meets_the_frontier_that_came_after_it() {
    use guihe_protocol::ingest::ingest;
    use guihe_protocol::signed::verify_batch;
    use guihe_protocol::store::StoreCerts;
    let mut county = County::new(49);
    let mut village = county.node(Role::Village, V1);
    let mut township = county.node(Role::Township, T1);
    let mut top = county.node(Role::County, COUNTY);
    let id = county.case(&mut village, &[V1], 0);
    let d = county.work(&mut village, id).remove(0);
    sync(&county, &mut village, &mut top).unwrap();
    // The county revokes with a frontier that holds D; the thief then writes E after D.
    let revoked_from = county.now_ms + 1;
    let list = county
        .root
        .revocations(RevocationBody {
            version: 1,
            revoked: vec![Revoked {
                serial: village.identity.cert.body.serial,
                node: village.identity.key.public(),
                from_ms: revoked_from,
            }],
        })
        .unwrap();
    let body =
        guihe_protocol::revoke::frontier(&top.store, 1, &[village.identity.key.public()]).unwrap();
    let frontier = county.root.frontier(body).unwrap();
    county.now_ms = revoked_from - 50_000;
    let e = county.work(&mut village, id).remove(0);
    // The township gets the record's first change, then E (waiting for D), before it
    // hears of the revocation.
    let first = village
        .store
        .doc(id)
        .unwrap()
        .unwrap()
        .get_changes(&[])
        .first()
        .map(|c| village.store.change(&c.hash()).unwrap().unwrap())
        .unwrap();
    township
        .store
        .put_certificate(&village.identity.cert)
        .unwrap();
    for batch in [vec![first], vec![e.clone()]] {
        let checked = verify_batch(
            batch.into_iter().map(|c| c.signed).collect(),
            &StoreCerts(&township.store),
            &township.store.revocation_state().unwrap(),
        )
        .unwrap();
        ingest(&mut township.store, checked, county.now_ms).unwrap();
    }
    assert_eq!(
        township.store.pending(id).unwrap().len(),
        1,
        "E waits for D"
    );
    // The list and frontier arrive; then D: D is within the frontier, E beyond it.
    township.store.put_revocations(&list).unwrap();
    township.store.put_frontier(&frontier).unwrap();
    let checked = verify_batch(
        vec![d.signed.clone()],
        &StoreCerts(&township.store),
        &township.store.revocation_state().unwrap(),
    )
    .unwrap();
    let done = ingest(&mut township.store, checked, revoked_from + 60_000).unwrap();
    assert_eq!(done.applied.len(), 1, "D applies");
    assert!(!township.store.has_change(&e.hash).unwrap(), "E does not");
    assert_eq!(done.quarantined[0].code, "revoked");
}

/// The county's settings (which record schema nodes may write) travel by sync to every
/// node, a newer version replacing an older one and never the reverse; a node writes the
/// newest schema it knows that they allow; settings not signed by the county end the
/// session; a peer of protocol version 2 is not sent them.
#[test]
fn county_settings_reach_every_node_and_gate_the_schema_it_writes() {
    use automerge::ReadDoc;
    use guihe_protocol::cert::{Keypair, Root, SettingsBody};
    let mut county = County::new(91);
    let mut village = county.node(Role::Village, V1);
    let mut township = county.node(Role::Township, T1);
    let mut top = county.node(Role::County, COUNTY);
    let settings = |county: &County, version: u64, record_schema: u64| {
        county
            .root
            .settings(SettingsBody {
                version,
                record_schema,
                issued_ms: county.now_ms,
            })
            .unwrap()
    };
    top.store.put_settings(&settings(&county, 1, 1)).unwrap();

    // Version 2 sessions carry no settings.
    let mut link = Link::speaking(&county, &township, &top, 2);
    link.settle(&county, &mut township, &mut top);
    assert!(township.store.settings().unwrap().is_none());

    sync(&county, &mut township, &mut top).unwrap();
    sync(&county, &mut village, &mut township).unwrap();
    assert_eq!(village.store.settings().unwrap().unwrap().body.version, 1);

    // Newer settings allow a schema newer than this build knows: it writes its own newest.
    top.store.put_settings(&settings(&county, 2, 9)).unwrap();
    sync(&county, &mut township, &mut top).unwrap();
    sync(&county, &mut village, &mut township).unwrap();
    assert_eq!(village.store.settings().unwrap().unwrap().body.version, 2);
    let id = county.case(&mut village, &[V1], 0);
    let doc = village.store.doc(id).unwrap().unwrap();
    let schema = match doc.get(automerge::ROOT, "schema").unwrap() {
        Some((automerge::Value::Scalar(s), _)) => s.as_u64(),
        other => panic!("{other:?}"),
    };
    assert_eq!(schema, Some(guihe_protocol::record::SCHEMA_VERSION));

    // Older settings do not replace newer ones.
    village
        .store
        .put_settings(&settings(&county, 1, 1))
        .unwrap();
    sync(&county, &mut village, &mut township).unwrap();
    assert_eq!(village.store.settings().unwrap().unwrap().body.version, 2);
    assert_eq!(township.store.settings().unwrap().unwrap().body.version, 2);

    // Settings of another root end the session.
    let other = Root::new(Keypair::from_secret([42; 32]));
    let forged = other
        .settings(SettingsBody {
            version: 3,
            record_schema: 1,
            issued_ms: county.now_ms,
        })
        .unwrap();
    let mut link = Link::open(&county, &village, &township);
    link.settle(&county, &mut village, &mut township);
    let result = link.b.handle(
        &Message::Settings(forged).encode().unwrap(),
        &mut township.store,
        county.now_ms,
    );
    assert!(
        matches!(result, Err(SessionError::Certificate(_))),
        "{result:?}"
    );
    assert_eq!(township.store.settings().unwrap().unwrap().body.version, 2);
}

/// A second certificate for `node`'s key (a renewal), which it presents from now on.
fn renew(county: &mut County, node: &mut Node) {
    county.serial += 1;
    node.identity.cert = county
        .root
        .issue(guihe_protocol::cert::CertBody {
            serial: county.serial,
            ..node.identity.cert.body.clone()
        })
        .unwrap();
}

/// The first message each side of a link sends, decoded.
fn first_sent(session: &mut Session) -> Vec<Message> {
    std::iter::from_fn(|| session.poll_transmit())
        .map(|m| Message::decode(&m).unwrap())
        .collect()
}

/// After a complete session each side holds the other's certificate: a later contact
/// names it by its short hash (version 4), the answer is in kind, and a contact with
/// nothing changed costs far less than with whole certificates (version 3).
#[test]
fn a_later_contact_names_certificates_by_hash() {
    let mut county = County::new(61);
    let mut village = county.node(Role::Village, V1);
    let mut township = county.node(Role::Township, T1);
    // A first contact with nothing to exchange: whole certificates, at most 1 KB.
    let empty = sync(&county, &mut village, &mut township).unwrap();
    eprintln!(
        "first contact with nothing to exchange: {} bytes",
        empty.bytes()
    );
    assert!(empty.bytes() <= 1024, "{empty:?}");
    let mut village = county.node(Role::Village, V1);
    for _ in 0..20 {
        county.case(&mut village, &[V1], 2);
    }
    let first = sync(&county, &mut village, &mut township).unwrap();
    // First contact: whole certificates (nothing was met before).
    let mut link = Link::open(&county, &village, &township);
    let sent = first_sent(&mut link.a);
    assert!(
        matches!(sent.as_slice(), [Message::HelloKnown { cert, .. }] if *cert == village.identity.cert.short_hash()),
        "{sent:?}"
    );
    // The responder waits for the dialler's hello, and answers it in kind.
    assert!(link.b.poll_transmit().is_none());
    link.b
        .handle(
            &sent[0].encode().unwrap(),
            &mut township.store,
            county.now_ms,
        )
        .unwrap();
    let answer = first_sent(&mut link.b);
    assert!(
        matches!(answer.first(), Some(Message::HelloKnown { cert, .. }) if *cert == township.identity.cert.short_hash()),
        "{answer:?}"
    );
    // A later contact with nothing changed, in both versions.
    let later = sync(&county, &mut village, &mut township).unwrap();
    let mut old = Link::speaking(&county, &village, &township, 3);
    old.settle(&county, &mut village, &mut township);
    let old_bytes = old.a.stats().bytes_out + old.b.stats().bytes_out;
    let cert_bytes = village.identity.cert.to_bytes().unwrap().len() as u64;
    eprintln!(
        "first contact {} bytes; a later one with nothing changed {} bytes (version 3: {old_bytes})",
        first.bytes(),
        later.bytes()
    );
    assert!(
        later.bytes() + 2 * (cert_bytes - 16) <= old_bytes,
        "version 4: {} bytes, version 3: {old_bytes} (certificate {cert_bytes} bytes)",
        later.bytes()
    );
    assert!(later.bytes() < first.bytes() / 4, "{later:?} vs {first:?}");
    // Issue 14's bound for a later contact with nothing changed, hellos included.
    assert!(later.bytes() <= 160, "{later:?}");
}

/// A peer that holds an older certificate of the key (the other side was renewed) asks for
/// the whole one, whichever side it is, and the session goes on to sync.
#[test]
fn a_peer_without_the_named_certificate_asks_for_it_and_the_session_goes_on() {
    let mut county = County::new(62);
    let mut village = county.node(Role::Village, V1);
    let mut township = county.node(Role::Township, T1);
    county.case(&mut village, &[V1], 1);
    sync(&county, &mut village, &mut township).unwrap();

    // The dialler was renewed: the township asks for its certificate.
    renew(&mut county, &mut village);
    let id = county.case(&mut village, &[V1], 1);
    let mut link = Link::open(&county, &village, &township);
    let hello = first_sent(&mut link.a);
    assert!(matches!(hello.as_slice(), [Message::HelloKnown { .. }]));
    link.b
        .handle(
            &hello[0].encode().unwrap(),
            &mut township.store,
            county.now_ms,
        )
        .unwrap();
    assert_eq!(first_sent(&mut link.b), vec![Message::CertWanted]);
    let mut link = Link::open(&county, &village, &township);
    link.settle(&county, &mut village, &mut township);
    assert!(same(&village, &township, id));
    assert!(
        township
            .store
            .certificates_of(&village.identity.key.public())
            .unwrap()
            .contains(&village.identity.cert)
    );

    // The answering side was renewed: the village asks, the township sends its
    // certificate and everything after its hello again.
    renew(&mut county, &mut township);
    let id = county.case(&mut village, &[V1], 1);
    let other = county.case(&mut township, &[V1], 1);
    let mut link = Link::open(&county, &village, &township);
    link.settle(&county, &mut village, &mut township);
    assert!(same(&village, &township, id));
    assert!(same(&village, &township, other));
    assert!(link.a.peer().is_some() && link.b.peer().is_some());
    // And the next contact names both certificates again.
    let mut link = Link::open(&county, &village, &township);
    assert!(matches!(
        first_sent(&mut link.a).as_slice(),
        [Message::HelloKnown { .. }]
    ));
}
