//! The Debian package, unpacked into a scratch root: the binary, the service unit, the
//! example configurations and the guide are where deploy/README.md says, and the unit runs
//! the node as the guihe user on /var/lib/guihe.
//!
//! tests/run builds the package first (`cargo deb`); `GUIHE_SKIP_PACKAGE=1` skips this test.

use std::path::{Path, PathBuf};
use std::process::Command;

fn package() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/debian");
    std::fs::read_dir(dir)
        .ok()?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("guihe_") && n.ends_with(".deb"))
        })
}

#[test]
fn the_package_installs_what_the_guide_says() {
    if std::env::var("GUIHE_SKIP_PACKAGE").as_deref() == Ok("1") {
        eprintln!("GUIHE_SKIP_PACKAGE=1: the package test is skipped");
        return;
    }
    let deb = package().expect(
        "no target/debian/guihe_*.deb: tests/run builds it (cargo deb -p guihe-node), or set GUIHE_SKIP_PACKAGE=1",
    );
    let root = std::env::temp_dir().join(format!("guihe-package-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).unwrap();
    let out = Command::new("dpkg-deb")
        .arg("-x")
        .arg(&deb)
        .arg(&root)
        .output()
        .expect("dpkg-deb");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // The binary runs.
    let bin = root.join("usr/bin/guihe");
    let version = Command::new(&bin).arg("--version").output().unwrap();
    assert!(version.status.success());
    assert!(String::from_utf8_lossy(&version.stdout).starts_with("guihe "));

    // The unit, as the guide describes it.
    let unit = std::fs::read_to_string(root.join("lib/systemd/system/guihe.service")).unwrap();
    for line in [
        "ExecStart=/usr/bin/guihe run --data /var/lib/guihe",
        "User=guihe",
        "StateDirectory=guihe",
        "Restart=on-failure",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "MemoryMax=",
    ] {
        assert!(unit.contains(line), "the unit lacks {line}");
    }

    // The examples and the guide.
    for role in ["village", "township", "county", "observer"] {
        let path = root.join(format!("usr/share/guihe/examples/{role}.toml"));
        assert!(path.is_file(), "{} missing", path.display());
    }
    let guide = std::fs::read_to_string(root.join("usr/share/doc/guihe/README.md")).unwrap();
    assert!(guide.contains("guihe county init") && guide.contains("systemctl enable --now guihe"));

    // The control data: the user is made on install.
    let control = Command::new("dpkg-deb")
        .arg("-I")
        .arg(&deb)
        .arg("postinst")
        .output()
        .unwrap();
    let postinst = String::from_utf8_lossy(&control.stdout);
    assert!(postinst.contains("adduser --system --group"), "{postinst}");
    let info = Command::new("dpkg-deb")
        .arg("-f")
        .arg(&deb)
        .arg("Package")
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&info.stdout).trim(), "guihe");
    let _ = std::fs::remove_dir_all(&root);
}
