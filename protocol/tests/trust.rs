//! What a certified node cannot do to records everywhere: the change rules (`rules`) and
//! quarantine (`quarantine`), tried with the attacks a compromised village could sign.
//!
//! Each attack is a validly signed change from the village that owns the record, made by
//! hand as no command would make it. At the township and at the county it is refused and
//! kept aside; the record's bytes and view there do not change; the village's other records
//! keep syncing in the same session; and the township never passes the change on.

mod common;

use automerge::transaction::{CommitOptions, Transactable, Transaction};
use automerge::{ActorId, AutomergeError, ObjId, ObjType, ROOT, ReadDoc, ScalarValue, Value};
use common::mesh::*;
use guihe_protocol::cert::Role;
use guihe_protocol::id::RecordId;
use guihe_protocol::model::{Kind, Party, PartyRole};
use guihe_protocol::record::Record;
use guihe_protocol::signed::sign;
use guihe_protocol::store::{Store, StoredChange};
use guihe_protocol::view::View;
use guihe_protocol::workload;

const V1: &str = "500240101201";
const ELSEWHERE: &str = "500240102201";
const T1: &str = "500240101000";
const COUNTY: &str = "500240000000";

struct Scene {
    county: County,
    village: Node,
    township: Node,
    top: Node,
    /// The record attacked: restricted (a minor among its parties).
    id: RecordId,
}

impl Scene {
    fn new(seed: u64, kind: Kind) -> Scene {
        let mut county = County::new(seed);
        let mut village = county.node(Role::Village, V1);
        let mut township = county.node(Role::Township, T1);
        let mut top = county.node(Role::County, COUNTY);
        county.now_ms += 60_000;
        let mut new = workload::new_record(&mut county.rng, kind, &[V1.parse().unwrap()]);
        new.parties.push(Party {
            name: "小华".into(),
            role: PartyRole::Other,
            minor: true,
            contact: None,
            details: None,
        });
        new.restricted = true;
        let (id, _) = village
            .create(county.now_ms, &mut county.rng, &county.rules, new)
            .unwrap();
        for _ in 0..3 {
            county.work(&mut village, id);
        }
        sync(&county, &mut village, &mut township).unwrap();
        sync(&county, &mut township, &mut top).unwrap();
        assert!(same(&village, &top, id));
        Scene {
            county,
            village,
            township,
            top,
            id,
        }
    }

