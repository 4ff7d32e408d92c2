//! The bodies of the protocol's fuzz targets: the wire decoder, a live sync session fed
//! hostile frames, and certificate and revocation list parsing with verification.
//!
//! The same file is the library of the fuzz crate (`fuzz/src/lib.rs`) and a module of the
//! workspace test that replays the seed corpus and every crash found
//! (`protocol/tests/fuzzing.rs`, through `#[path]`), so an input does in `cargo test`
//! exactly what it did under libFuzzer. A body panics only when an invariant breaks: an
//! error the code under test returns is a correct answer to bad input.
//!
//! Everything is deterministic (fixed keys, times and seeded randomness), so the seed
//! corpus [`seeds`] makes is the same on every machine.

#![allow(dead_code, unreachable_pub)]

use std::collections::BTreeSet;
use std::sync::OnceLock;

use automerge::ChangeHash;
use guihe_protocol::cert::{
    CertBody, Certificate, Frontier, FrontierBody, Identity, KeyFrontier, Keypair, RevocationBody,
    RevocationList, Revoked, Role, Root,
};
use guihe_protocol::deadline::Deadlines;
use guihe_protocol::division::{Division, VillageCode};
use guihe_protocol::id::RecordId;
use guihe_protocol::model::Kind;
use guihe_protocol::replica::Replica;
use guihe_protocol::store::{Key, MemStore, Store};
use guihe_protocol::sync::{Config, Session};
use guihe_protocol::wire::{MESSAGE_BYTES_MAX, Message, OLDEST_PROTOCOL_VERSION, PROTOCOL_VERSION};
use guihe_protocol::workload;
use rand_chacha::ChaCha8Rng;
use rand_core::SeedableRng;

/// 2026-03-01, when the fixture's records were made.
pub const T0: u64 = 1_772_323_200_000;
const DAY_MS: u64 = 86_400_000;
/// The time sessions run at.
pub const NOW_MS: u64 = T0 + DAY_MS;
/// The county of the fixture.
pub const COUNTY: &str = "500240000000";
/// The township whose node the session target drives.
pub const TOWNSHIP: &str = "500240101000";
/// A village of that township.
pub const VILLAGE: &str = "500240101201";
/// A village of another township.
pub const OTHER_VILLAGE: &str = "500240102201";

/// The county and its nodes, with their stores.
pub struct Fixture {
    /// The county root.
    pub root: Root,
    /// The township node of [`TOWNSHIP`].
    pub township: Identity,
    /// The village node of [`VILLAGE`].
    pub village: Identity,
    /// The village node of [`OTHER_VILLAGE`].
    pub other: Identity,
    /// The county node.
    pub county: Identity,
    /// Every certificate the root issued.
    pub issued: Vec<Certificate>,
    /// The root's revocation list (version 1; revokes a certificate no node here holds).
    pub revocations: RevocationList,
    /// The root's frontier for that list (version 1).
    pub frontier: Frontier,
    /// The township's store: a case of [`VILLAGE`] it recorded.
    pub township_store: MemStore,
    /// The village's store: two cases it recorded, which the township lacks.
    pub village_store: MemStore,
    /// The other village's store: one case, outside the township.
    pub other_store: MemStore,
}

/// The fixture, built once per process.
pub fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(build)
}

