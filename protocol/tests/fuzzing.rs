//! The protocol's fuzz targets in `cargo test`: their bodies (`fuzz/harness/protocol.rs`)
//! replay the checked-in seed corpus and every crash the fuzzer found, and run under
//! proptest for certificate and revocation list parsing (the decoder and the session have
//! theirs in `hostile.rs`).
//!
//! The seed corpus is written by `write_seed_corpus` (ignored; see `fuzz/README.md`).

#[path = "../../fuzz/harness/protocol.rs"]
mod harness;

use std::path::{Path, PathBuf};

use guihe_protocol::cert::{Certificate, Frontier, RevocationList};
use guihe_protocol::signed::parse_change;
use guihe_protocol::wire::Message;
use proptest::prelude::*;

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

/// The files of `fuzz/<kind>/<target>/`, sorted by name.
fn inputs(kind: &str, target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = fuzz_dir().join(kind).join(target);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut out: Vec<(String, Vec<u8>)> = entries
        .map(|e| {
            let path = e.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&path).unwrap())
        })
        .filter(|(name, _)| !name.starts_with('.'))
        .collect();
    out.sort();
    out
}

/// One regression input, by name.
fn regression(target: &str, name: &str) -> Vec<u8> {
    let path = fuzz_dir().join("regressions").join(target).join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn the_seed_corpus_is_valid_input() {
    let wire = inputs("corpus", "wire");
    assert!(wire.len() >= 8, "one message of each variant");
    for (name, bytes) in &wire {
        let message = Message::decode(bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(harness::variant(&message), name.as_str());
        harness::wire(bytes);
    }
    let session = inputs("corpus", "session");
    assert!(session.len() >= 4);
    for (name, bytes) in &session {
        let run = harness::session(bytes);
        assert_eq!(run.error, None, "{name}");
        assert!(run.accepted > 0, "{name}");
    }
    let signed = inputs("corpus", "signed");
    assert!(signed.len() >= 10);
    for (name, bytes) in &signed {
        let run = harness::signed(bytes);
        assert!(run.applied > 0, "{name}: {run:?}");
    }
    let cert = inputs("corpus", "cert");
    assert!(cert.len() >= 2);
    let root = harness::fixture().root.public();
    for (name, bytes) in &cert {
        let verified = match Certificate::from_bytes(bytes) {
            Ok(c) => c.verify(&root),
            Err(_) => match RevocationList::from_bytes(bytes) {
                Ok(list) => list.verify(&root),
                Err(_) => Frontier::from_bytes(bytes).unwrap().verify(&root),
            },
        };
        assert_eq!(verified, Ok(()), "{name}");
        harness::cert(bytes);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Arbitrary edits of real changes, validly signed, in and out of order, never panic a
    /// township, and every record it holds afterwards reads and folds.
    #[test]
    fn validly_signed_arbitrary_changes_never_panic_a_township(
        input in prop::collection::vec(any::<u8>(), 0..96),
    ) {
        harness::signed(&input);
    }
}

#[test]
fn every_regression_input_replays() {
    for (name, bytes) in inputs("regressions", "wire") {
        eprintln!("wire/{name}");
        harness::wire(&bytes);
    }
    for (name, bytes) in inputs("regressions", "session") {
        eprintln!("session/{name}");
        harness::session(&bytes);
    }
    for (name, bytes) in inputs("regressions", "cert") {
        eprintln!("cert/{name}");
        harness::cert(&bytes);
    }
}

/// Found by the `session` target: a `Changes` frame one of whose changes has an object
/// id in its op columns with a counter beyond 32 bits. Automerge 0.12 panicked reading it
/// (`OpId::new` unwraps the conversion); `signed::parse_change` now makes it a typed
/// error, the session ends (the harness checks the store is unchanged).
#[test]
fn a_change_whose_object_id_is_over_32_bits_ends_the_session_with_an_error() {
    let input = regression("session", "automerge-object-id-over-32-bits");
    let run = harness::session(&input);
    let error = run.error.expect("the session ends with an error");
    assert!(error.starts_with("refused change: "), "{error}");
    // The change Automerge panicked on is now a typed error.
    let changes: Vec<_> = harness::frames(&input[1..])
        .into_iter()
        .filter_map(|f| match Message::decode(f) {
            Ok(Message::Changes { changes, .. }) => Some(changes),
            _ => None,
        })
        .flatten()
        .collect();
    let refused: Vec<String> = changes
        .into_iter()
        .filter_map(|c| parse_change(c.bytes).err())
        .map(|e| e.to_string())
        .collect();
    assert!(
        refused
            .iter()
            .any(|e| e.contains("the change's columns could not be read")),
        "{refused:?}"
    );
}

/// Writes the seed corpus of the `wire`, `session` and `cert` targets into
/// `fuzz/corpus/`. Run by hand: `cargo test -p guihe-protocol --test fuzzing --
/// --ignored write_seed_corpus`.
#[test]
#[ignore = "writes the seed corpus"]
fn write_seed_corpus() {
    for (target, name, bytes) in harness::seeds() {
        let dir = fuzz_dir().join("corpus").join(target);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(name), bytes).unwrap();
    }
}

/// A valid certificate or list with some bytes flipped and the end cut off.
fn mutated(seed: &[u8], flips: &[(usize, u8)], keep: usize) -> Vec<u8> {
    let mut bytes = seed.to_vec();
    for (at, mask) in flips {
        let i = at % bytes.len();
        bytes[i] ^= mask.max(&1);
    }
    bytes.truncate(keep.max(1));
    bytes
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn certificate_parsing_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        harness::cert(&bytes);
    }

    #[test]
    fn a_mutated_certificate_or_list_is_refused_or_unchanged(
        which in 0usize..5,
        flips in prop::collection::vec((any::<usize>(), any::<u8>()), 0..6),
        keep in any::<usize>(),
    ) {
        let f = harness::fixture();
        let seed = match f.issued.get(which) {
            Some(cert) => cert.to_bytes().unwrap(),
            None => f.revocations.to_bytes().unwrap(),
        };
        let bytes = mutated(&seed, &flips, keep % (seed.len() + 8));
        // The harness asserts that only what the root signed verifies.
        harness::cert(&bytes);
    }
}