    /// A change the village signs on the record that no command would write: `f` runs in
    /// an Automerge transaction on the village's own document, as its own actor.
    fn forge(
        &mut self,
        f: impl FnOnce(&mut Transaction<'_>, &automerge::Automerge) -> Result<(), AutomergeError>,
    ) -> StoredChange {
        let mut doc = self.village.store.doc(self.id).unwrap().unwrap();
        let record = Record::from_doc(doc.clone()).unwrap();
        let before = doc.get_heads();
        let snapshot = doc.clone();
        doc.set_actor(self.village.writer.actor.clone());
        self.county.now_ms += 60_000;
        let time = i64::try_from(self.county.now_ms).unwrap();
        doc.transact_with(
            |_| CommitOptions::default().with_time(time),
            |tx| f(tx, &snapshot),
        )
        .unwrap();
        let change = doc.get_changes(&before).pop().unwrap();
        let stored = StoredChange {
            hash: change.hash(),
            time_ms: self.county.now_ms,
            deps: change.deps().to_vec(),
            signer: self.village.identity.key.public(),
            signed: sign(&self.village.identity.key, &record, &change),
        };
        self.village
            .store
            .put_changes(std::slice::from_ref(&stored))
            .unwrap();
        self.village
            .store
            .put_doc(self.id, &doc, &Default::default())
            .unwrap();
        stored
    }
}

fn list(doc: &automerge::Automerge, key: &str) -> ObjId {
    match doc.get(ROOT, key).unwrap() {
        Some((Value::Object(ObjType::List), id)) => id,
        other => panic!("{key}: {other:?}"),
    }
}

fn map(doc: &automerge::Automerge, key: &str) -> ObjId {
    match doc.get(ROOT, key).unwrap() {
        Some((Value::Object(ObjType::Map), id)) => id,
        other => panic!("{key}: {other:?}"),
    }
}

/// What a node shows of a record: its saved bytes and its view.
fn shown(node: &Node, id: RecordId, county: &County) -> (Vec<u8>, View) {
    let record = node.record(id).unwrap();
    (record.save(), record.view(&county.rules).unwrap())
}

/// Runs one attack: the forged change is refused and kept aside with `code` at the
/// township and at the county, directly from the village in both cases, while an honest
/// record written after it arrives in the same session; nothing the two show changes; and
/// the township never passes the change on.
fn refused_everywhere(
    seed: u64,
    kind: Kind,
    code: &str,
    f: impl FnOnce(&mut Transaction<'_>, &automerge::Automerge) -> Result<(), AutomergeError>,
) {
    let mut s = Scene::new(seed, kind);
    let at_township = shown(&s.township, s.id, &s.county);
    let at_county = shown(&s.top, s.id, &s.county);
    assert!(at_township.1.common().restricted);
    let forged = s.forge(f);
    // The village goes on working honestly after the forged change, on another record.
    let honest = s.county.case(&mut s.village, &[V1], 1);

    sync(&s.county, &mut s.village, &mut s.township).unwrap();
    // The township passes on what it accepted, never the forged change.
    sync(&s.county, &mut s.township, &mut s.top).unwrap();
    assert!(!s.top.store.has_change(&forged.hash).unwrap());
    assert!(s.top.store.quarantined().unwrap().is_empty());
    assert!(same(&s.village, &s.top, honest));
    // The village reaches the county directly too.
    sync(&s.county, &mut s.village, &mut s.top).unwrap();

    for (node, before, at) in [
        (&s.township, &at_township, "township"),
        (&s.top, &at_county, "county"),
    ] {
        assert!(!node.store.has_change(&forged.hash).unwrap(), "{at}");
        let kept = node.store.quarantined().unwrap();
        assert_eq!(kept.len(), 1, "{at}: {kept:?}");
        assert_eq!(kept[0].change_hash(), forged.hash, "{at}");
        assert_eq!(kept[0].code, code, "{at}: {}", kept[0].detail);
        assert_eq!(kept[0].signer, s.village.identity.key.public(), "{at}");
        assert_eq!(
            &shown(node, s.id, &s.county),
            before,
            "{at}: the record changed"
        );
        assert!(same(&s.village, node, honest), "{at}: the honest record");
    }
}

#[test]
fn jurisdictions_rewritten_to_another_township_are_refused_at_township_and_county() {
    refused_everywhere(1, Kind::Case, "root_write", |tx, _| {
        let villages = tx.put_object(ROOT, "jurisdictions", ObjType::List)?;
        tx.insert(&villages, 0, ELSEWHERE)?;
        Ok(())
    });
}

#[test]
fn jurisdictions_extended_are_refused_at_township_and_county() {
    refused_everywhere(2, Kind::Case, "existing_object", |tx, doc| {
        let villages = list(doc, "jurisdictions");
        tx.insert(&villages, 1, ELSEWHERE)?;
        Ok(())
    });
}

#[test]
fn events_deleted_and_restriction_lifted_are_refused_at_township_and_county() {
    refused_everywhere(3, Kind::Case, "delete", |tx, doc| {
        let events = list(doc, "events");
        for i in (0..doc.length(&events)).rev() {
            tx.delete(&events, i)?;
        }
        tx.put(ROOT, "restricted", false)?;
        Ok(())
    });
}

#[test]
fn a_petitions_events_emptied_are_refused_at_township_and_county() {
    refused_everywhere(4, Kind::Petition, "delete", |tx, doc| {
        let events = list(doc, "events");
        for i in (0..doc.length(&events)).rev() {
            tx.delete(&events, i)?;
        }
        Ok(())
    });
}

#[test]
fn the_events_key_deleted_is_refused_at_township_and_county() {
    refused_everywhere(5, Kind::Case, "delete", |tx, _| tx.delete(ROOT, "events"));
}

#[test]
fn the_restriction_lifted_is_refused_at_township_and_county() {
    refused_everywhere(6, Kind::Case, "root_write", |tx, _| {
        tx.put(ROOT, "restricted", false)
    });
}

#[test]
fn a_party_overwritten_is_refused_at_township_and_county() {
    refused_everywhere(7, Kind::Case, "overwrite", |tx, doc| {
        let parties = map(doc, "parties");
        let first = doc.keys(&parties).next().unwrap();
        let party = match doc.get(&parties, first.as_str()).unwrap() {
            Some((Value::Object(ObjType::Map), id)) => id,
            other => panic!("{other:?}"),
        };
        tx.put(&party, "name", "张三")?;
        tx.put(&party, "minor", false)?;
        Ok(())
    });
}

#[test]
fn a_party_replaced_under_its_key_is_refused_at_township_and_county() {
    refused_everywhere(8, Kind::Case, "overwrite", |tx, doc| {
        let parties = map(doc, "parties");
        let first = doc.keys(&parties).next().unwrap();
        let party = tx.put_object(&parties, first.as_str(), ObjType::Map)?;
        tx.put(&party, "name", "张三")?;
        Ok(())
    });
}

#[test]
fn the_schema_changed_is_refused_at_township_and_county() {
    refused_everywhere(9, Kind::Case, "root_write", |tx, _| {
        tx.put(ROOT, "schema", ScalarValue::Uint(2))
    });
}

#[test]
fn the_summary_blanked_is_refused_at_township_and_county() {
    refused_everywhere(10, Kind::Petition, "delete", |tx, doc| {
        let summary = match doc.get(ROOT, "summary").unwrap() {
            Some((Value::Object(ObjType::Text), id)) => id,
            other => panic!("{other:?}"),
        };
        tx.update_text(&summary, "")
    });
}

#[test]
fn an_event_in_another_nodes_name_is_refused_at_township_and_county() {
    let mut s = Scene::new(11, Kind::Case);
    let township_node = s.township.identity.key.public().to_string();
    let mut forged_event = None;
    // Copy the village's last event, but name the township as its author.
    let forged = s.forge(|tx, doc| {
        let events = list(doc, "events");
        let last = doc.length(&events) - 1;
        let mut event: guihe_protocol::event::Event =
            autosurgeon::hydrate_prop(doc, &events, last).unwrap();
        event.id = guihe_protocol::id::EventId::from_bytes([7; 16]);
        event.node = township_node.parse().unwrap();
        // (Written as the record writes it: no optional field left null or empty.)
        event.by = "谭德华".into();
        event.body = guihe_protocol::event::Body::FollowUp(guihe_protocol::event::Note {
            note: "电话回访".into(),
        });
        event.hlc.wall_ms = u64::MAX / 2;
        forged_event = Some(event.clone());
        autosurgeon::reconcile_insert(tx, events, last + 1, &event).unwrap();
        Ok(())
    });
    assert!(forged_event.is_some());
    sync(&s.county, &mut s.village, &mut s.township).unwrap();
    sync(&s.county, &mut s.village, &mut s.top).unwrap();
    for node in [&s.township, &s.top] {
        assert!(!node.store.has_change(&forged.hash).unwrap());
        assert_eq!(node.store.quarantined().unwrap()[0].code, "author");
    }
}

#[test]
fn an_honest_actor_never_signs_as_someone_else() {
    // The village's actor is its key and its incarnation; a change under another actor
    // is refused before any rule (the signature names the actor's key).
    let s = Scene::new(12, Kind::Case);
    let actor: ActorId = s.village.writer.actor.clone();
    assert_eq!(
        &actor.to_bytes()[..32],
        s.village.identity.key.public().as_bytes()
    );
}

// ---------------------------------------------------------------------------------------
// Changes Automerge cannot apply: refused, nothing stored, no panic.
// ---------------------------------------------------------------------------------------

/// A copy of `change` with its operations edited by `f`, signed by the village.
fn altered(
    s: &Scene,
    change: &StoredChange,
    f: impl FnOnce(&mut automerge::ExpandedChange),
) -> StoredChange {
    let parsed = automerge::Change::from_bytes(change.signed.bytes.clone()).unwrap();
    let mut expanded = parsed.decode();
    f(&mut expanded);
    expanded.hash = None;
    let bad = automerge::Change::from(expanded);
    let record = s.village.record(s.id).unwrap();
    StoredChange {
        hash: bad.hash(),
        time_ms: change.time_ms,
        deps: bad.deps().to_vec(),
        signer: change.signer,
        signed: sign(&s.village.identity.key, &record, &bad),
    }
}

/// Delivers changes to `to` in one batch of a session with the village, as the village
/// would send them; returns the session's events. The session must not end.
fn deliver(
    s: &mut Scene,
    to_county: bool,
    changes: &[StoredChange],
) -> Vec<guihe_protocol::sync::Event> {
    use guihe_protocol::sync::{Config, Session};
    use guihe_protocol::wire::{Message, PROTOCOL_VERSION};
    let to = if to_county {
        &mut s.top
    } else {
        &mut s.township
    };
    let mut session = Session::new(
        Config::default(),
        s.county.root.public(),
        to.identity.clone(),
        false,
        &to.store,
    )
    .unwrap();
    let hello = Message::Hello {
        version: PROTOCOL_VERSION,
        cert: s.village.identity.cert.clone(),
        revocations: 0,
    };
    session
        .handle(&hello.encode().unwrap(), &mut to.store, s.county.now_ms)
        .unwrap();
    let batch = Message::Changes {
        batch: 0,
        certs: vec![s.village.identity.cert.clone()],
        changes: changes.iter().map(|c| c.signed.clone()).collect(),
    };
    session
        .handle(&batch.encode().unwrap(), &mut to.store, s.county.now_ms)
        .unwrap();
    events(&mut session)
}

fn clone_node(n: &Node) -> Node {
    guihe_protocol::replica::Replica {
        identity: n.identity.clone(),
        store: n.store.clone(),
        writer: n.writer.clone(),
        last_write_ms: n.last_write_ms,
    }
}

/// What a node holds of the record: its heads and its pending set.
fn held(node: &Node, id: RecordId) -> (Vec<automerge::ChangeHash>, usize) {
    (
        node.store.doc(id).unwrap().unwrap().get_heads(),
        node.store.pending(id).unwrap().len(),
    )
}

#[test]
fn a_change_whose_sequence_number_skips_ahead_is_refused_alone_and_in_a_batch() {
    for to_county in [false, true] {
        let mut s = Scene::new(20, Kind::Case);
        let honest = s.county.work(&mut s.village, s.id);
        let bad = altered(&s, &honest[0], |e| e.seq += 3);
        // Automerge itself does not refuse it: applying it unguarded either panics or
        // applies a change whose actor skipped three sequence numbers.
        let before = held(if to_county { &s.top } else { &s.township }, s.id);
        deliver(&mut s, to_county, std::slice::from_ref(&bad));
        let node = if to_county { &s.top } else { &s.township };
        assert_eq!(held(node, s.id), before);
        assert!(!node.store.has_change(&bad.hash).unwrap());
        assert_eq!(node.store.quarantined().unwrap()[0].code, "sequence");
        // In a batch with honest changes of another record: those apply.
        let other = s.county.case(&mut s.village, &[V1], 2);
        let mut batch: Vec<StoredChange> = s
            .village
            .store
            .doc(other)
            .unwrap()
            .unwrap()
            .get_changes(&[])
            .iter()
            .map(|c| s.village.store.change(&c.hash()).unwrap().unwrap())
            .collect();
        let bad2 = altered(&s, &honest[0], |e| e.seq += 7);
        batch.insert(1, bad2.clone());
        deliver(&mut s, to_county, &batch);
        let node = if to_county { &s.top } else { &s.township };
        assert!(same(&s.village, node, other));
        assert!(!node.store.has_change(&bad2.hash).unwrap());
        assert_eq!(node.store.quarantined().unwrap().len(), 2);
        assert_eq!(held(node, s.id), before);
    }
}

#[test]
fn a_change_on_a_missing_object_is_refused_and_a_change_waiting_for_it_after_it() {
    let mut s = Scene::new(21, Kind::Case);
    let first = s.county.work(&mut s.village, s.id);
    let second = s.county.work(&mut s.village, s.id);
    // The second change, altered to write a value into an object that does not exist
    // (which only the document can tell: the change itself could name any object).
    let bad = altered(&s, &second[0], |e| {
        let actor = e.actor_id.clone();
        if let Some(op) = e
            .operations
            .iter_mut()
            .find(|op| matches!(op.action, automerge::legacy::OpType::Put(_)))
        {
            op.obj = automerge::legacy::ObjectId::Id(automerge::legacy::OpId(9_999_999, actor));
        }
    });
    let before = held(&s.township, s.id);
    // It arrives first, before the change it depends on: it waits...
    deliver(&mut s, false, std::slice::from_ref(&bad));
    assert_eq!(s.township.store.pending(s.id).unwrap().len(), 1);
    assert_eq!(held(&s.township, s.id).0, before.0);
    // ...and when the dependency comes, the dependency applies and it is refused.
    deliver(&mut s, false, &first);
    let node = &s.township;
    assert!(node.store.pending(s.id).unwrap().is_empty());
    assert!(!node.store.has_change(&bad.hash).unwrap());
    let kept = node.store.quarantined().unwrap();
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0].code, "unknown_object");
    assert!(
        node.store
            .doc(s.id)
            .unwrap()
            .unwrap()
            .get_heads()
            .contains(&first[0].hash)
    );
    // The key of the refused change is not offered to anyone.
    let keys = node.store.keys(T1.parse().unwrap(), &|_| true).unwrap();
    assert!(keys.iter().all(|(_, h)| *h != bad.hash));
}

