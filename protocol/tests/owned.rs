//! A division's own records (`owned`): a township's quarantine report reaches the township's
//! peers above it and the county, never a village; only the owner writes one.

mod common;

use automerge::transaction::{CommitOptions, Transactable};
use automerge::{ReadDoc, ScalarValue};
use common::mesh::*;
use guihe_protocol::cert::Role;
use guihe_protocol::division::Division;
use guihe_protocol::id::{EventId, RecordId};
use guihe_protocol::owned::{Body, Entry, Owned, OwnedKind};
use guihe_protocol::record::Record;
use guihe_protocol::signed::sign;
use guihe_protocol::store::{Store, StoreCerts, StoredChange};

const V1: &str = "500240101201";
const V2: &str = "500240101202";
const T1: &str = "500240101000";
const T2: &str = "500240102000";
const COUNTY: &str = "500240000000";

/// A change the village signs on its own record that no command writes: it flips the
/// restriction. Stored at the village as if it had been made there.
fn forged(county: &mut County, village: &mut Node, id: RecordId) -> StoredChange {
    let mut doc = village.store.doc(id).unwrap().unwrap();
    let record = Record::from_doc(doc.clone()).unwrap();
    let before = doc.get_heads();
    doc.set_actor(village.writer.actor.clone());
    county.now_ms += 60_000;
    let time = i64::try_from(county.now_ms).unwrap();
    doc.transact_with(
        |_| CommitOptions::default().with_time(time),
        |tx| {
            let restricted = matches!(
                tx.get(automerge::ROOT, "restricted")?,
                Some((automerge::Value::Scalar(v), _)) if v.as_bool() == Some(true)
            );
            tx.put(automerge::ROOT, "restricted", !restricted)
        },
    )
    .unwrap();
    let change = doc.get_changes(&before).pop().unwrap();
    let stored = StoredChange {
        hash: change.hash(),
        time_ms: county.now_ms,
        deps: change.deps().to_vec(),
        signer: village.identity.key.public(),
        signed: sign(&village.identity.key, &record, &change),
    };
    village
        .store
        .put_changes(std::slice::from_ref(&stored))
        .unwrap();
    village
        .store
        .put_doc(id, &doc, &Default::default())
        .unwrap();
    stored
}

/// The division's own records a node holds.
fn owned(node: &Node) -> Vec<Owned> {
    node.store
        .records()
        .unwrap()
        .into_iter()
        .filter(RecordId::is_owned)
        .map(|id| Owned::from_doc(node.store.doc(id).unwrap().unwrap()).unwrap())
        .collect()
}

struct Scene {
    county: County,
    village: Node,
    neighbour: Node,
    township: Node,
    other_township: Node,
    top: Node,
    forged: StoredChange,
}

/// A village sends its township a rule-breaking change; the township refuses it and
/// writes its report.
fn scene(seed: u64) -> Scene {
    let mut county = County::new(seed);
    let mut village = county.node(Role::Village, V1);
    let mut neighbour = county.node(Role::Village, V2);
    let mut township = county.node(Role::Township, T1);
    let other_township = county.node(Role::Township, T2);
    let top = county.node(Role::County, COUNTY);
    let id = county.case(&mut village, &[V1], 2);
    county.case(&mut neighbour, &[V2], 1);
    sync(&county, &mut village, &mut township).unwrap();
    let forged = forged(&mut county, &mut village, id);
    sync(&county, &mut village, &mut township).unwrap();
    let kept = township.store.quarantined().unwrap();
    assert_eq!(kept.len(), 1);
    // The township's host wrote its report the moment it refused the change: one change
    // started it, and there is nothing more to write.
    let reports =
        guihe_protocol::owned::all_of(&township.store, OwnedKind::QuarantineReport).unwrap();
    assert_eq!(reports.len(), 1, "the host started the report");
    assert_eq!(reports[0].len(), 1);
    county.now_ms += 60_000;
    let written = township
        .report_quarantined(county.now_ms, &mut county.rng)
        .unwrap();
    assert!(written.is_empty(), "nothing new to report");
    Scene {
        county,
        village,
        neighbour,
        township,
        other_township,
        top,
        forged,
    }
}