fn build() -> Fixture {
    let root = Root::new(Keypair::from_secret([1; 32]));
    let mut issued = Vec::new();
    let mut identity = |secret: u8, serial: u64, role: Role, division: &str| {
        let key = Keypair::from_secret([secret; 32]);
        let cert = root
            .issue(CertBody {
                serial,
                node: key.public(),
                role,
                division: division.parse().expect("a fixture division"),
                not_before_ms: T0 - DAY_MS,
                not_after_ms: T0 + 365 * DAY_MS,
            })
            .expect("a fixture certificate");
        issued.push(cert.clone());
        Identity { key, cert }
    };
    let township = identity(2, 1, Role::Township, TOWNSHIP);
    let village = identity(3, 2, Role::Village, VILLAGE);
    let other = identity(4, 3, Role::Village, OTHER_VILLAGE);
    let county = identity(5, 4, Role::County, COUNTY);
    let revocations = root
        .revocations(RevocationBody {
            version: 1,
            revoked: vec![Revoked {
                serial: 99,
                node: Keypair::from_secret([6; 32]).public(),
                from_ms: T0,
            }],
        })
        .expect("a fixture revocation list");
    let frontier = root
        .frontier(FrontierBody {
            version: 1,
            keys: vec![KeyFrontier {
                node: Keypair::from_secret([6; 32]).public(),
                records: Vec::new(),
            }],
        })
        .expect("a fixture frontier");
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let mut time = T0;
    let township_store = store_with(&township, VILLAGE, 1, &mut rng, &mut time);
    let village_store = store_with(&village, VILLAGE, 2, &mut rng, &mut time);
    let other_store = store_with(&other, OTHER_VILLAGE, 1, &mut rng, &mut time);
    Fixture {
        root,
        township,
        village,
        other,
        county,
        issued,
        revocations,
        frontier,
        township_store,
        village_store,
        other_store,
    }
}

/// A store holding `cases` cases of `village` recorded by `identity`, each with two more
/// commands, and the certificate of its node.
fn store_with(
    identity: &Identity,
    village: &str,
    cases: usize,
    rng: &mut ChaCha8Rng,
    time: &mut u64,
) -> MemStore {
    let mut store = MemStore::new();
    store
        .put_certificate(&identity.cert)
        .expect("the memory store cannot fail");
    let mut replica = Replica::new(
        identity.clone(),
        store,
        "worker".parse().expect("a staff id"),
        1,
    );
    let rules = Deadlines::default();
    let villages: Vec<VillageCode> = vec![village.parse().expect("a fixture village")];
    for _ in 0..cases {
        *time += 60_000;
        let new = workload::new_record(rng, Kind::Case, &villages);
        let (id, _) = replica
            .create(*time, rng, &rules, new)
            .expect("a fixture case");
        for _ in 0..2 {
            *time += 60_000;
            let fold = replica
                .record(id)
                .expect("the case")
                .fold(&rules)
                .expect("its fold");
            if let Some(command) = workload::next_command(rng, &fold) {
                replica
                    .apply(id, *time, rng, &rules, command)
                    .expect("a fixture command");
            }
        }
    }
    replica.store
}

/// What a store holds that a refused input must leave alone: every change key, every
/// record with its heads and the changes still waiting for their dependencies.
pub type Snapshot = (
    Vec<Key>,
    Vec<(RecordId, Vec<ChangeHash>, BTreeSet<ChangeHash>)>,
);

/// The snapshot of any store.
pub fn snapshot<S: Store>(store: &S) -> Snapshot {
    let county: Division = COUNTY.parse().expect("the fixture county");
    let keys = store.keys(county, &|_| true).expect("the store's keys");
    let records = store
        .records()
        .expect("the store's records")
        .into_iter()
        .map(|r| {
            let heads = store
                .doc(r)
                .expect("a document")
                .map(|d| d.get_heads())
                .unwrap_or_default();
            (r, heads, store.pending(r).expect("a pending set"))
        })
        .collect();
    (keys, records)
}

/// Target `wire`: any bytes decode to a message or a typed error, and a message decoded
/// encodes again, within the bound, to the same message.
pub fn wire(data: &[u8]) {
    match Message::decode(data) {
        Ok(message) => {
            let bytes = message.encode().expect("a decoded message encodes");
            assert!(bytes.len() <= data.len(), "the encoding grew");
            assert_eq!(bytes.len(), message.encoded_len());
            assert_eq!(Message::decode(&bytes).as_ref(), Ok(&message));
        }
        Err(e) => drop(e.to_string()),
    }
}

/// The first byte of a `session` input.
pub mod flags {
    /// The harness delivers a valid `Hello` from the peer before the frames.
    pub const HELLO: u8 = 1;
    /// The township's session is the initiator (it dialled).
    pub const INITIATOR: u8 = 2;
    /// The township's store holds the revocation list.
    pub const REVOCATIONS: u8 = 4;
    /// The peer is the county node rather than the village.
    pub const COUNTY_PEER: u8 = 8;
}

