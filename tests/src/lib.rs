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

/// Runs `guihe` with `args`; its standard output on success, its standard error otherwise.
pub fn guihe(args: &[&str]) -> Result<String, String> {
    let bin = guihe_bin()?;
    let out = std::process::Command::new(bin)
        .args(args)
        .output()
        .map_err(|e| format!("running guihe: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
    }
}

/// Runs `guihe`, failing the test with its error output if it fails.
#[allow(clippy::panic)]
pub fn ok(args: &[&str]) -> String {
    guihe(args).unwrap_or_else(|e| panic!("guihe {args:?} failed: {e}"))
}

/// A path as the `&str` the command line takes.
#[allow(clippy::panic)]
pub fn arg(path: &std::path::Path) -> &str {
    path.to_str()
        .unwrap_or_else(|| panic!("{} is not UTF-8", path.display()))
}

/// Sets up a node under `dir/name` as an operator would: `guihe init`, `guihe enroll`
/// with the county key in `dir/county`, then `guihe init --cert` with `extra` options
/// (for example `--listen` and `--bootstrap`).
#[allow(clippy::panic)]
pub fn enrolled_node(
    dir: &std::path::Path,
    name: &str,
    role: &str,
    division: &str,
    extra: &[&str],
) -> PathBuf {
    let root = std::fs::read_to_string(dir.join("county/county.pub"))
        .unwrap_or_else(|e| panic!("county.pub: {e}"));
    let data = dir.join(name);
    let out = ok(&["init", "--data", arg(&data), "--county-root", root.trim()]);
    let key = out
        .split_whitespace()
        .last()
        .unwrap_or_default()
        .to_string();
    let cert = dir.join(format!("{name}.cert"));
    let county_key = dir.join("county/county.key");
    ok(&[
        "enroll",
        "--county-key",
        arg(&county_key),
        "--node",
        &key,
        "--role",
        role,
        "--division",
        division,
        "--out",
        arg(&cert),
    ]);
    let mut args = vec!["init", "--data", arg(&data), "--cert", arg(&cert)];
    args.extend_from_slice(extra);
    ok(&args);
    data
}