/// The record's first change as made by another actor of the village's key: `consistent`
/// renames the actor in its operations too (a well-formed change); otherwise they still
/// name the old actor, which the change does not declare.
fn second_root(s: &Scene, consistent: bool) -> StoredChange {
    use automerge::legacy::{ElementId, Key, ObjectId, OpId};
    let doc = s.village.store.doc(s.id).unwrap().unwrap();
    let first = doc.get_changes(&[]).into_iter().next().unwrap();
    let mut e = first.decode();
    let old = e.actor_id.clone();
    let new = guihe_protocol::record::actor_id(s.village.identity.key.public(), 9);
    e.actor_id = new.clone();
    // Another hash, and still stamped no later than its intake event.
    e.time -= 1;
    e.hash = None;
    if consistent {
        let swap = |id: &mut OpId| {
            if id.1 == old {
                id.1 = new.clone();
            }
        };
        for op in &mut e.operations {
            if let ObjectId::Id(id) = &mut op.obj {
                swap(id);
            }
            if let Key::Seq(ElementId::Id(id)) = &mut op.key {
                swap(id);
            }
            let mut pred: Vec<OpId> = op.pred.iter().cloned().collect();
            pred.iter_mut().for_each(swap);
            op.pred = pred.into_iter().collect();
        }
    }
    let root = automerge::Change::from(e);
    let record = s.village.record(s.id).unwrap();
    StoredChange {
        hash: root.hash(),
        time_ms: s.county.now_ms,
        deps: vec![],
        signer: s.village.identity.key.public(),
        signed: sign(&s.village.identity.key, &record, &root),
    }
}