/// Splits a `session` input's frames: each is a two-byte little-endian length and that
/// many bytes (or what is left).
pub fn frames(mut data: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    while !data.is_empty() {
        let (len, rest) = match data {
            [lo, hi, rest @ ..] => (usize::from(u16::from_le_bytes([*lo, *hi])), rest),
            [_] => (0, &[][..]),
            [] => unreachable!(),
        };
        let take = len.min(rest.len());
        out.push(&rest[..take]);
        data = &rest[take..];
    }
    out
}

/// Joins frames into a `session` input.
pub fn session_input(flags: u8, frames: &[Vec<u8>]) -> Vec<u8> {
    let mut out = vec![flags];
    for f in frames {
        let len = u16::try_from(f.len()).expect("a seed frame under 64 KiB");
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(f);
    }
    out
}

/// What a `session` input did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRun {
    /// Frames handled without error.
    pub accepted: usize,
    /// The error that ended the session, if one did.
    pub error: Option<String>,
}

/// Target `session`: a township session with a real store holding a case, optionally
/// after a valid `Hello`, is fed the input's frames. Every frame is handled or refused
/// with a typed error; a refused frame changes nothing in the store; everything the
/// session sends decodes and is within the bound.
pub fn session(data: &[u8]) -> SessionRun {
    let f = fixture();
    let (bits, data) = data.split_first().map_or((0, data), |(b, d)| (*b, d));
    let peer = if bits & flags::COUNTY_PEER != 0 {
        &f.county
    } else {
        &f.village
    };
    let mut store = f.township_store.clone();
    if bits & flags::REVOCATIONS != 0 {
        store
            .put_revocations(&f.revocations)
            .expect("the memory store cannot fail");
    }
    // The session speaks the version of the peer's hello, as the node's transport would
    // have agreed it (inputs recorded with version 1 replay as version 1).
    let version = frames(data)
        .first()
        .and_then(|f| match Message::decode(f) {
            Ok(Message::Hello { version, .. })
                if (OLDEST_PROTOCOL_VERSION..=PROTOCOL_VERSION).contains(&version) =>
            {
                Some(version)
            }
            _ => None,
        })
        .unwrap_or(PROTOCOL_VERSION);
    let mut session = Session::new(
        Config::default(),
        f.root.public(),
        f.township.clone(),
        bits & flags::INITIATOR != 0,
        &store,
    )
    .expect("a session over the memory store")
    .expecting(peer.cert.node(), &store)
    .speaking(version);
    drain(&mut session);
    if bits & flags::HELLO != 0 {
        let hello = Message::Hello {
            version,
            cert: peer.cert.clone(),
            revocations: 0,
        };
        session
            .handle(
                &hello.encode().expect("a hello encodes"),
                &mut store,
                NOW_MS,
            )
            .expect("a valid hello is accepted");
        drain(&mut session);
    }
    let mut run = SessionRun {
        accepted: 0,
        error: None,
    };
    for frame in frames(data) {
        let before = snapshot(&store);
        match session.handle(frame, &mut store, NOW_MS) {
            Ok(()) => {
                run.accepted += 1;
                drain(&mut session);
            }
            Err(e) => {
                assert_eq!(
                    snapshot(&store),
                    before,
                    "a refused frame changed the store"
                );
                run.error = Some(e.to_string());
                break;
            }
        }
    }
    run
}

/// Takes everything a session has to send and report, checking what it sends.
fn drain(session: &mut Session) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    while let Some(bytes) = session.poll_transmit() {
        assert!(bytes.len() <= MESSAGE_BYTES_MAX, "a message over the bound");
        Message::decode(&bytes).expect("a message the session sent decodes");
        out.push(bytes);
    }
    while session.poll_event().is_some() {}
    out
}