#[test]
fn a_quarantine_report_reaches_the_township_and_the_county_and_never_a_village() {
    let mut s = scene(71);
    let reports = owned(&s.township);
    assert_eq!(reports.len(), 1);
    let report = &reports[0];
    assert_eq!(report.kind(), OwnedKind::QuarantineReport);
    assert_eq!(report.owner(), T1.parse::<Division>().unwrap());

    sync(&s.county, &mut s.township, &mut s.top).unwrap();
    let at_county = owned(&s.top);
    assert_eq!(at_county.len(), 1, "the report reaches the county");
    let (entries, malformed) = at_county[0].entries();
    assert_eq!(malformed, 0);
    let [entry] = entries.as_slice() else {
        panic!("{entries:?}");
    };
    assert_eq!(entry.node, s.township.identity.key.public());
    let Body::Refusal {
        signer,
        change,
        code,
        ..
    } = &entry.body;
    assert_eq!(*signer, s.village.identity.key.public());
    assert_eq!(*change, s.forged.hash.to_string());
    assert_eq!(code, "root_write");

    // Neither the village that sent the change nor its neighbour gets the report, from the
    // township or from the county; nor does another township.
    for village in [&mut s.village, &mut s.neighbour] {
        sync(&s.county, village, &mut s.township).unwrap();
        sync(&s.county, village, &mut s.top).unwrap();
        assert!(owned(village).is_empty());
        assert!(village.store.quarantined().unwrap().is_empty());
    }
    sync(&s.county, &mut s.other_township, &mut s.top).unwrap();
    assert!(owned(&s.other_township).is_empty());

    // The same refusal is not reported twice; a new one goes into the same report.
    let kept = s.township.store.quarantined().unwrap();
    let again = s
        .township
        .report_quarantined(s.county.now_ms, &mut s.county.rng)
        .unwrap();
    assert!(again.is_empty());
    let mut other = kept[0].clone();
    other.hash = [7; 32];
    s.township
        .store
        .put_quarantined(std::slice::from_ref(&other))
        .unwrap();
    s.county.now_ms += 60_000;
    let more = s
        .township
        .report_quarantined(s.county.now_ms, &mut s.county.rng)
        .unwrap();
    assert_eq!(more.len(), 1);
    sync(&s.county, &mut s.township, &mut s.top).unwrap();
    let at_county = owned(&s.top);
    assert_eq!(at_county.len(), 1);
    assert_eq!(at_county[0].len(), 2);

    // A report the county refused a change of is written to no more (nothing more of it
    // could reach the county): the next refusal starts a new one.
    let report = at_county[0].id();
    s.township
        .store
        .put_own_refused(&[guihe_protocol::quarantine::OwnRefused {
            record: report,
            hash: [1; 32],
            code: "time".into(),
            by: s.top.identity.key.public(),
            at_ms: s.county.now_ms,
        }])
        .unwrap();
    let mut third = other.clone();
    third.hash = [8; 32];
    s.township
        .store
        .put_quarantined(std::slice::from_ref(&third))
        .unwrap();
    s.county.now_ms += 60_000;
    s.township
        .report_quarantined(s.county.now_ms, &mut s.county.rng)
        .unwrap();
    sync(&s.county, &mut s.township, &mut s.top).unwrap();
    let at_county = owned(&s.top);
    assert_eq!(at_county.len(), 2, "a new report");
    assert_eq!(at_county.iter().map(Owned::len).sum::<usize>(), 3);
}

