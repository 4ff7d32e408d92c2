//! Records outlive versions: records written by every earlier release still load, fold and
//! view, and their signed changes still verify and apply (or, where a later release closed
//! a hole, are refused for a stated reason).
//!
//! Each release that changes what is written leaves a fixture under `tests/fixtures/`:
//! the county root's public key, the certificates, every signed change and each record's
//! saved document, made by that release's own code (`write_fixture`, run by hand with
//! `GUIHE_WRITE_FIXTURE=<dir> cargo test -p guihe-protocol --test versions -- --ignored`).

mod common;

use std::path::{Path, PathBuf};

use common::mesh::*;
use guihe_protocol::cert::{Certificate, Role};
use guihe_protocol::event::{Body, Note, Outcome};
use guihe_protocol::id::NodeId;
use guihe_protocol::model::{Kind, Party, PartyRole};
use guihe_protocol::record::{Command, Record};
use guihe_protocol::signed::SignedChange;
use guihe_protocol::store::Store;
use guihe_protocol::workload;
use serde::{Deserialize, Serialize};

/// What a fixture holds. Encoded with postcard, whose encoding of these types has not
/// changed since the first release.
#[derive(Debug, Serialize, Deserialize)]
struct Fixture {
    /// The release that wrote it.
    release: String,
    /// The county root's public key.
    root: NodeId,
    /// The time the fixture was made (its certificates are valid then).
    now_ms: u64,
    /// Every certificate of a signer.
    certs: Vec<Certificate>,
    /// Every change, in the order the township received them.
    changes: Vec<SignedChange>,
    /// Each record's saved document at the township.
    docs: Vec<Vec<u8>>,
    /// What the release showed for each record: (id, status code, summary, events).
    views: Vec<(String, String, String, usize)>,
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// Writes the fixture of the code as it is now. Run by hand when a release changes what is
/// written; the fixtures of earlier releases are never rewritten.
#[test]
#[ignore]
fn write_fixture() {
    let Ok(dir) = std::env::var("GUIHE_WRITE_FIXTURE") else {
        return;
    };
    let mut county = County::new(2026);
    let mut village = county.node(Role::Village, "500240101201");
    let mut neighbour = county.node(Role::Village, "500240101202");
    let mut township = county.node(Role::Township, "500240101000");
    let v1 = "500240101201";
    let v2 = "500240101202";
    // A spread of records, each worked through many commands of the workload (which
    // includes summary edits, added parties and corrections).
    let mut ids = Vec::new();
    for i in 0..6 {
        ids.push(county.case(&mut village, &[v1], 6 + i));
    }
    ids.push(county.case(&mut neighbour, &[v2], 5));
    ids.push(county.case(&mut township, &[v1, v2], 4));
    // A petition worked to its end.
    county.now_ms += 60_000;
    let new = workload::new_record(&mut county.rng, Kind::Petition, &[v1.parse().unwrap()]);
    let (petition, _) = village
        .create(county.now_ms, &mut county.rng, &county.rules, new)
        .unwrap();
    for _ in 0..10 {
        county.work(&mut village, petition);
    }
    ids.push(petition);
    // A restricted record: a minor among the parties.
    county.now_ms += 60_000;
    let mut new = workload::new_record(&mut county.rng, Kind::Case, &[v1.parse().unwrap()]);
    new.parties.push(Party {
        name: "小明".into(),
        role: PartyRole::Other,
        minor: true,
        contact: None,
        details: None,
    });
    let (minor, _) = village
        .create(county.now_ms, &mut county.rng, &county.rules, new)
        .unwrap();
    ids.push(minor);
    // The township and the village work on the same records apart, then meet.
    sync(&county, &mut village, &mut township).unwrap();
    sync(&county, &mut neighbour, &mut township).unwrap();
    for id in [ids[0], ids[1], petition] {
        county.work(&mut village, id);
        county.work(&mut township, id);
    }
    county.now_ms += 60_000;
    let _ = township.apply(
        ids[2],
        county.now_ms,
        &mut county.rng,
        &county.rules,
        Command::Event {
            at_ms: None,
            body: Body::JudicialResult(Outcome {
                granted: true,
                note: "（2026）渝0240民特12号".into(),
            }),
        },
    );
    county.now_ms += 60_000;
    let _ = village.apply(
        ids[3],
        county.now_ms,
        &mut county.rng,
        &county.rules,
        Command::EditSummary {
            text: "两户因宅基地界线发生争执（村里补充）".into(),
            reason: "补充".into(),
        },
    );
    let _ = village.apply(
        ids[3],
        county.now_ms,
        &mut county.rng,
        &county.rules,
        Command::Event {
            at_ms: None,
            body: Body::FollowUp(Note {
                note: "电话回访".into(),
            }),
        },
    );
    sync(&county, &mut village, &mut township).unwrap();
    sync(&county, &mut neighbour, &mut township).unwrap();

    let mut changes = Vec::new();
    let mut docs = Vec::new();
    let mut views = Vec::new();
    for id in &ids {
        let record = township.record(*id).unwrap();
        for c in record.doc().get_changes(&[]) {
            changes.push(township.store.change(&c.hash()).unwrap().unwrap().signed);
        }
        docs.push(record.save());
        let view = record.view(&county.rules).unwrap();
        views.push((
            id.to_string(),
            view.common().status.code().to_string(),
            view.common().summary.clone(),
            record.events().unwrap().events.len(),
        ));
    }
    let certs = [&village, &neighbour, &township]
        .iter()
        .map(|n| n.identity.cert.clone())
        .collect();
    let fixture = Fixture {
        release: env!("CARGO_PKG_VERSION").into(),
        root: county.root.public(),
        now_ms: county.now_ms,
        certs,
        changes,
        docs,
        views,
    };
    let out = fixtures().join(dir);
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(
        out.join("records.bin"),
        postcard::to_allocvec(&fixture).unwrap(),
    )
    .unwrap();
}

fn load(release: &str) -> Fixture {
    let bytes = std::fs::read(fixtures().join(release).join("records.bin")).unwrap();
    postcard::from_bytes(&bytes).unwrap()
}

/// Every saved record of release 0.1 loads, folds and views as that release showed it.
#[test]
fn records_of_release_0_1_load_fold_and_view() {
    let fixture = load("v0.1");
    assert_eq!(fixture.release, "0.1.0");
    assert_eq!(fixture.docs.len(), fixture.views.len());
    assert!(fixture.docs.len() >= 10);
    let rules = guihe_protocol::deadline::Deadlines::default();
    for (bytes, (id, status, summary, events)) in fixture.docs.iter().zip(&fixture.views) {
        let record = Record::load(bytes).unwrap();
        assert_eq!(&record.id().to_string(), id);
        record.fold(&rules).unwrap();
        let view = record.view(&rules).unwrap();
        assert_eq!(view.id(), record.id());
        assert_eq!(view.common().status.code(), status, "{id}");
        assert_eq!(&view.common().summary, summary, "{id}");
        assert_eq!(record.events().unwrap().events.len(), *events, "{id}");
    }
}

/// Every saved record written in schema 1 by the last build before schema 2 (the fixture
/// `schema1`) loads, folds and views as that build showed it, and every one of its changes
/// passes today's change rules.
#[test]
fn records_of_schema_1_load_fold_view_and_their_changes_pass_the_rules() {
    use guihe_protocol::rules::{History, apply};
    use std::collections::BTreeMap;
    let fixture = load("schema1");
    let rules = guihe_protocol::deadline::Deadlines::default();
    assert!(fixture.docs.len() >= 10);
    for (bytes, (id, status, summary, events)) in fixture.docs.iter().zip(&fixture.views) {
        let record = Record::load(bytes).unwrap();
        assert_eq!(&record.id().to_string(), id);
        let view = record.view(&rules).unwrap();
        assert_eq!(view.common().status.code(), status, "{id}");
        assert_eq!(&view.common().summary, summary, "{id}");
        assert_eq!(record.events().unwrap().events.len(), *events, "{id}");
        // Nothing of schema 2 is read into them.
        assert!(view.common().matter.is_none() && view.common().numbers.is_empty());
        assert!(view.common().parties.iter().all(|p| p.details.is_none()));
    }
    let mut docs: BTreeMap<String, (automerge::Automerge, History)> = BTreeMap::new();
    for signed in &fixture.changes {
        let change = automerge::Change::from_bytes(signed.bytes.clone()).unwrap();
        let signer = guihe_protocol::signed::signer_of(&change).unwrap();
        let (doc, history) = docs.entry(signed.record.to_string()).or_default();
        apply(doc, history, &change, signer, None).unwrap();
    }
    assert!(fixture.changes.len() > 60, "{}", fixture.changes.len());
}

/// Every change of release 0.1 passes the change rules, except its summary edits: 0.1
/// edited the summary text in place, which the rules now refuse (a correction is an amend
/// event that carries the new text), so that no node can blank a record's summary.
#[test]
fn changes_of_release_0_1_pass_the_rules_but_summary_edits_in_place() {
    use guihe_protocol::rules::{History, RuleError, apply};
    use std::collections::BTreeMap;
    let fixture = load("v0.1");
    let mut docs: BTreeMap<String, (automerge::Automerge, History)> = BTreeMap::new();
    let mut passed = 0;
    let mut refused = 0;
    for signed in &fixture.changes {
        let change = automerge::Change::from_bytes(signed.bytes.clone()).unwrap();
        let signer = guihe_protocol::signed::signer_of(&change).unwrap();
        let (doc, history) = docs.entry(signed.record.to_string()).or_default();
        let mut trial = doc.clone();
        match apply(&mut trial, history, &change, signer, None) {
            Ok(()) => {
                *doc = trial;
                passed += 1;
            }
            Err(e) => {
                // An edit in place deletes characters of the summary, or inserts into it.
                assert!(
                    matches!(e, RuleError::Delete | RuleError::ExistingObject),
                    "{}: {e}",
                    signed.record
                );
                assert_eq!(
                    change.message(),
                    Some("更正"),
                    "only corrections are refused"
                );
                refused += 1;
                // Later changes of the record build on it; apply it as 0.1 did.
                doc.apply_changes([change.clone()]).unwrap();
                *history = History::of(doc);
            }
        }
    }
    assert!(passed > 60, "{passed}");
    assert!(refused > 0, "the fixture holds summary edits");
}