#[test]
fn a_second_first_change_for_an_existing_record_is_refused() {
    let mut s = Scene::new(22, Kind::Case);
    // The village makes the record anew under the same id: a second root, which would
    // replace the record's fields by last-writer-wins.
    let forged = second_root(&s, true);
    let before = held(&s.township, s.id);
    deliver(&mut s, false, std::slice::from_ref(&forged));
    assert_eq!(held(&s.township, s.id), before);
    assert_eq!(
        s.township.store.quarantined().unwrap()[0].code,
        "second_root"
    );
}

#[test]
fn a_change_automerge_panics_on_is_refused_and_the_node_stays_up() {
    let mut s = Scene::new(23, Kind::Case);
    // Operations naming an actor the change does not declare: Automerge 0.12 panics while
    // applying such a change (it unwraps the actor's lookup).
    let forged = second_root(&s, false);
    let change = automerge::Change::from_bytes(forged.signed.bytes.clone()).unwrap();
    let unguarded = std::panic::catch_unwind(|| {
        let mut doc = automerge::Automerge::new();
        let _ = doc.apply_changes([change]);
    });
    assert!(unguarded.is_err(), "the input makes Automerge panic");
    // Through a session it is a refusal like any other, at the township and the county.
    for to_county in [false, true] {
        fn node(s: &Scene, to_county: bool) -> &Node {
            if to_county { &s.top } else { &s.township }
        }
        let node = |s: &Scene| -> Node { clone_node(node(s, to_county)) };
        let before = held(&node(&s), s.id);
        deliver(&mut s, to_county, std::slice::from_ref(&forged));
        let n = node(&s);
        assert_eq!(held(&n, s.id), before);
        assert!(!n.store.has_change(&forged.hash).unwrap());
        // (Refused before Automerge sees it: the rules find the objects it names missing.)
        assert_eq!(n.store.quarantined().unwrap()[0].code, "unknown_object");
    }
}

// ---------------------------------------------------------------------------------------
// Every entry a command writes passes the rules, as every peer will hold it.
// ---------------------------------------------------------------------------------------