/// A village that somehow holds a township's report (a stolen copy) cannot write into it,
/// and the county above cannot either: a division's own record is written by its owner.
#[test]
fn only_the_owner_writes_a_division_record() {
    let mut s = scene(72);
    sync(&s.county, &mut s.township, &mut s.top).unwrap();
    let report = owned(&s.township).remove(0);
    let entry = |node: &Node, county: &mut County| Entry {
        id: EventId::random(&mut county.rng),
        node: node.identity.key.public(),
        at_ms: county.now_ms,
        body: Body::Refusal {
            signer: node.identity.key.public(),
            record: report.id(),
            change: "00".repeat(32),
            change_ms: county.now_ms,
            code: "root_write".into(),
        },
    };
    for writer in [&s.village, &s.top] {
        s.county.now_ms += 60_000;
        let mut copy = report.clone();
        let before = copy.doc().get_heads();
        copy.append(
            &writer.writer.actor,
            s.county.now_ms,
            &entry(writer, &mut s.county),
        )
        .unwrap();
        let change = copy.doc().get_changes(&before).pop().unwrap();
        let signed = sign(&writer.identity.key, &copy, &change);
        let outcome = guihe_protocol::signed::verify_change(
            signed,
            &StoreCerts(&s.township.store),
            &s.township.store.revocation_state().unwrap(),
        );
        assert!(
            matches!(
                outcome,
                Err(guihe_protocol::signed::VerifyError::NotAuthorised { .. })
            ),
            "{outcome:?}"
        );
    }
    // A village's certificate may neither read nor write it.
    let owner = [report.owner()];
    assert!(!s.village.identity.cert.may_read(&owner));
    assert!(!s.village.identity.cert.may_write(&owner));
    assert!(s.top.identity.cert.may_read(&owner));
    assert!(!s.top.identity.cert.may_write(&owner));
}

/// A report is a document of its own kind: an event of a case written into it, or an entry
/// that deletes, is refused like any rule-breaking change.
#[test]
fn a_report_holds_entries_only_and_nothing_is_taken_out() {
    let mut s = scene(73);
    sync(&s.county, &mut s.township, &mut s.top).unwrap();
    let report = owned(&s.township).remove(0);
    let mut doc = report.doc().clone();
    let before = doc.get_heads();
    doc.set_actor(s.township.writer.actor.clone());
    s.county.now_ms += 60_000;
    let time = i64::try_from(s.county.now_ms).unwrap();
    doc.transact_with(
        |_| CommitOptions::default().with_time(time),
        |tx| {
            let (_, list) = tx.get(automerge::ROOT, "events")?.unwrap();
            tx.delete(&list, 0)
        },
    )
    .unwrap();
    let change = doc.get_changes(&before).pop().unwrap();
    let signed = sign(&s.township.identity.key, &report, &change);
    let outcome = guihe_protocol::signed::verify_change(
        signed,
        &StoreCerts(&s.top.store),
        &s.top.store.revocation_state().unwrap(),
    );
    // The rules read a delete from the change alone.
    assert!(
        matches!(
            outcome,
            Err(guihe_protocol::signed::VerifyError::Rule(
                guihe_protocol::rules::RuleError::Delete
            ))
        ),
        "{outcome:?}"
    );
    // The root is written once.
    let mut doc = report.doc().clone();
    let before = doc.get_heads();
    doc.set_actor(s.township.writer.actor.clone());
    doc.transact_with(
        |_| CommitOptions::default().with_time(time),
        |tx| tx.put(automerge::ROOT, "created_ms", ScalarValue::Uint(0)),
    )
    .unwrap();
    let change = doc.get_changes(&before).pop().unwrap();
    let signed = sign(&s.township.identity.key, &report, &change);
    let outcome = guihe_protocol::signed::verify_change(
        signed,
        &StoreCerts(&s.top.store),
        &s.top.store.revocation_state().unwrap(),
    );
    assert!(
        matches!(
            outcome,
            Err(guihe_protocol::signed::VerifyError::Rule(
                guihe_protocol::rules::RuleError::RootWrite(_)
            ))
        ),
        "{outcome:?}"
    );
}

/// A peer that speaks protocol version 2 cannot read a division's own record: a session of
/// that version leaves it out, and everything else still syncs.
#[test]
fn a_session_of_version_2_leaves_division_records_out() {
    let mut s = scene(74);
    let case = s.county.case(&mut s.township, &[V1], 1);
    let mut link = Link::speaking(&s.county, &s.township, &s.top, 2);
    link.settle(&s.county, &mut s.township, &mut s.top);
    assert!(same(&s.township, &s.top, case));
    assert!(owned(&s.top).is_empty(), "version 2 leaves the report out");
    sync(&s.county, &mut s.township, &mut s.top).unwrap();
    assert_eq!(owned(&s.top).len(), 1, "version 3 carries it");
}
