//! Target `bundle`: see `guihe_fuzz::bundle::bundle`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    guihe_fuzz::let_caught_automerge_panics_unwind();
    let _ = guihe_fuzz::bundle::bundle(data);
});