#[test]
fn every_kind_of_entry_a_command_writes_passes_the_rules() {
    use guihe_protocol::event::*;
    use guihe_protocol::model::{Category, Risk};
    use guihe_protocol::record::{Command, CommandError};
    use guihe_protocol::replica::ReplicaError;
    use guihe_protocol::workflow::Status;
    let mut s = Scene::new(30, Kind::Case);
    let case_id = s.id;
    let note = |t: &str| Note { note: t.into() };
    let party = Party {
        name: "谭德明".into(),
        role: PartyRole::Respondent,
        minor: false,
        contact: Some("13800000000".into()),
        details: None,
    };
    let mut case = vec![
        Body::Accept(Acceptance::default()),
        Body::Assign(Assign {
            to: "tan.dm".parse().unwrap(),
            note: "负责".into(),
        }),
        Body::Session(Session {
            place: "村委会".into(),
            note: "双方陈述".into(),
        }),
        Body::ProtectionRequest(ProtectionRequest {
            court: "石柱县人民法院".into(),
            urgent: true,
            note: String::new(),
        }),
        Body::ProtectionResult(Outcome {
            granted: true,
            note: "（2026）渝0240民保令1号".into(),
        }),
        Body::Agreement(Agreement {
            form: AgreementForm::Written,
            terms: "以老界石为准".into(),
            seek_confirmation: true,
        }),
        Body::JudicialRequest(Court {
            court: "石柱县人民法院".into(),
            note: String::new(),
        }),
        Body::JudicialResult(Outcome {
            granted: true,
            note: String::new(),
        }),
        Body::FollowUp(note("电话回访")),
        Body::Satisfaction(Satisfaction {
            rating: 5,
            note: "满意".into(),
        }),
        Body::Close(note("")),
        Body::Reopen(note("当事人反悔")),
        Body::Refer(Refer {
            level: ReferLevel::Township,
            to: "西沱镇综治中心".into(),
            reason: "涉及多村".into(),
        }),
        Body::Fail(note("分歧过大")),
        Body::Resolve(note("和解")),
        Body::Review(Review {
            outcome: Some(Status::Resolved),
            note: "核实".into(),
        }),
    ];
    for change in [
        Change::Category(Category::ForestLand),
        Change::Risk(Risk::Major),
        Change::Restricted(false),
        Change::Note(note("日期有误")),
    ] {
        case.push(Body::Amend(Amend {
            target: None,
            change,
            reason: "更正".into(),
        }));
    }
    let mut written = 0;
    let mut run = |s: &mut Scene, id: RecordId, command: Command| {
        s.county.now_ms += 60_000;
        match s.village.apply(
            id,
            s.county.now_ms,
            &mut s.county.rng,
            &s.county.rules,
            command,
        ) {
            Ok(_) => written += 1,
            Err(ReplicaError::Command(CommandError::Refused(_))) => {}
            Err(e) => panic!("{e}"),
        }
    };
    for body in case {
        run(&mut s, case_id, Command::Event { at_ms: None, body });
    }
    run(
        &mut s,
        case_id,
        Command::AddParty {
            party: party.clone(),
            reason: "追加当事人".into(),
        },
    );
    run(
        &mut s,
        case_id,
        Command::EditSummary {
            text: "两户因宅基地界线发生争执（更正）".into(),
            reason: "更正".into(),
        },
    );
    let id = *s
        .village
        .record(case_id)
        .unwrap()
        .parties()
        .unwrap()
        .keys()
        .next()
        .unwrap();
    run(
        &mut s,
        case_id,
        Command::Event {
            at_ms: None,
            body: Body::Amend(Amend {
                target: None,
                change: Change::Party(PartyFix {
                    id,
                    party: party.clone(),
                }),
                reason: "更正姓名".into(),
            }),
        },
    );
    // A petition through its own steps, and one that is not accepted.
    for bodies in [
        vec![
            Body::Accept(Acceptance::default()),
            Body::Extend(Extend {
                days: 30,
                reason: "需调查".into(),
            }),
            Body::Reply(note("答复意见")),
            Body::ReexamRequest(note("")),
            Body::ReexamAnswer(note("维持")),
            Body::Close(note("")),
        ],
        vec![Body::NotAccept(note("不属于受理范围"))],
    ] {
        let petition = {
            s.county.now_ms += 60_000;
            let new =
                workload::new_record(&mut s.county.rng, Kind::Petition, &[V1.parse().unwrap()]);
            s.village
                .create(s.county.now_ms, &mut s.county.rng, &s.county.rules, new)
                .unwrap()
                .0
        };
        for body in bodies {
            run(&mut s, petition, Command::Event { at_ms: None, body });
        }
    }
    // Schema 2: a party with particulars, added and corrected; a case number; a record
    // taken in with the matter's particulars. Refused while the county allows schema 1.
    let particulars = guihe_protocol::model::Particulars {
        sex: Some(guihe_protocol::model::Sex::Female),
        age: Some(47),
        ethnicity: "土家族".into(),
        occupation: "农民".into(),
        address: "石柱土家族自治县某村三组".into(),
        id_number: "50024019790305002X".into(),
    };
    let detailed = Party {
        details: Some(particulars),
        ..party.clone()
    };
    let number = Body::Accept(Acceptance {
        note: String::new(),
        number: Some(CaseNumber {
            office: 500_240_101_201,
            year: 2026,
            seq: 7,
        }),
    });
    assert!(matches!(
        s.village.apply(
            case_id,
            s.county.now_ms,
            &mut s.county.rng,
            &s.county.rules,
            Command::AddParty {
                party: detailed.clone(),
                reason: "追加".into()
            }
        ),
        Err(ReplicaError::Command(CommandError::SchemaNotAllowed {
            needed: 2,
            allowed: 1
        }))
    ));
    // The county allows schema 2.
    let settings = s
        .county
        .root
        .settings(guihe_protocol::cert::SettingsBody {
            version: 1,
            record_schema: 2,
            issued_ms: s.county.now_ms,
        })
        .unwrap();
    s.village.store.put_settings(&settings).unwrap();
    // From schema 2 each entry carries its author's display name.
    s.village.writer.author.display = "谭德明".into();
    run(
        &mut s,
        case_id,
        Command::AddParty {
            party: detailed.clone(),
            reason: "追加当事人".into(),
        },
    );
    run(
        &mut s,
        case_id,
        Command::Event {
            at_ms: None,
            body: Body::Amend(Amend {
                target: None,
                change: Change::Party(PartyFix {
                    id,
                    party: detailed.clone(),
                }),
                reason: "补充当事人情况".into(),
            }),
        },
    );
    let numbered = {
        s.county.now_ms += 60_000;
        let mut new = workload::new_record(&mut s.county.rng, Kind::Case, &[V1.parse().unwrap()]);
        workload::with_particulars(&mut s.county.rng, &mut new, "某村");
        s.village
            .create(s.county.now_ms, &mut s.county.rng, &s.county.rules, new)
            .unwrap()
            .0
    };
    run(
        &mut s,
        numbered,
        Command::Event {
            at_ms: None,
            body: number,
        },
    );
    let view = s
        .village
        .record(numbered)
        .unwrap()
        .view(&s.county.rules)
        .unwrap();
    assert_eq!(
        view.common().numbers.first().copied(),
        Some(CaseNumber {
            office: 500_240_101_201,
            year: 2026,
            seq: 7
        })
    );
    assert!(view.common().matter.is_some());
    let events = s.village.record(numbered).unwrap().events().unwrap().events;
    assert!(events.iter().all(|e| e.by == "谭德明"), "{events:?}");
    let earlier = s.village.record(s.id).unwrap().events().unwrap().events;
    assert!(
        earlier.first().is_some_and(|e| e.by.is_empty()),
        "entries of schema 1 carry no display name"
    );
    assert!(
        view.common()
            .parties
            .iter()
            .filter_map(|p| p.details.as_ref())
            .all(|d| d.id_number.is_empty() || d.id_number.contains("*******")),
        "ID numbers are masked in views"
    );
    assert!(written >= 23, "{written} entries written");
    // And every one of them is accepted at the township.
    sync(&s.county, &mut s.village, &mut s.township).unwrap();
    assert!(s.township.store.quarantined().unwrap().is_empty());
    assert!(same(&s.village, &s.township, s.id));
}

