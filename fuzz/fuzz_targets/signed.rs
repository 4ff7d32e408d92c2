//! Target `signed`: see `guihe_fuzz::protocol::signed`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    guihe_fuzz::let_caught_automerge_panics_unwind();
    guihe_fuzz::protocol::signed(data);
});