/// Target `cert`: the input is read as a certificate and as a revocation list. Whatever
/// decodes encodes again to the same value, its checks give answers or typed errors, and
/// only what the root really signed verifies against it.
pub fn cert(data: &[u8]) {
    let f = fixture();
    let root = f.root.public();
    let villages: Vec<VillageCode> = [VILLAGE, OTHER_VILLAGE, "500240101202", "500241001001"]
        .iter()
        .map(|v| v.parse().expect("a village"))
        .collect();
    match Certificate::from_bytes(data) {
        Ok(cert) => {
            let bytes = cert.to_bytes().expect("a decoded certificate encodes");
            assert_eq!(Certificate::from_bytes(&bytes).as_ref(), Ok(&cert));
            let verified = cert.verify(&root);
            if verified.is_ok() {
                assert!(
                    f.issued.contains(&cert),
                    "a certificate the root never issued verifies"
                );
            }
            let b = &cert.body;
            for at in [0, T0, NOW_MS, b.not_before_ms, b.not_after_ms, u64::MAX] {
                drop(cert.valid_at(at, &RevocationBody::default()));
                drop(cert.valid_at(at, &f.revocations.body));
            }
            for n in 0..=villages.len() {
                let some = &villages[..n];
                let _ = cert.may_read(some);
                if cert.may_write(some) {
                    assert!(cert.may_read(some), "writes what it may not read");
                }
            }
            drop(format!("{cert:?} {:?} {}", verified, b.division));
        }
        Err(e) => drop(e.to_string()),
    }
    match Frontier::from_bytes(data) {
        Ok(frontier) => {
            let bytes = frontier.to_bytes().expect("a decoded frontier encodes");
            assert_eq!(Frontier::from_bytes(&bytes).as_ref(), Ok(&frontier));
            if frontier.verify(&root).is_ok() {
                assert_eq!(
                    frontier, f.frontier,
                    "a frontier the root never signed verifies"
                );
            }
        }
        Err(e) => drop(e.to_string()),
    }
    match RevocationList::from_bytes(data) {
        Ok(list) => {
            let bytes = list.to_bytes().expect("a decoded list encodes");
            assert_eq!(RevocationList::from_bytes(&bytes).as_ref(), Ok(&list));
            if list.verify(&root).is_ok() {
                assert_eq!(list, f.revocations, "a list the root never signed verifies");
            }
            for cert in &f.issued {
                for at in [0, T0, NOW_MS, u64::MAX] {
                    drop(cert.valid_at(at, &list.body));
                }
            }
        }
        Err(e) => drop(e.to_string()),
    }
}

/// What a `signed` input did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SignedRun {
    /// Changes the township applied.
    pub applied: usize,
    /// Changes it refused and kept aside.
    pub quarantined: usize,
}