/// A dispute taken in with a petition's flags (集体访), signed by its village, is refused at
/// the township: the flags describe petitions only, and would be counted among the
/// petitions' figures.
#[test]
fn a_dispute_carrying_a_petitions_flags_is_refused() {
    use automerge::legacy::{Key, OpType};
    let mut s = Scene::new(36, Kind::Case);
    let settings = s
        .county
        .root
        .settings(guihe_protocol::cert::SettingsBody {
            version: 1,
            record_schema: 2,
            issued_ms: s.county.now_ms,
        })
        .unwrap();
    s.village.store.put_settings(&settings).unwrap();
    s.county.now_ms += 60_000;
    let mut new = workload::new_record(&mut s.county.rng, Kind::Case, &[V1.parse().unwrap()]);
    workload::with_particulars(&mut s.county.rng, &mut new, "某村");
    let (dispute, _) = s
        .village
        .create(s.county.now_ms, &mut s.county.rng, &s.county.rules, new)
        .unwrap();
    let doc = s.village.store.doc(dispute).unwrap().unwrap();
    let first = doc.get_changes(&[]).into_iter().next().unwrap();
    let honest = s.village.store.change(&first.hash()).unwrap().unwrap();
    let mut flipped = false;
    let forged = altered(&s, &honest, |e| {
        for op in &mut e.operations {
            if op.key == Key::Map("collective".into()) {
                op.action = OpType::Put(ScalarValue::Boolean(true));
                flipped = true;
            }
        }
    });
    assert!(flipped, "the intake holds the matter's flags");
    deliver(&mut s, false, std::slice::from_ref(&forged));
    assert!(
        s.township
            .store
            .doc(dispute)
            .unwrap()
            .is_none_or(|d| d.get_heads().is_empty())
    );
    assert_eq!(s.township.store.quarantined().unwrap()[0].code, "content");
    // The honest intake of the same dispute is accepted.
    deliver(&mut s, false, std::slice::from_ref(&honest));
    assert_eq!(
        s.township
            .store
            .doc(dispute)
            .unwrap()
            .unwrap()
            .get_heads()
            .len(),
        1
    );
}

/// A record of a newer schema than this build knows (written by an upgraded office) is
/// held: not applied, not refused for good, not passed on, and its later changes wait with
/// it, until this node is upgraded and knows the rules of that schema.
#[test]
fn a_record_of_a_newer_schema_is_held_never_quarantined() {
    use automerge::legacy::{Key, OpType};
    let mut s = Scene::new(31, Kind::Case);
    // The village (upgraded) writes a record of a schema newer than this build's.
    let other = s.county.case(&mut s.village, &[V1], 1);
    let changes: Vec<StoredChange> = s
        .village
        .store
        .doc(other)
        .unwrap()
        .unwrap()
        .get_changes(&[])
        .iter()
        .map(|c| s.village.store.change(&c.hash()).unwrap().unwrap())
        .collect();
    let first = automerge::Change::from_bytes(changes[0].signed.bytes.clone()).unwrap();
    let mut e = first.decode();
    for op in &mut e.operations {
        if op.key == Key::Map("schema".into()) {
            op.action = OpType::Put(ScalarValue::Uint(
                guihe_protocol::record::SCHEMA_VERSION + 1,
            ));
        }
    }
    e.hash = None;
    let newer = automerge::Change::from(e);
    let record = s.village.record(other).unwrap();
    let held = StoredChange {
        hash: newer.hash(),
        time_ms: changes[0].time_ms,
        deps: vec![],
        signer: changes[0].signer,
        signed: sign(&s.village.identity.key, &record, &newer),
    };
    deliver(&mut s, false, std::slice::from_ref(&held));
    let node = &s.township;
    assert!(
        node.store
            .doc(other)
            .unwrap()
            .is_none_or(|d| d.get_heads().is_empty())
    );
    assert!(
        node.store.quarantined().unwrap().is_empty(),
        "never refused for good"
    );
    assert_eq!(node.store.pending(other).unwrap().len(), 1, "held, waiting");
    let keys = node.store.keys(T1.parse().unwrap(), &|_| true).unwrap();
    assert!(keys.iter().all(|(_, h)| *h != held.hash), "not passed on");
}

