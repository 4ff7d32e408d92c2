//! The change rules with real `guihe run` processes: a township refuses a village's
//! rule-breaking change and keeps it aside, shows it on its status, never passes it to the
//! county, and keeps syncing the village's honest records; a change that waits for its
//! dependency through a restart is refused when the dependency comes, and the node stays
//! up.

use std::time::Duration;

use automerge::transaction::{CommitOptions, Transactable};
use automerge::{ObjType, ROOT, ReadDoc, Value};
use guihe_node::local::Local;
use guihe_protocol::id::RecordId;
use guihe_protocol::signed::{sign, verify_batch};
use guihe_protocol::store::{Store, StoreCerts, StoredChange};
use guihe_tests::Lab;
use rand_core::SeedableRng;

const COUNTY: &str = "500240000000";
const TOWNSHIP: &str = "500240001000";
const VILLAGE: &str = "500240001201";

fn new_case(lab: &Lab, node: &str, summary: &str) -> String {
    lab.ok(
        node,
        &[
            "case",
            "new",
            "--village",
            VILLAGE,
            "--category",
            "neighbour",
            "--summary",
            summary,
            "--party",
            "冉光荣",
        ],
    )
    .trim()
    .to_string()
}

fn status(lab: &Lab, node: &str) -> serde_json::Value {
    std::fs::read_to_string(lab.data(node).join("status.json"))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default()
}

