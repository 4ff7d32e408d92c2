//! The install guide followed for real (deploy/lab/install-test): two fresh Debian 12
//! machines booted with systemd as PID 1 (systemd-nspawn), the package installed on both
//! with `sudo apt install`, and the guide's own command blocks, read from deploy/README.md,
//! run by an operator account: a county root key, a county node and a village node enrolled
//! with it, both started with `systemctl enable --now guihe`. A case recorded at the village
//! reaches the county; the service runs as the guihe user on a 0700 data folder; then a
//! backup, a revocation and an upgrade as the guide describes them.
//!
//! Needs root and systemd-nspawn (the script installs debootstrap and systemd-container with
//! apt-get when missing), and Debian's mirror the first time: the Debian root is cached in
//! target/install-root-cache. Without them it fails and says so, unless
//! `GUIHE_SKIP_INSTALL=1`. tests/run builds the package first; `GUIHE_SKIP_PACKAGE=1` skips
//! this test too.

use std::path::Path;
use std::process::Command;

/// What the script leaves behind if it does not clean up: its network namespaces and its
/// mounts.
fn leftovers() -> String {
    let netns = Command::new("ip").args(["netns", "list"]).output().unwrap();
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
    String::from_utf8_lossy(&netns.stdout)
        .lines()
        .chain(mounts.lines())
        .filter(|l| l.contains("gi-c-") || l.contains("gi-v-") || l.contains("guihe-install."))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn following_the_guide_on_fresh_debian_machines_enrols_a_village_with_the_county() {
    for skip in ["GUIHE_SKIP_INSTALL", "GUIHE_SKIP_PACKAGE"] {
        if std::env::var(skip).as_deref() == Ok("1") {
            eprintln!("{skip}=1: the install test is skipped");
            return;
        }
    }
    let root = Command::new("id").arg("-u").output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&root.stdout).trim(),
        "0",
        "the install test boots Debian machines with systemd-nspawn and needs root; run tests/run as root, or set GUIHE_SKIP_INSTALL=1"
    );
    let deb = guihe_tests::debian_package().expect(
        "no target/debian/guihe_*.deb: tests/run builds it (cargo deb -p guihe-node), or set GUIHE_SKIP_PACKAGE=1",
    );
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let script = repo.join("deploy/lab/install-test");
    let cache = repo.join("target/install-root-cache");
    let run = |deb: &Path| {
        let out = Command::new(&script)
            .arg("--deb")
            .arg(deb)
            .arg("--cache")
            .arg(&cache)
            .output()
            .expect("deploy/lab/install-test");
        (
            out.status.success(),
            format!(
                "{}\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    };

    // A run that fails half-way (the package is not a package) still removes its machines,
    // mounts and namespaces.
    let scratch = std::env::temp_dir().join(format!("guihe-install-bad-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).unwrap();
    let bad = scratch.join("guihe_0.0.0-0_amd64.deb");
    std::fs::write(&bad, b"not a package").unwrap();
    let (ok, output) = run(&bad);
    let _ = std::fs::remove_dir_all(&scratch);
    assert!(!ok, "a broken package was installed:\n{output}");
    assert!(
        output.contains("FAILED"),
        "the failure is not explained:\n{output}"
    );
    assert_eq!(leftovers(), "", "left behind after a failure:\n{output}");

    let (ok, output) = run(&deb);
    assert!(
        ok,
        "following the guide on fresh Debian machines failed (set GUIHE_SKIP_INSTALL=1 to skip where systemd-nspawn cannot boot a machine):\n{output}"
    );
    for line in [
        "systemd is PID 1",
        "the village machine: guihe.service enabled and active, runs as guihe, /var/lib/guihe mode 0700",
        "the case reached the county",
        "install-test: passed",
    ] {
        assert!(output.contains(line), "{line} missing:\n{output}");
    }
    assert_eq!(leftovers(), "", "left behind:\n{output}");
}