// ---------------------------------------------------------------------------------------
// Per-signer bounds on changes that wait.
// ---------------------------------------------------------------------------------------

#[test]
fn changes_waiting_for_dependencies_are_bounded_per_signer_and_expire() {
    use guihe_protocol::ingest::{PENDING_EXPIRY_MS, PENDING_PER_SIGNER_MAX, expire, ingest};
    use guihe_protocol::signed::verify_batch;
    use guihe_protocol::store::StoreCerts;
    let mut s = Scene::new(32, Kind::Case);
    let base = s.county.work(&mut s.village, s.id).remove(0);
    // Validly signed changes that depend on changes that never come.
    let flood: Vec<StoredChange> = (0..PENDING_PER_SIGNER_MAX + 50)
        .map(|i| {
            altered(&s, &base, |e| {
                let mut missing = [0u8; 32];
                missing[..8].copy_from_slice(&(i as u64).to_be_bytes());
                e.deps = vec![automerge::ChangeHash(missing)];
            })
        })
        .collect();
    let node = &mut s.township;
    node.store
        .put_certificate(&s.village.identity.cert)
        .unwrap();
    let mut not_kept = 0;
    for chunk in flood.chunks(400) {
        let checked = verify_batch(
            chunk.iter().map(|c| c.signed.clone()).collect(),
            &StoreCerts(&node.store),
            &Default::default(),
        )
        .unwrap();
        not_kept += ingest(&mut node.store, checked, s.county.now_ms)
            .unwrap()
            .not_kept;
    }
    assert_eq!(not_kept, 50);
    let waiting: usize = node
        .store
        .all_pending()
        .unwrap()
        .iter()
        .map(|(_, p)| p.len())
        .sum();
    assert_eq!(waiting, PENDING_PER_SIGNER_MAX);
    // None of them is announced to peers.
    let keys = node.store.keys(T1.parse().unwrap(), &|_| true).unwrap();
    assert!(keys.iter().all(|(_, h)| flood.iter().all(|f| f.hash != *h)));
    // A month after they were made, they are forgotten.
    assert_eq!(expire(&mut node.store, s.county.now_ms).unwrap(), 0);
    let later = s.county.now_ms + PENDING_EXPIRY_MS + 60_000;
    assert_eq!(
        expire(&mut node.store, later).unwrap(),
        PENDING_PER_SIGNER_MAX
    );
    assert!(node.store.all_pending().unwrap().is_empty());
    assert!(!node.store.has_change(&flood[0].hash).unwrap());
}

// ---------------------------------------------------------------------------------------
// Found in review: other actors of a key, repeated event ids, signed numbers.
// ---------------------------------------------------------------------------------------

/// `change` re-made by another actor (`actor`), with its operations' own ids renamed.
fn as_actor(s: &Scene, change: &StoredChange, actor: automerge::ActorId) -> StoredChange {
    use automerge::legacy::{ElementId, Key, ObjectId, OpId};
    altered(s, change, |e| {
        let old = e.actor_id.clone();
        let swap = |id: &mut OpId| {
            if id.1 == old {
                id.1 = actor.clone();
            }
        };
        e.actor_id = actor.clone();
        for op in &mut e.operations {
            if let ObjectId::Id(id) = &mut op.obj {
                swap(id);
            }
            if let Key::Seq(ElementId::Id(id)) = &mut op.key {
                swap(id);
            }
            let mut pred: Vec<OpId> = op.pred.iter().cloned().collect();
            pred.iter_mut().for_each(swap);
            op.pred = pred.into_iter().collect();
        }
        e.seq = 1;
    })
}

#[test]
fn a_change_under_a_longer_actor_of_the_key_is_refused() {
    let mut s = Scene::new(33, Kind::Case);
    let honest = s.county.work(&mut s.village, s.id).remove(0);
    // The key's bytes, an incarnation, and more: Automerge would take it for a new actor
    // starting its own sequence.
    let mut bytes = s.village.writer.actor.to_bytes().to_vec();
    bytes.extend_from_slice(b"more");
    let forged = as_actor(&s, &honest, automerge::ActorId::from(bytes));
    let before = held(&s.township, s.id);
    deliver(&mut s, false, std::slice::from_ref(&forged));
    assert_eq!(held(&s.township, s.id), before);
    assert_eq!(s.township.store.quarantined().unwrap()[0].code, "actor");
}