fn quarantined(lab: &Lab, node: &str) -> Vec<String> {
    status(lab, node)["quarantined"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|q| q["code"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// The changes of a record at a stopped node, oldest first.
fn changes_of(local: &Local, id: RecordId) -> Vec<StoredChange> {
    let store = &local.replica.store;
    store
        .doc(id)
        .unwrap()
        .unwrap()
        .get_changes(&[])
        .iter()
        .map(|c| store.change(&c.hash()).unwrap().unwrap())
        .collect()
}

#[test]
fn a_township_keeps_a_villages_bad_changes_aside_and_stays_up_through_a_restart() {
    let mut lab = Lab::new("trust");
    lab.add("county", "county", COUNTY, None);
    lab.add("township", "township", TOWNSHIP, Some("county"));
    lab.add("village", "village", VILLAGE, Some("township"));
    let id = new_case(&lab, "village", "山林边界争议");
    for n in ["county", "township", "village"] {
        lab.start(n);
    }
    lab.wait_for("the case at the county", Duration::from_secs(60), || {
        lab.show("county", &id).is_some()
    });
    lab.kill("village");
    lab.kill("township");

    // Two more entries at the village, made while it is away from the township.
    lab.ok("village", &["case", "event", &id, "--type", "accept"]);
    lab.ok(
        "village",
        &[
            "case",
            "event",
            &id,
            "--type",
            "session",
            "--note",
            "双方陈述",
            "--place",
            "村委会",
        ],
    );
    let record: RecordId = id.parse().unwrap();
    let village = Local::open(&lab.data("village")).unwrap();
    let all = changes_of(&village, record);
    let (accept, session) = (&all[all.len() - 2], &all[all.len() - 1]);
    // The session entry altered to write a value into an object that does not exist (which
    // only the record can tell), and signed by the village: Automerge cannot apply it.
    let bad = {
        let parsed = automerge::Change::from_bytes(session.signed.bytes.clone()).unwrap();
        let mut e = parsed.decode();
        let actor = e.actor_id.clone();
        let op = e
            .operations
            .iter_mut()
            .find(|op| matches!(op.action, automerge::legacy::OpType::Put(_)))
            .unwrap();
        op.obj = automerge::legacy::ObjectId::Id(automerge::legacy::OpId(9_999_999, actor));
        e.hash = None;
        let bad = automerge::Change::from(e);
        let r = village.replica.record(record).unwrap();
        sign(&village.replica.identity.key, &r, &bad)
    };
    let village_cert = village.replica.identity.cert.clone();
    drop(village);

    // The bad change reaches the township (as from a bundle or another carrier) before the
    // entry it depends on: it waits there, stored, through a restart.
    {
        let mut township = Local::open(&lab.data("township")).unwrap();
        township
            .replica
            .store
            .put_certificate(&village_cert)
            .unwrap();
        let checked = verify_batch(
            vec![bad.clone()],
            &StoreCerts(&township.replica.store),
            &Default::default(),
        )
        .unwrap();
        let ingested = guihe_protocol::ingest::ingest(
            &mut township.replica.store,
            checked,
            guihe_node::local::now_ms(),
        )
        .unwrap();
        assert_eq!(ingested.stored.len(), 1);
        assert!(ingested.applied.is_empty());
        assert_eq!(township.replica.store.pending(record).unwrap().len(), 1);
    }
    lab.start("township");
    lab.wait_for("the township's status", Duration::from_secs(30), || {
        status(&lab, "township")["pending"].as_u64() == Some(1)
    });

    // The village comes back: the entries it depends on arrive, the bad change is refused,
    // kept aside, and the township stays up.
    lab.start("village");
    // (Refused for the missing object, or, if the honest session entry with the same
    // sequence number was applied first, for its sequence number.)
    lab.wait_for("the bad change refused", Duration::from_secs(60), || {
        quarantined(&lab, "township").len() == 1
    });
    let first_code = quarantined(&lab, "township").remove(0);
    assert!(
        ["unknown_object", "sequence"].contains(&first_code.as_str()),
        "{first_code}"
    );
    assert!(lab.exited("township").is_none(), "{}", lab.logs());
    assert_eq!(status(&lab, "township")["pending"].as_u64(), Some(0));
    let shown: serde_json::Value =
        serde_json::from_str(&lab.show("township", &id).unwrap()).unwrap();
    assert_eq!(shown["sessions"], 1, "the honest session arrived: {shown}");
    assert_eq!(shown["events"], 3, "{shown}");
    let _ = (accept, session);

    // A forged change from the village itself: every event deleted.
    lab.kill("village");
    {
        let village = Local::open(&lab.data("village")).unwrap();
        let mut doc = village.replica.store.doc(record).unwrap().unwrap();
        let before_record = village.replica.record(record).unwrap();
        let before = doc.get_heads();
        doc.set_actor(village.replica.writer.actor.clone());
        let now = guihe_node::local::now_ms();
        doc.transact_with(
            |_| CommitOptions::default().with_time(now as i64),
            |tx| {
                let events = match tx.get(ROOT, "events")? {
                    Some((Value::Object(ObjType::List), id)) => id,
                    _ => unreachable!("a record has events"),
                };
                for i in (0..tx.length(&events)).rev() {
                    tx.delete(&events, i)?;
                }
                Ok::<_, automerge::AutomergeError>(())
            },
        )
        .unwrap();
        let change = doc.get_changes(&before).pop().unwrap();
        let forged = StoredChange {
            hash: change.hash(),
            time_ms: now,
            deps: change.deps().to_vec(),
            signer: village.replica.identity.key.public(),
            signed: sign(&village.replica.identity.key, &before_record, &change),
        };
        let mut village = village;
        village.replica.store.put_changes(&[forged]).unwrap();
        village
            .replica
            .store
            .put_doc(record, &doc, &Default::default())
            .unwrap();
    }
    // And an honest case after it.
    let honest = new_case(&lab, "village", "宅基地滴水纠纷");
    lab.start("village");
    lab.wait_for(
        "the honest case at the county",
        Duration::from_secs(60),
        || lab.show("county", &honest).is_some(),
    );
    lab.wait_for("the forged change refused", Duration::from_secs(30), || {
        quarantined(&lab, "township").len() == 2
    });
    let codes = quarantined(&lab, "township");
    assert!(codes.contains(&"delete".to_string()), "{codes:?}");
    // The county never heard of either, and every node still shows the whole timeline.
    assert!(quarantined(&lab, "county").is_empty());
    for n in ["township", "county"] {
        let shown: serde_json::Value = serde_json::from_str(&lab.show(n, &id).unwrap()).unwrap();
        assert_eq!(shown["events"], 3, "{n}: {shown}");
    }
    let text = lab.ok("township", &["status"]);
    assert!(text.contains("已隔离的变更"), "{text}");
    assert!(text.contains("删除了记录内容"), "{text}");
    // The township's quarantine report reaches the county, which lists what the township
    // refused; the village never holds it.
    lab.wait_for(
        "the township's report at the county",
        Duration::from_secs(60),
        || status(&lab, "county")["reported"].as_array().map(Vec::len) == Some(2),
    );
    let reported = status(&lab, "county")["reported"].clone();
    assert!(
        reported
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["office"] == TOWNSHIP && r["signer_division"] == VILLAGE),
        "{reported}"
    );
    assert!(lab.ok("county", &["status"]).contains("下级上报"));
    assert_eq!(status(&lab, "township")["reported"], serde_json::json!([]));
    assert_eq!(status(&lab, "village")["reported"], serde_json::json!([]));

    // The quarantine survives a restart.
    lab.kill("township");
    lab.start("township");
    lab.wait_for(
        "the township's status again",
        Duration::from_secs(30),
        || quarantined(&lab, "township").len() == 2,
    );
    // The village learned that its change to the record was refused: it says so, and
    // refuses to write to that record any more, in Chinese.
    lab.wait_for(
        "the village told of its refused change",
        Duration::from_secs(30),
        || {
            status(&lab, "village")["refused_upstream"]
                .as_array()
                .is_some_and(|a| a.len() == 1)
        },
    );
    assert_eq!(
        status(&lab, "village")["refused_upstream"][0]["record"],
        id.as_str()
    );
    assert!(
        lab.ok("village", &["status"])
            .contains("上级拒收了本机对记录")
    );

    // The county's settings, installed on the running county node, reach the village
    // through the township.
    let county_key = lab.dir.join("county/county.key");
    lab.ok(
        "county",
        &[
            "settings",
            "--county-key",
            guihe_tests::arg(&county_key),
            "--record-schema",
            "1",
        ],
    );
    lab.wait_for(
        "the county's settings at the village",
        Duration::from_secs(60),
        || status(&lab, "village")["settings_version"].as_u64() > Some(0),
    );
    assert_eq!(status(&lab, "village")["record_schema"], 1);
    lab.kill("village");
    let refused = lab
        .guihe(
            "village",
            &[
                "case",
                "event",
                &id,
                "--type",
                "session",
                "--note",
                "补充",
                "--place",
                "村委会",
            ],
        )
        .unwrap_err();
    assert!(refused.contains("已被上级节点拒收"), "{refused}");
    let village = Local::open(&lab.data("village")).unwrap();
    assert!(
        village
            .replica
            .store
            .records()
            .unwrap()
            .iter()
            .all(|r| !r.is_owned()),
        "a village holds no division's record"
    );
}

/// The peer id of an enrolled node, from its key file.
fn peer_id(lab: &Lab, name: &str) -> libp2p::PeerId {
    let key = guihe_node::keys::read_key(&lab.data(name).join("node.key")).unwrap();
    libp2p::identity::Keypair::ed25519_from_bytes(key.secret())
        .unwrap()
        .public()
        .to_peer_id()
}

#[test]
fn a_bootstrap_address_pinned_to_a_peer_id_reaches_that_node_only() {
    let mut lab = Lab::new("pinned");
    lab.add("township", "township", TOWNSHIP, None);
    lab.add("village", "village", VILLAGE, Some("township"));
    lab.add("other", "village", "500240001202", Some("township"));
    let port = lab.port("township");
    // The village pins the township's own id; the other village pins a wrong one.
    let right = format!(
        "/ip4/127.0.0.1/tcp/{port}/p2p/{}",
        peer_id(&lab, "township")
    );
    let wrong = format!("/ip4/127.0.0.1/tcp/{port}/p2p/{}", peer_id(&lab, "village"));
    lab.ok("village", &["init", "--bootstrap", &right]);
    lab.ok("other", &["init", "--bootstrap", &wrong]);
    let id = new_case(&lab, "village", "山林边界争议");
    let other = lab
        .ok(
            "other",
            &[
                "case",
                "new",
                "--village",
                "500240001202",
                "--category",
                "neighbour",
                "--summary",
                "邻里纠纷",
                "--party",
                "冉光荣",
            ],
        )
        .trim()
        .to_string();
    for n in ["township", "village", "other"] {
        lab.start(n);
    }
    lab.wait_for("the pinned village's case", Duration::from_secs(60), || {
        lab.show("township", &id).is_some()
    });
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        lab.show("township", &other).is_none(),
        "a village pinned to another id never syncs with whoever answers"
    );
}

/// A stolen village PC: the county revokes its key with a frontier made from what the
/// county holds. The thief writes with the clock set back to before the revocation: the
/// bundle it carries is imported with those changes refused and kept aside, and its own
/// node is refused at hello; what the office recorded before stands.
#[test]
fn a_stolen_pcs_backdated_changes_are_refused_from_a_bundle_and_directly() {
    let mut lab = Lab::new("stolen");
    lab.add("county", "county", COUNTY, None);
    lab.add("village", "village", VILLAGE, Some("county"));
    let id = new_case(&lab, "village", "山林边界争议");
    lab.ok("village", &["case", "event", &id, "--type", "accept"]);
    lab.start("county");
    lab.start("village");
    lab.wait_for("the case at the county", Duration::from_secs(60), || {
        lab.show("county", &id)
            .is_some_and(|s| s.contains("\"status\": \"accepted\""))
    });
    lab.kill("village");
    // Reported stolen: revoked from now, with the frontier of what the county holds.
    let revoked_from = guihe_node::local::now_ms();
    let list = lab.dir.join("revocations.bin");
    let county_key = lab.dir.join("county/county.key");
    guihe_tests::ok(&[
        "county",
        "revoke",
        "--county-key",
        guihe_tests::arg(&county_key),
        "--cert",
        guihe_tests::arg(&lab.dir.join("village.cert")),
        "--list",
        guihe_tests::arg(&list),
    ]);
    let installed = lab.ok(
        "county",
        &[
            "revocations",
            "--list",
            guihe_tests::arg(&list),
            "--county-key",
            guihe_tests::arg(&county_key),
        ],
    );
    assert!(
        installed.contains("frontier version 1 installed"),
        "{installed}"
    );

    // The thief writes with the PC's clock set back to before the revocation.
    let backdated = revoked_from - 500;
    let (later, fresh) = {
        let mut village = Local::open(&lab.data("village")).unwrap();
        let rules = guihe_protocol::deadline::Deadlines::default();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(9);
        let record: RecordId = id.parse().unwrap();
        let (_, later) = village
            .replica
            .apply(
                record,
                backdated,
                &mut rng,
                &rules,
                guihe_protocol::record::Command::Event {
                    at_ms: None,
                    body: guihe_protocol::event::Body::Session(guihe_protocol::event::Session {
                        place: "村委会".into(),
                        note: "冒名记录".into(),
                    }),
                },
            )
            .unwrap();
        let new = guihe_protocol::workload::new_record(
            &mut rng,
            guihe_protocol::model::Kind::Case,
            &[VILLAGE.parse().unwrap()],
        );
        let (fresh, _) = village
            .replica
            .create(backdated + 1, &mut rng, &rules, new)
            .unwrap();
        (later[0].hash, fresh)
    };
    assert!(backdated < revoked_from);

    // Through a bundle the thief carries to the county office.
    let bundle = lab.dir.join("stolen.bundle");
    lab.ok(
        "village",
        &["bundle", "export", "--out", guihe_tests::arg(&bundle)],
    );
    lab.kill("county");
    let imported = lab.ok("county", &["bundle", "import", guihe_tests::arg(&bundle)]);
    assert!(imported.contains("已隔离 2"), "{imported}");
    {
        let county = Local::open(&lab.data("county")).unwrap();
        assert!(!county.replica.store.has_change(&later).unwrap());
        assert!(county.replica.store.doc(fresh).unwrap().is_none());
        let kept = county.replica.store.quarantined().unwrap();
        assert!(kept.iter().all(|q| q.code == "revoked"), "{kept:?}");
    }
    // Directly: the thief's node is refused at hello and the county gets nothing.
    lab.start("county");
    lab.start("village");
    std::thread::sleep(Duration::from_secs(4));
    assert!(
        lab.show("county", &fresh.to_string()).is_none(),
        "{}",
        lab.logs()
    );
    let shown: serde_json::Value = serde_json::from_str(&lab.show("county", &id).unwrap()).unwrap();
    assert_eq!(
        shown["status"], "accepted",
        "what the office recorded stands"
    );
}
