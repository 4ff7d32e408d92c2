//! Helpers for tests that run real `guihe` processes.
//!
//! The tests find the `guihe` binary that cargo built next to them; `tests/run` builds every
//! binary of the workspace before it runs the tests.

use std::path::PathBuf;

/// The path of the `guihe` binary: `$GUIHE_BIN` if set, else the one in the same target
/// folder as the running test.
pub fn guihe_bin() -> Result<PathBuf, String> {
    if let Some(path) = std::env::var_os("GUIHE_BIN") {
        return Ok(PathBuf::from(path));
    }
    let exe = std::env::current_exe().map_err(|e| format!("no current exe: {e}"))?;
    // target/<profile>/deps/<test> → target/<profile>/guihe
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .ok_or_else(|| format!("unexpected test location {}", exe.display()))?;
    let bin = profile_dir.join("guihe");
    if bin.is_file() {
        Ok(bin)
    } else {
        Err(format!(
            "{} is missing: build it first with `cargo build --bin guihe` (tests/run does)",
            bin.display()
        ))
    }
}