/// Target `signed`: arbitrary but validly signed changes of real records, in and out of
/// order. The village's real changes (the fixture's) are edited as the input says (their
/// sequence numbers, operation numbers, dependencies, time, and their operations' actions,
/// objects, keys, predecessors and values), re-encoded, signed with the village's key, and
/// ingested at the township with the honest ones, in an order and batches the input
/// chooses. No edit may panic the township; every record it holds afterwards reads as a
/// record and folds; nothing it keeps aside is among its changes.
pub fn signed(data: &[u8]) -> SignedRun {
    use automerge::legacy::{ElementId, Key, ObjectId, OpId, OpType};
    use guihe_protocol::record::Record;
    let f = fixture();
    let honest: Vec<(RecordId, automerge::Change)> = {
        let store = &f.village_store;
        let mut out = Vec::new();
        for record in store.records().expect("records") {
            let doc = store.doc(record).expect("doc").expect("held");
            for c in doc.get_changes(&[]) {
                out.push((record, c));
            }
        }
        out
    };
    let mut input = data.iter().copied();
    let mut next = || input.next();
    let mut changes: Vec<guihe_protocol::signed::SignedChange> = Vec::new();
    for _ in 0..16 {
        let (Some(which), Some(edit), Some(arg)) = (next(), next(), next()) else {
            break;
        };
        let Some((record, change)) = honest.get(usize::from(which) % honest.len().max(1)) else {
            break;
        };
        let mut e = change.decode();
        let actor = e.actor_id.clone();
        let arg64 = u64::from(arg);
        let n = e.operations.len().max(1);
        let at = usize::from(arg) % n;
        match edit % 14 {
            0 => e.seq = e.seq.wrapping_add(arg64 % 5).wrapping_sub(2),
            1 => {
                e.start_op = std::num::NonZeroU64::new(
                    e.start_op
                        .get()
                        .wrapping_add(arg64 % 9)
                        .wrapping_sub(4)
                        .max(1),
                )
                .unwrap_or(e.start_op)
            }
            2 if at < e.operations.len() => {
                e.operations.remove(at);
            }
            3 => {
                if let Some(op) = e.operations.get(at).cloned() {
                    e.operations.insert(at, op);
                }
            }
            4 => {
                if let Some(op) = e.operations.get_mut(at) {
                    op.insert = !op.insert;
                }
            }
            5 => {
                if let Some(op) = e.operations.get_mut(at) {
                    op.action = OpType::Delete;
                }
            }
            6 => {
                if let Some(op) = e.operations.get_mut(at) {
                    op.obj = if arg % 2 == 0 {
                        ObjectId::Root
                    } else {
                        ObjectId::Id(OpId(arg64, actor.clone()))
                    };
                }
            }
            7 => {
                if let Some(op) = e.operations.get_mut(at) {
                    op.key = match arg % 4 {
                        0 => Key::Map("restricted".into()),
                        1 => Key::Map("events".into()),
                        2 => Key::Seq(ElementId::Head),
                        _ => Key::Seq(ElementId::Id(OpId(arg64, actor.clone()))),
                    };
                }
            }
            8 => {
                if let Some(op) = e.operations.get_mut(at) {
                    let mut pred: Vec<OpId> = op.pred.iter().cloned().collect();
                    pred.push(OpId(arg64, actor.clone()));
                    op.pred = pred.into_iter().collect();
                }
            }
            9 => {
                if let Some(op) = e.operations.get_mut(at) {
                    op.action = OpType::Put(match arg % 5 {
                        0 => automerge::ScalarValue::Null,
                        1 => automerge::ScalarValue::Boolean(false),
                        2 => automerge::ScalarValue::Uint(arg64 << 40),
                        3 => automerge::ScalarValue::Str("500240102201".into()),
                        _ => automerge::ScalarValue::counter(i64::from(arg)),
                    });
                }
            }
            10 => {
                if e.deps.is_empty() {
                    e.deps.push(automerge::ChangeHash([arg; 32]));
                } else {
                    e.deps.remove(at % e.deps.len());
                }
            }
            11 => {
                e.time = e
                    .time
                    .wrapping_add(i64::from(arg) * 3_600_000)
                    .wrapping_sub(128 * 3_600_000)
            }
            12 => {
                if let Some(op) = e.operations.get_mut(at) {
                    op.action = OpType::Make(match arg % 3 {
                        0 => automerge::ObjType::Map,
                        1 => automerge::ObjType::List,
                        _ => automerge::ObjType::Text,
                    });
                }
            }
            _ => {}
        }
        e.hash = None;
        // Encoding an edited change may itself refuse (Automerge asserts its own input);
        // such an edit is not a change anyone could send.
        let Ok(edited) =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| automerge::Change::from(e)))
        else {
            continue;
        };
        let doc = f
            .village_store
            .doc(*record)
            .expect("the memory store cannot fail");
        let Some(Ok(r)) = doc.map(Record::from_doc) else {
            continue;
        };
        changes.push(guihe_protocol::signed::sign(&f.village.key, &r, &edited));
    }
    // The honest changes too, in an order the input chooses.
    let mut all: Vec<guihe_protocol::signed::SignedChange> = honest
        .iter()
        .filter_map(|(record, c)| {
            let doc = f
                .village_store
                .doc(*record)
                .expect("the memory store cannot fail")?;
            let r = Record::from_doc(doc).ok()?;
            Some(guihe_protocol::signed::sign(&f.village.key, &r, c))
        })
        .collect();
    let rotate = usize::from(next().unwrap_or(0)) % all.len().max(1);
    all.rotate_left(rotate);
    if next().unwrap_or(0) % 2 == 0 {
        all.reverse();
    }
    for (i, c) in changes.into_iter().enumerate() {
        let at = (i * 7 + rotate) % (all.len() + 1);
        all.insert(at, c);
    }
    let batch = usize::from(next().unwrap_or(3) % 6) + 1;
    let mut store = f.township_store.clone();
    store
        .put_certificate(&f.village.cert)
        .expect("the memory store cannot fail");
    let mut run = SignedRun::default();
    for chunk in all.chunks(batch) {
        let revocations = store
            .revocation_state()
            .expect("the memory store cannot fail");
        let Ok(checked) = guihe_protocol::signed::verify_batch(
            chunk.to_vec(),
            &guihe_protocol::store::StoreCerts(&store),
            &revocations,
        ) else {
            continue;
        };
        let done = guihe_protocol::ingest::ingest(&mut store, checked, NOW_MS)
            .expect("the memory store cannot fail");
        run.applied += done.applied.len();
        run.quarantined += done.quarantined.len();
    }
    let rules = Deadlines::default();
    for record in store.records().expect("records") {
        if let Some(doc) = store.doc(record).expect("doc")
            && !doc.get_heads().is_empty()
        {
            let r = Record::from_doc(doc).expect("a record the rules let through reads as one");
            r.view(&rules).expect("and folds");
        }
    }
    for q in store.quarantined().expect("quarantine") {
        assert!(
            !store.has_change(&q.change_hash()).expect("has"),
            "a change kept aside is among the changes"
        );
    }
    run
}

