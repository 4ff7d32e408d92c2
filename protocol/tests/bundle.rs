//! Bundle import (through a node's host) fed hostile bytes: the fuzz target's body (`fuzz/harness/bundle.rs`)
//! replays the checked-in seed corpus and every crash the fuzzer found, and runs under
//! proptest on arbitrary bytes and on real bundles with bytes flipped and cut off. Every
//! input is imported or refused with a typed error, and a refused bundle changes nothing
//! in the store.
//!
//! The seed corpus is written by `write_seed_corpus` (ignored; see `fuzz/README.md`).

#[path = "../../fuzz/harness/protocol.rs"]
mod protocol;

#[path = "../../fuzz/harness/bundle.rs"]
mod harness;

use std::path::{Path, PathBuf};

use proptest::prelude::*;

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

/// The files of `fuzz/<kind>/bundle/`, sorted by name.
fn inputs(kind: &str) -> Vec<(String, Vec<u8>)> {
    let dir = fuzz_dir().join(kind).join("bundle");
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
fn regression(name: &str) -> Vec<u8> {
    let path = fuzz_dir().join("regressions/bundle").join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn the_seed_corpus_imports() {
    let seeds = inputs("corpus");
    assert!(seeds.len() >= 3, "{}", seeds.len());
    for (name, bytes) in seeds {
        let imported = harness::bundle(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        if name == "full" {
            // The other township's case is not for this node.
            assert!(imported.skipped > 0 && imported.new > 0, "{imported:?}");
        }
    }
}

#[test]
fn every_regression_input_replays() {
    for (name, bytes) in inputs("regressions") {
        eprintln!("bundle/{name}");
        let _ = harness::bundle(&bytes);
    }
}

/// Found by the `bundle` target: the seed bundle with one change's op columns altered
/// so that an object id's counter is beyond 32 bits. Automerge 0.12 panicked reading it;
/// the bundle is now refused with a typed error and nothing is stored.
#[test]
fn a_bundle_whose_change_has_an_object_id_over_32_bits_is_refused() {
    let error = harness::bundle(&regression("automerge-object-id-over-32-bits"))
        .expect_err("the bundle is refused");
    assert!(
        error.contains("the change's columns could not be read"),
        "{error}"
    );
}

/// One change with a bad signature refuses the whole bundle and nothing of it is kept:
/// neither its certificates nor its newer revocation list (import used to store both
/// before it checked the changes; the mutated-bundle proptest below found it).
#[test]
fn a_bundle_refused_for_one_bad_change_keeps_nothing_of_it() {
    use guihe_protocol::bundle::{Bundle, BundleError};
    use guihe_protocol::signed::VerifyError;
    use guihe_protocol::store::Store;
    let mut bundle = Bundle::from_bytes(full_bundle()).unwrap();
    bundle.changes[0].signature[0] ^= 1;
    let mut local = harness::fresh_node();
    let before = harness::node_snapshot(&local);
    let err = harness::import(&mut local, &bundle.to_bytes().unwrap()).unwrap_err();
    assert!(
        matches!(err, BundleError::Change(VerifyError::BadSignature(_))),
        "{err}"
    );
    assert_eq!(harness::node_snapshot(&local), before);
    let store = &local.store;
    let village = protocol::fixture().village.cert.node();
    assert!(store.certificates_of(&village).unwrap().is_empty());
    assert!(store.revocations().unwrap().is_none());
}

/// Writes the seed corpus of the `bundle` target into `fuzz/corpus/bundle/`. Run by
/// hand: `cargo test -p guihe-protocol --test bundle -- --ignored write_seed_corpus`.
#[test]
#[ignore = "writes the seed corpus"]
fn write_seed_corpus() {
    let dir = fuzz_dir().join("corpus/bundle");
    std::fs::create_dir_all(&dir).unwrap();
    for (name, bytes) in harness::seeds() {
        std::fs::write(dir.join(name), bytes).unwrap();
    }
}

/// The real bundle with every seed change, from the corpus writer.
fn full_bundle() -> &'static [u8] {
    static FULL: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    FULL.get_or_init(|| {
        harness::seeds()
            .into_iter()
            .find(|(n, _)| n == "full")
            .unwrap()
            .1
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_are_refused_and_change_nothing(
        bytes in prop::collection::vec(any::<u8>(), 0..2048),
        headed in any::<bool>(),
    ) {
        // Half the time past the header, into the encoding.
        let mut input = if headed { b"GUIHEBUN\x01".to_vec() } else { Vec::new() };
        input.extend_from_slice(&bytes);
        // The harness asserts that a refused bundle changes nothing.
        let _ = harness::bundle(&input);
    }

    #[test]
    fn a_mutated_bundle_imports_or_is_refused_and_changes_nothing(
        flips in prop::collection::vec((any::<usize>(), 1u8..=255), 0..4),
        keep in any::<usize>(),
    ) {
        let mut bytes = full_bundle().to_vec();
        for (at, mask) in &flips {
            let i = at % bytes.len();
            bytes[i] ^= mask;
        }
        bytes.truncate(keep % (bytes.len() + bytes.len() / 4) + 1);
        let _ = harness::bundle(&bytes);
    }
}