#[test]
fn an_event_that_takes_the_id_of_one_the_record_holds_is_refused() {
    refused_everywhere(34, Kind::Case, "duplicate_event", |tx, doc| {
        let events = list(doc, "events");
        let intake: guihe_protocol::event::Event =
            autosurgeon::hydrate_prop(doc, &events, 0_usize).unwrap();
        let last: guihe_protocol::event::Event =
            autosurgeon::hydrate_prop(doc, &events, doc.length(&events) - 1).unwrap();
        // An entry under the intake's id: the fold tells entries apart by id, so one of
        // the two would disappear from it.
        let mut copy = last.clone();
        copy.id = intake.id;
        copy.hlc.wall_ms = u64::MAX / 4;
        // (Written as the record writes it: no optional field left empty.)
        copy.by = "谭德明".into();
        copy.body = guihe_protocol::event::Body::Amend(guihe_protocol::event::Amend {
            target: None,
            change: guihe_protocol::event::Change::Note(guihe_protocol::event::Note {
                note: String::new(),
            }),
            reason: "替换".into(),
        });
        autosurgeon::reconcile_insert(tx, events, 0, &copy).unwrap();
        Ok(())
    });
}

/// An event whose body holds, beside its fields, one named like the tag serde reads its
/// type from: the record would hold a field its reader does not, so it is refused as
/// content, whatever the field says.
#[test]
fn an_event_with_a_field_named_like_its_type_tag_is_refused() {
    refused_everywhere(37, Kind::Case, "content", |tx, doc| {
        let events = list(doc, "events");
        let last: guihe_protocol::event::Event =
            autosurgeon::hydrate_prop(doc, &events, doc.length(&events) - 1).unwrap();
        let mut copy = last.clone();
        copy.id = guihe_protocol::id::EventId::from_bytes([37; 16]);
        copy.hlc.wall_ms = u64::MAX / 4;
        copy.after = Vec::new();
        copy.body = guihe_protocol::event::Body::Amend(guihe_protocol::event::Amend {
            target: None,
            change: guihe_protocol::event::Change::Note(guihe_protocol::event::Note {
                note: "补充".into(),
            }),
            reason: "补充".into(),
        });
        let at = doc.length(&events);
        autosurgeon::reconcile_insert(&mut *tx, events.clone(), at, &copy).unwrap();
        let (_, event) = tx.get(&events, at)?.unwrap();
        let (_, body) = tx.get(&event, "body")?.unwrap();
        let (_, amend) = tx.get(&body, "amend")?.unwrap();
        tx.put(&amend, "type", "amend")?;
        Ok(())
    });
}

#[test]
fn a_number_written_signed_is_refused() {
    let mut s = Scene::new(35, Kind::Case);
    let honest = s.county.work(&mut s.village, s.id).remove(0);
    let forged = altered(&s, &honest, |e| {
        use automerge::legacy::{Key, OpType};
        for op in &mut e.operations {
            if op.key == Key::Map("at_ms".into())
                && let OpType::Put(ScalarValue::Uint(u)) = op.action
            {
                op.action = OpType::Put(ScalarValue::Int(u as i64));
            }
        }
    });
    let before = held(&s.township, s.id);
    deliver(&mut s, false, std::slice::from_ref(&forged));
    assert_eq!(held(&s.township, s.id), before);
    assert_eq!(s.township.store.quarantined().unwrap()[0].code, "content");
}

/// The signer's own node learns that its township refused its change, and writes no more
/// to that record (its later changes could never reach the township), with a message in
/// Chinese; its other records are written and synced as before. A village cannot stop its
/// township writing the same way.
#[test]
fn the_signers_node_learns_of_its_refused_change_and_writes_no_more_to_that_record() {
    use guihe_protocol::record::CommandError;
    use guihe_protocol::replica::ReplicaError;
    use guihe_protocol::wire::{Message, Refusal};
    let mut s = Scene::new(81, Kind::Case);
    let forged = s.forge(|tx, _| tx.put(ROOT, "restricted", false));
    sync(&s.county, &mut s.village, &mut s.township).unwrap();
    assert!(s.township.store.is_quarantined(&forged.hash).unwrap());
    let own = s.village.store.own_refused().unwrap();
    assert_eq!(own.len(), 1, "{own:?}");
    assert_eq!(own[0].record, s.id);
    assert_eq!(own[0].code, "root_write");
    assert_eq!(own[0].by, s.township.identity.key.public());

    s.county.now_ms += 60_000;
    let err = s
        .village
        .apply(
            s.id,
            s.county.now_ms,
            &mut s.county.rng,
            &s.county.rules,
            note(),
        )
        .unwrap_err();
    assert!(
        matches!(
            err,
            ReplicaError::Command(CommandError::RefusedUpstream { .. })
        ),
        "{err:?}"
    );
    let message = err.to_string();
    assert!(message.contains("已被上级节点拒收"), "{message}");
    assert!(message.contains("改写了登记后不可更改的字段"), "{message}");

    // The village's next record is written and reaches the county as before.
    let next = s.county.case(&mut s.village, &[V1], 1);
    sync(&s.county, &mut s.village, &mut s.township).unwrap();
    sync(&s.county, &mut s.township, &mut s.top).unwrap();
    assert!(same(&s.village, &s.top, next));

    // A village telling its township that the township's own change was refused is not
    // heeded.
    let mine = s.county.work(&mut s.township, next);
    let mut link = Link::open(&s.county, &s.village, &s.township);
    link.settle(&s.county, &mut s.village, &mut s.township);
    let claim = Message::Refused(vec![Refusal {
        hash: mine[0].hash.0,
        code: "root_write".into(),
    }]);
    link.b
        .handle(
            &claim.encode().unwrap(),
            &mut s.township.store,
            s.county.now_ms,
        )
        .unwrap();
    assert!(s.township.store.own_refused().unwrap().is_empty());
    s.county.work(&mut s.township, next);
}
