//! Garbage, damaged documents and documents of an unknown schema give typed errors, never a
//! panic.

mod common;

use automerge::transaction::Transactable;
use automerge::{Automerge, ROOT, ScalarValue};
use common::*;
use guihe_protocol::event::{Acceptance, Body};
use guihe_protocol::record::{DocError, Record, SCHEMA_VERSION};
use proptest::prelude::*;

fn saved_case() -> Vec<u8> {
    let mut o = Office::new(3, "ma.gr");
    let mut r = o.create(new_case(&["500240101201"]));
    o.record(&mut r, Body::Accept(Acceptance::default()))
        .unwrap();
    r.save()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        // Any outcome but a panic is acceptable; a successful load must still be a record.
        if let Ok(r) = Record::load(&bytes) {
            let _ = r.view(&Default::default());
        }
    }

    #[test]
    fn damaged_documents_never_panic(
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        cut in any::<prop::sample::Index>(),
        truncate in any::<bool>(),
    ) {
        let mut bytes = saved_case();
        for (at, xor) in flips {
            let i = at.index(bytes.len());
            bytes[i] ^= xor.max(1);
        }
        if truncate {
            bytes.truncate(cut.index(bytes.len()));
        }
        if let Ok(r) = Record::load(&bytes) {
            let _ = r.view(&Default::default());
        }
    }
}

#[test]
fn empty_bytes_are_not_a_record() {
    assert!(Record::load(&[]).is_err());
}

#[test]
fn garbage_is_a_bytes_error() {
    assert!(matches!(
        Record::load(b"not an automerge document"),
        Err(DocError::Bytes(_))
    ));
}

#[test]
fn unknown_schema_version_is_a_typed_error() {
    let record = Record::load(&saved_case()).unwrap();
    let mut doc = record.doc().clone();
    doc.transact::<_, _, automerge::AutomergeError>(|tx| {
        tx.put(ROOT, "schema", ScalarValue::Uint(SCHEMA_VERSION + 1))?;
        Ok(())
    })
    .unwrap();
    assert_eq!(
        Record::load(&doc.save()).unwrap_err(),
        DocError::Schema {
            found: SCHEMA_VERSION + 1,
            supported: SCHEMA_VERSION
        }
    );
}

#[test]
fn an_automerge_document_that_is_not_a_record_is_a_shape_error() {
    let mut doc = Automerge::new();
    doc.transact::<_, _, automerge::AutomergeError>(|tx| {
        tx.put(ROOT, "schema", ScalarValue::Uint(1))?;
        tx.put(ROOT, "kind", "case")?;
        Ok(())
    })
    .unwrap();
    assert!(matches!(Record::load(&doc.save()), Err(DocError::Shape(_))));
}

#[test]
fn an_unreadable_event_is_counted_and_flags_review_without_losing_the_rest() {
    let record = Record::load(&saved_case()).unwrap();
    let mut doc = record.doc().clone();
    doc.transact::<_, _, automerge::AutomergeError>(|tx| {
        let (_, events) = automerge::ReadDoc::get(tx, ROOT, "events")?.unwrap();
        let len = automerge::ReadDoc::length(tx, &events);
        tx.insert(&events, len, "garbage")?;
        Ok(())
    })
    .unwrap();
    let damaged = Record::load(&doc.save()).unwrap();
    let view = damaged.view(&Default::default()).unwrap();
    assert_eq!(view.common().malformed, 1);
    assert!(view.common().needs_review);
    assert_eq!(view.common().events, 2, "intake and accept still count");
}