/// The messages two real hosts send each other until both are quiet (`host::loopback`):
/// `a` dials `b`. Returns what `a` sent and what `b` sent, in order.
pub fn converse(
    a: &Identity,
    a_store: &mut MemStore,
    b: &Identity,
    b_store: &mut MemStore,
) -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
    let root = fixture().root.public();
    let staff: guihe_protocol::id::StaffId = "fuzz".parse().expect("staff");
    let mut ra = Replica::new(a.clone(), std::mem::take(a_store), staff.clone(), 1);
    let mut rb = Replica::new(b.clone(), std::mem::take(b_store), staff, 1);
    let run = guihe_protocol::host::loopback(
        &guihe_protocol::host::Config::default(),
        root,
        &mut ra,
        &mut rb,
        NOW_MS,
        usize::MAX,
    )
    .expect("the hosts settle");
    *a_store = ra.store;
    *b_store = rb.store;
    for m in run.sent_a.iter().chain(&run.sent_b) {
        assert!(m.len() <= MESSAGE_BYTES_MAX, "a message over the bound");
        Message::decode(m).expect("a message a session sent decodes");
    }
    (run.sent_a, run.sent_b)
}

/// A refusal of some change, as a `Refused` message carries it.
fn wire_refusal() -> guihe_protocol::wire::Refusal {
    guihe_protocol::wire::Refusal {
        hash: [7; 32],
        code: "root_write".into(),
    }
}

/// The name of a message's variant, for seed file names.
pub fn variant(message: &Message) -> &'static str {
    match message {
        Message::Hello { .. } => "hello",
        Message::Revocations(_) => "revocations",
        Message::Reconcile(_) => "reconcile",
        Message::Tail { .. } => "tail",
        Message::FullReconcile => "full-reconcile",
        Message::Want(_) => "want",
        Message::Changes { .. } => "changes",
        Message::Ack { .. } => "ack",
        Message::Greeting { .. } => "greeting",
        Message::Frontier(_) => "frontier",
        Message::Refused(_) => "refused",
        Message::Settings(_) => "settings",
        Message::HelloKnown { .. } => "hello-known",
        Message::CertWanted => "cert-wanted",
        Message::TailShort { .. } => "tail-short",
    }
}

