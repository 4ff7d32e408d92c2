//! The field lab (deploy/lab/run --quick): real nodes in network namespaces over shaped,
//! lossy, flapping links converge after healing with no write lost. Needs root and network
//! namespaces; without them it fails and says so, unless `GUIHE_SKIP_LAB=1`.

use std::process::Command;

#[test]
fn the_field_lab_converges_with_nothing_lost() {
    if std::env::var("GUIHE_SKIP_LAB").as_deref() == Ok("1") {
        eprintln!("GUIHE_SKIP_LAB=1: the field lab is skipped");
        return;
    }
    let root = Command::new("id").arg("-u").output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&root.stdout).trim(),
        "0",
        "the field lab needs root for network namespaces; run tests/run as root, or set GUIHE_SKIP_LAB=1"
    );
    let probe = format!("guihe-probe-{}", std::process::id());
    let netns = Command::new("ip").args(["netns", "add", &probe]).status();
    assert!(
        netns.is_ok_and(|s| s.success()),
        "this machine cannot make network namespaces (ip netns add failed); set GUIHE_SKIP_LAB=1 to skip"
    );
    let _ = Command::new("ip").args(["netns", "del", &probe]).status();

    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/lab/run");
    let namespaces = || {
        let out = Command::new("ip").args(["netns", "list"]).output().unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };

    // A lab that fails half-way (its nodes cannot even be set up) still removes its
    // namespaces.
    let failed = Command::new(script)
        .args(["--quick", "--bin", "/bin/false"])
        .output()
        .unwrap();
    assert!(!failed.status.success());
    assert!(
        !namespaces().contains("gl"),
        "namespaces left behind after a failure"
    );

    let bin = guihe_tests::guihe_bin().unwrap();
    let out = Command::new(script)
        .arg("--quick")
        .arg("--bin")
        .arg(&bin)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the lab failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("writes lost: 0"), "{stdout}");
    assert!(stdout.contains("lab: passed"), "{stdout}");
    // It cleaned up after itself.
    let left = namespaces();
    assert!(!left.contains("gl"), "namespaces left behind: {left}");
}
