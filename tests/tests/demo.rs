//! `guihe demo`, run as a real process: it starts real nodes, they converge, and it says
//! where to look.

use std::process::Command;

#[test]
fn demo_starts_real_nodes_that_converge_and_says_where_to_look() {
    let bin = guihe_tests::guihe_bin().unwrap();
    let out = std::env::temp_dir().join(format!("guihe-demo-test-{}", std::process::id()));
    let output = Command::new(&bin)
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
    assert!(stdout.contains("the county holds every record"), "{stdout}");
    assert!(stdout.contains("needs review: true"), "{stdout}");
    let county = out.join("county");
    assert!(
        stdout.contains(&format!("guihe case list --data {}", county.display())),
        "{stdout}"
    );

    // The county's records, read back through the command line the demo points at.
    let list = Command::new(&bin)
        .args(["case", "list", "--data"])
        .arg(&county)
        .output()
        .unwrap();
    let list = String::from_utf8_lossy(&list.stdout);
    assert!(list.ends_with("13 件纠纷 cases\n"), "{list}");
    assert!(list.contains("待审核"), "{list}");
    let petitions = Command::new(&bin)
        .args(["petition", "list", "--data"])
        .arg(&county)
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&petitions.stdout).contains("1 件信访 petitions"));
    // The contested record says why it needs review, naming both entries.
    let contested = stdout
        .split("village resolved ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("the demo names no contested record: {stdout}"));
    let show = Command::new(&bin)
        .args(["case", "show", contested, "--data"])
        .arg(&county)
        .output()
        .unwrap();
    let show = String::from_utf8_lossy(&show.stdout);
    assert!(
        show.contains("待审核的原因")
            && show.contains("断网期间两处记录了不同的结果")
            && show.contains("记录的“调解成功”")
            && show.contains("记录的“移交上报”"),
        "{show}"
    );
    // Every node ran for real: each left a run log and a status file.
    for node in [
        "county",
        "nanbin",
        "xituo",
        "village-1",
        "village-2",
        "village-3",
        "village-4",
    ] {
        assert!(
            out.join(node).join("status.json").exists(),
            "{node} never ran"
        );
    }
    std::fs::remove_dir_all(&out).unwrap();
}