/// The seed corpus of the protocol's targets: `(target, file name, input)`, each input
/// valid (a real message, a real session's frames, a real certificate or list).
pub fn seeds() -> Vec<(&'static str, String, Vec<u8>)> {
    let f = fixture();
    let mut out = Vec::new();

    // The village dials the township: what the village sends, as the township's session
    // (the responder) receives it.
    let (mut village_store, mut township_store) =
        (f.village_store.clone(), f.township_store.clone());
    let (from_village, from_township) = converse(
        &f.village,
        &mut village_store,
        &f.township,
        &mut township_store,
    );
    // Dialled again after that complete session: the village sends its tail.
    let (again, _) = converse(
        &f.village,
        &mut village_store,
        &f.township,
        &mut township_store,
    );
    // The township dials the village: what the village answers, as the township's session
    // (the initiator) receives it.
    let (mut village_store, mut township_store) =
        (f.village_store.clone(), f.township_store.clone());
    let (_, answers) = converse(
        &f.township,
        &mut township_store,
        &f.village,
        &mut village_store,
    );

    // wire: one message of each variant.
    let mut messages: Vec<Vec<u8>> = Vec::new();
    messages.extend(from_village.iter().cloned());
    messages.extend(from_township.iter().cloned());
    messages.extend(again.iter().cloned());
    messages.push(
        Message::Revocations(f.revocations.clone())
            .encode()
            .expect("encodes"),
    );
    messages.push(Message::FullReconcile.encode().expect("encodes"));
    messages.push(Message::CertWanted.encode().expect("encodes"));
    // The tail of a version 2 or 3 session, with the whole fingerprint.
    messages.push(
        Message::Tail {
            below_ms: NOW_MS,
            count: 3,
            fingerprint: [5; 32],
            frame: vec![0x61],
        }
        .encode()
        .expect("encodes"),
    );
    messages.push(
        Message::Frontier(f.frontier.clone())
            .encode()
            .expect("encodes"),
    );
    let refused = Message::Refused(vec![wire_refusal()])
        .encode()
        .expect("encodes");
    messages.push(refused.clone());
    let settings = Message::Settings(
        f.root
            .settings(guihe_protocol::cert::SettingsBody {
                version: 1,
                record_schema: 1,
                issued_ms: NOW_MS,
            })
            .expect("signs"),
    )
    .encode()
    .expect("encodes");
    messages.push(settings.clone());
    let mut named = BTreeSet::new();
    for m in &messages {
        let name = variant(&Message::decode(m).expect("a real message"));
        if named.insert(name) {
            out.push(("wire", name.to_string(), m.clone()));
        }
    }

    // session: whole conversations, and single frames of each kind after a hello.
    out.push((
        "session",
        "responder-whole".into(),
        session_input(0, &from_village),
    ));
    out.push((
        "session",
        "responder-after-hello".into(),
        session_input(flags::HELLO, &from_village[1..]),
    ));
    out.push((
        "session",
        "responder-with-revocations".into(),
        session_input(flags::HELLO | flags::REVOCATIONS, &from_village[1..]),
    ));
    out.push((
        "session",
        "initiator-after-hello".into(),
        session_input(flags::HELLO | flags::INITIATOR, &answers[1..]),
    ));
    let tail = again
        .iter()
        .find(|m| {
            matches!(
                Message::decode(m),
                Ok(Message::Tail { .. } | Message::TailShort { .. })
            )
        })
        .expect("a second session sends its tail");
    let revocations = Message::Revocations(f.revocations.clone())
        .encode()
        .expect("encodes");
    out.push((
        "session",
        "responder-tail".into(),
        session_input(flags::HELLO, std::slice::from_ref(tail)),
    ));
    out.push((
        "session",
        "responder-revocations".into(),
        session_input(flags::HELLO | flags::COUNTY_PEER, &[revocations]),
    ));
    out.push((
        "session",
        "responder-refused".into(),
        session_input(flags::HELLO | flags::COUNTY_PEER, &[refused]),
    ));
    out.push((
        "session",
        "responder-settings".into(),
        session_input(flags::HELLO | flags::COUNTY_PEER, &[settings]),
    ));

    // signed: a few edits of each kind, and none.
    out.push(("signed", "honest".into(), vec![]));
    for edit in 0u8..14 {
        out.push((
            "signed",
            format!("edit-{edit:02}"),
            vec![edit, edit, edit.wrapping_mul(37), 1, 0, 2],
        ));
    }

    // cert: every certificate issued and the revocation list.
    for (i, cert) in f.issued.iter().enumerate() {
        out.push((
            "cert",
            format!("cert-{i}-{:?}", cert.body.role).to_lowercase(),
            cert.to_bytes().expect("encodes"),
        ));
    }
    out.push((
        "cert",
        "revocations".into(),
        f.revocations.to_bytes().expect("encodes"),
    ));
    out.push((
        "cert",
        "frontier".into(),
        f.frontier.to_bytes().expect("encodes"),
    ));
    out
}
