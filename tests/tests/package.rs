//! The Debian package, unpacked into a scratch root: the binary, the service unit, the
//! example configurations and the guide are where deploy/README.md says, and the unit runs
//! the node as the guihe user on /var/lib/guihe.
//!
//! tests/run builds the package first (`cargo deb`); `GUIHE_SKIP_PACKAGE=1` skips this test.

use std::path::Path;
use std::process::Command;

#[test]
fn the_package_installs_what_the_guide_says() {
    if std::env::var("GUIHE_SKIP_PACKAGE").as_deref() == Ok("1") {
        eprintln!("GUIHE_SKIP_PACKAGE=1: the package test is skipped");
        return;
    }
    let deb = guihe_tests::debian_package().expect(
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

    // The unit's hardening as systemd itself scores it (0 is best, 10 worst; 3.0 or less
    // is what systemd calls OK). tests/run installs systemd-analyze.
    let security = Command::new("systemd-analyze")
        .args(["security", "--offline=true", "--threshold=30"])
        .arg(format!("--root={}", root.display()))
        .arg("guihe.service")
        .output()
        .expect("systemd-analyze is missing: tests/run installs it (apt-get install systemd)");
    assert!(
        security.status.success(),
        "the unit's exposure is above 3.0:\n{}",
        String::from_utf8_lossy(&security.stdout)
    );

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

/// Runs the packaged binary; its output, or the test fails with its error.
fn run(bin: &Path, args: &[&str], stdin: Option<&str>) -> String {
    use std::io::Write;
    let mut child = Command::new(bin)
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(text) = stdin {
        writeln!(child.stdin.take().unwrap(), "{text}").unwrap();
    }
    drop(child.stdin.take());
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "guihe {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The install guide's steps, in its order, with the packaged binary: a county root key, a
/// county node and a village node enrolled with it, a staff account, both started with the
/// unit's own command line; a case recorded at the village reaches the county.
#[test]
fn following_the_guide_enrols_a_village_with_the_county() {
    if std::env::var("GUIHE_SKIP_PACKAGE").as_deref() == Ok("1") {
        eprintln!("GUIHE_SKIP_PACKAGE=1: the package test is skipped");
        return;
    }
    let deb =
        guihe_tests::debian_package().expect("no target/debian/guihe_*.deb: tests/run builds it");
    let root = std::env::temp_dir().join(format!("guihe-guide-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).unwrap();
    let pkg = root.join("pkg");
    assert!(
        Command::new("dpkg-deb")
            .arg("-x")
            .arg(&deb)
            .arg(&pkg)
            .status()
            .unwrap()
            .success()
    );
    let bin = pkg.join("usr/bin/guihe");
    let p = |path: &Path| path.to_str().unwrap().to_string();
    let unit = std::fs::read_to_string(pkg.join("lib/systemd/system/guihe.service")).unwrap();
    let exec = unit
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .unwrap()
        .to_string();

    // 1. The county root key.
    let keys = root.join("usb/county");
    run(&bin, &["county", "init", "--out", &p(&keys)], None);
    let county_pub = std::fs::read_to_string(keys.join("county.pub")).unwrap();
    let county_key = p(&keys.join("county.key"));

    // 3. A node: init, enrol, install the certificate.
    let port = guihe_tests::free_port();
    let setup = |name: &str, role: &str, division: &str, extra: &[&str]| {
        let data = root.join(name);
        let out = run(
            &bin,
            &[
                "init",
                "--data",
                &p(&data),
                "--county-root",
                county_pub.trim(),
            ],
            None,
        );
        let key = out.split_whitespace().last().unwrap().to_string();
        let cert = root.join(format!("{division}.cert"));
        run(
            &bin,
            &[
                "enroll",
                "--county-key",
                &county_key,
                "--node",
                &key,
                "--role",
                role,
                "--division",
                division,
                "--days",
                "730",
                "--out",
                &p(&cert),
            ],
            None,
        );
        let mut args = vec![
            "init".to_string(),
            "--data".into(),
            p(&data),
            "--cert".into(),
            p(&cert),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        run(&bin, &args, None);
        data
    };
    let listen = format!("/ip4/127.0.0.1/tcp/{port}");
    let county = setup(
        "county",
        "county",
        "500240000000",
        &["--listen", &listen, "--no-mdns", "--http", "127.0.0.1:0"],
    );
    let village = setup(
        "village",
        "village",
        "500240001201",
        &[
            "--listen",
            "/ip4/127.0.0.1/tcp/0",
            "--bootstrap",
            &listen,
            "--no-mdns",
            "--http",
            "127.0.0.1:0",
        ],
    );
    run(
        &bin,
        &[
            "staff",
            "add",
            "--data",
            &p(&village),
            "--name",
            "tan",
            "--role",
            "mediator",
            "--display",
            "谭德明",
        ],
        Some("a-long-password"),
    );

    // Start both as the unit does.
    let start = |data: &Path| {
        let line = exec
            .replace("/usr/bin/guihe", &p(&bin))
            .replace("/var/lib/guihe", &p(data));
        let mut words = line.split_whitespace();
        let program = words.next().unwrap().to_string();
        Command::new(program)
            .args(words)
            .args(["--for-seconds", "120"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap()
    };
    let mut children = vec![start(&county), start(&village)];
    let started = std::time::Instant::now();
    while !(county.join("api.json").exists() && village.join("api.json").exists()) {
        assert!(started.elapsed().as_secs() < 30, "the nodes did not start");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let id = run(
        &bin,
        &[
            "case",
            "new",
            "--data",
            &p(&village),
            "--village",
            "500240001201",
            "--summary",
            "按安装指南登记的第一件纠纷",
        ],
        None,
    );
    let mut reached = false;
    while started.elapsed().as_secs() < 60 {
        let out = Command::new(&bin)
            .args(["case", "show", "--data", &p(&county), &id])
            .output()
            .unwrap();
        if out.status.success() {
            reached = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(300));
    }
    let status = run(&bin, &["status", "--data", &p(&village)], None);
    for c in &mut children {
        let _ = c.kill();
        let _ = c.wait();
    }
    assert!(reached, "the village's case never reached the county");
    assert!(status.contains("500240000000"), "{status}");
    let _ = std::fs::remove_dir_all(&root);
}
