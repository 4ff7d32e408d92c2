//! The fuzz targets' bodies. They live in `harness/`, shared with the workspace tests that
//! replay the seed corpus and every crash found (`protocol/tests/fuzzing.rs`,
//! `protocol/tests/bundle.rs`); each target in `fuzz_targets/` only calls one of them.

#[path = "../harness/protocol.rs"]
pub mod protocol;

#[path = "../harness/bundle.rs"]
pub mod bundle;

/// libfuzzer-sys aborts on every panic, even one that is caught. The protocol catches the
/// panics of Automerge's change parser (`guihe_protocol::signed::parse_change`) and turns
/// them into errors, so those, and only those, are let unwind: the hook still aborts on a
/// panic anywhere else, and an Automerge panic nobody catches reaches libfuzzer-sys's own
/// `catch_unwind`, which aborts too. Call it at the start of every target.
pub fn let_caught_automerge_panics_unwind() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let abort = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let in_automerge = info.location().is_some_and(|l| {
                ["/automerge-", "/hexane-"]
                    .iter()
                    .any(|c| l.file().contains(c))
            });
            if !in_automerge {
                abort(info);
            }
        }));
    });
}
