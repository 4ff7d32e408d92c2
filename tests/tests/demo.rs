//! `guihe demo`, run as a real process: it must succeed, converge and leave its records
//! where it says.

use std::process::Command;

#[test]
fn demo_runs_converges_and_writes_every_office_records() {
    let bin = guihe_tests::guihe_bin().unwrap();
    let out = std::env::temp_dir().join(format!("guihe-demo-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    let output = Command::new(bin)
        .arg("demo")
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "demo failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("replicas identical: yes"), "{stdout}");
    assert!(
        stdout.contains("needs review at the county: true"),
        "{stdout}"
    );
    assert!(stdout.contains("resolved everywhere: true"), "{stdout}");
    assert!(stdout.contains(&out.display().to_string()));

    // 7 offices, each with a folder of views that parse and documents that load.
    let offices: Vec<_> = std::fs::read_dir(&out).unwrap().collect();
    assert_eq!(offices.len(), 7);
    let county = out.join("500240000000");
    let mut views = 0;
    for entry in std::fs::read_dir(&county).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "json") {
            let v: serde_json::Value =
                serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
            assert!(v.get("status").is_some(), "{}", path.display());
            views += 1;
        }
    }
    assert_eq!(
        views, 14,
        "4 villages × 3 cases, a petition and a cross-village case"
    );
    std::fs::remove_dir_all(&out).unwrap();
}
