//! The operator's and the village worker's command line, run as real `guihe` processes:
//! setting up a county, enrolling nodes, recording cases, and carrying records by USB
//! bundle.

use guihe_tests::{arg, enrolled_node, guihe, ok};
use std::path::{Path, PathBuf};

struct Dir(PathBuf);
impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn p(path: &Path) -> &str {
    arg(path)
}

/// Sets up a node of `role` for `division` under `dir/name`.
fn node(dir: &Path, name: &str, role: &str, division: &str) -> PathBuf {
    enrolled_node(dir, name, role, division, &[])
}

fn county(tag: &str) -> Dir {
    let dir = std::env::temp_dir().join(format!("guihe-cli-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    ok(&["county", "init", "--out", p(&dir.join("county"))]);
    Dir(dir)
}

#[test]
fn a_village_records_a_case_through_its_life_on_the_command_line() {
    let d = county("life");
    let v = node(&d.0, "v1", "village", "500240001201");
    let id = ok(&[
        "case",
        "new",
        "--data",
        p(&v),
        "--village",
        "500240001201",
        "--category",
        "neighbour",
        "--summary",
        "邻里排水沟纠纷",
        "--party",
        "谭德明",
        "--party",
        "冉光荣:respondent",
    ]);
    assert!(id.starts_with("case-"), "{id}");
    for args in [
        vec!["--type", "accept"],
        vec![
            "--type",
            "session",
            "--place",
            "村委会",
            "--note",
            "双方陈述意见",
        ],
        vec![
            "--type",
            "agreement",
            "--terms",
            "共同疏通水沟",
            "--form",
            "written",
            "--seek-confirmation",
        ],
        vec!["--type", "follow-up", "--note", "履行良好"],
        vec!["--type", "satisfaction", "--rating", "5"],
        vec!["--type", "close"],
    ] {
        let mut all = vec!["case", "event", "--data", p(&v), id.as_str()];
        all.extend(args);
        ok(&all);
    }
    let list = ok(&["case", "list", "--data", p(&v)]);
    assert!(list.contains("结案") && list.contains(&id), "{list}");
    let show: serde_json::Value =
        serde_json::from_str(&ok(&["case", "show", "--data", p(&v), &id, "--json"])).unwrap();
    assert_eq!(show["status"], "closed");
    assert_eq!(show["satisfaction"], 5);
    // Bad input: a typed message, and nothing written.
    let err = guihe(&[
        "case",
        "event",
        "--data",
        p(&v),
        &id,
        "--type",
        "session",
        "--note",
        "x",
    ])
    .unwrap_err();
    assert!(err.contains("not allowed"), "{err}");
    let err = guihe(&[
        "case",
        "new",
        "--data",
        p(&v),
        "--village",
        "500240001202",
        "--summary",
        "x",
    ])
    .unwrap_err();
    assert!(err.contains("may not write"), "{err}");
    let err = guihe(&[
        "case",
        "new",
        "--data",
        p(&v),
        "--village",
        "500240001201",
        "--category",
        "feud",
        "--summary",
        "x",
    ])
    .unwrap_err();
    assert!(err.contains("dispute category"), "{err}");
    let after: serde_json::Value =
        serde_json::from_str(&ok(&["case", "show", "--data", p(&v), &id, "--json"])).unwrap();
    assert_eq!(after, show);
    assert!(ok(&["status", "--data", p(&v)]).contains("checksums: ok"));
    assert!(ok(&["repair", "--data", p(&v)]).contains("the store is sound"));
}

#[test]
fn a_bundle_carried_from_a_village_to_the_county_converges() {
    let d = county("bundle");
    let v = node(&d.0, "v1", "village", "500240001201");
    let other = node(&d.0, "v2", "village", "500240002201");
    let c = node(&d.0, "c", "county", "500240000000");
    let id = ok(&[
        "case",
        "new",
        "--data",
        p(&v),
        "--village",
        "500240001201",
        "--summary",
        "山林边界纠纷",
        "--party",
        "马春梅",
    ]);
    ok(&["case", "event", "--data", p(&v), &id, "--type", "accept"]);
    let pet = ok(&[
        "petition",
        "new",
        "--data",
        p(&v),
        "--village",
        "500240001201",
        "--channel",
        "visit",
        "--summary",
        "征地补偿",
        "--party",
        "秦大勇",
    ]);
    ok(&[
        "case",
        "new",
        "--data",
        p(&other),
        "--village",
        "500240002201",
        "--summary",
        "另一村的纠纷",
    ]);

    let stick = d.0.join("stick.bundle");
    ok(&["bundle", "export", "--data", p(&v), "--out", p(&stick)]);
    let out = ok(&["bundle", "import", "--data", p(&c), p(&stick)]);
    assert!(out.contains("3 new") || out.contains("new"), "{out}");
    for (kind, rid) in [("case", &id), ("petition", &pet)] {
        let at_v = ok(&[kind, "show", "--data", p(&v), rid, "--json"]);
        let at_c = ok(&[kind, "show", "--data", p(&c), rid, "--json"]);
        assert_eq!(at_v, at_c, "{rid} differs after the bundle");
    }
    // Importing again adds nothing.
    assert!(ok(&["bundle", "import", "--data", p(&c), p(&stick)]).contains(" 0 new"));
    // A county bundle taken to another village carries nothing of the first village.
    ok(&[
        "bundle",
        "import",
        "--data",
        p(&c),
        p(&{
            let s = d.0.join("other.bundle");
            ok(&["bundle", "export", "--data", p(&other), "--out", p(&s)]);
            s
        }),
    ]);
    let county_stick = d.0.join("county.bundle");
    ok(&[
        "bundle",
        "export",
        "--data",
        p(&c),
        "--out",
        p(&county_stick),
    ]);
    let out = ok(&["bundle", "import", "--data", p(&other), p(&county_stick)]);
    assert!(out.contains("not for this node"), "{out}");
    assert!(guihe(&["case", "show", "--data", p(&other), &id]).is_err());

    // A tampered bundle is refused whole.
    let mut bytes = std::fs::read(&stick).unwrap();
    let at = bytes.len() - 40;
    bytes[at] ^= 0x5a;
    let bad = d.0.join("bad.bundle");
    std::fs::write(&bad, bytes).unwrap();
    let fresh = node(&d.0, "c2", "county", "500240000000");
    let err = guihe(&["bundle", "import", "--data", p(&fresh), p(&bad)]).unwrap_err();
    assert!(!err.is_empty());
    assert!(
        ok(&["case", "list", "--data", p(&fresh)]).starts_with("0 "),
        "nothing imported"
    );
}

#[test]
fn a_node_of_another_county_cannot_take_its_certificate_or_bundles() {
    let d = county("foreign");
    let elsewhere = county("foreign-root");
    let v = node(&d.0, "v1", "village", "500240001201");
    // A certificate signed by another county's root does not install.
    let root = std::fs::read_to_string(d.0.join("county/county.pub")).unwrap();
    let data = d.0.join("x");
    let out = ok(&["init", "--data", p(&data), "--county-root", root.trim()]);
    let key = out.split_whitespace().last().unwrap().to_string();
    let cert = d.0.join("x.cert");
    ok(&[
        "enroll",
        "--county-key",
        p(&elsewhere.0.join("county/county.key")),
        "--node",
        &key,
        "--role",
        "village",
        "--division",
        "500240001201",
        "--out",
        p(&cert),
    ]);
    let err = guihe(&["init", "--data", p(&data), "--cert", p(&cert)]).unwrap_err();
    assert!(err.contains("root"), "{err}");
    // A bundle from another county's node is refused.
    let foreign = node(&elsewhere.0, "f", "village", "500240001201");
    ok(&[
        "case",
        "new",
        "--data",
        p(&foreign),
        "--village",
        "500240001201",
        "--summary",
        "外县记录",
    ]);
    let stick = d.0.join("foreign.bundle");
    ok(&[
        "bundle",
        "export",
        "--data",
        p(&foreign),
        "--out",
        p(&stick),
    ]);
    let err = guihe(&["bundle", "import", "--data", p(&v), p(&stick)]).unwrap_err();
    assert!(err.contains("root") || err.contains("refused"), "{err}");
    assert!(ok(&["case", "list", "--data", p(&v)]).starts_with("0 "));
}

#[test]
fn the_daemon_logs_json_lines_when_asked() {
    let d = county("json");
    let v = enrolled_node(
        &d.0,
        "v1",
        "village",
        "500240001201",
        &[
            "--listen",
            "/ip4/127.0.0.1/tcp/0",
            "--no-mdns",
            "--http",
            "127.0.0.1:0",
        ],
    );
    let out = std::process::Command::new(guihe_tests::guihe_bin().unwrap())
        .args(["--log-json", "run", "--data", p(&v), "--for-seconds", "1"])
        .env("RUST_LOG", "info")
        .output()
        .unwrap();
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(!lines.is_empty(), "no log lines");
    for line in lines {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{line:?}: {e}"));
        assert!(
            v["level"].is_string() && v["timestamp"].is_string(),
            "{line}"
        );
    }
    // The API's address was written while it ran and removed when it stopped.
    assert!(!v.join("api.json").exists());
}

#[test]
fn a_renewed_certificate_starts_where_the_old_one_started() {
    let dir = std::env::temp_dir().join(format!("guihe-renew-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    ok(&["county", "init", "--out", arg(&dir.join("county"))]);
    let key = dir.join("county/county.key");
    let node = hex_key(&dir);
    let enroll = |out: &str, extra: &[&str]| {
        let out = dir.join(out);
        let mut args = vec![
            "enroll",
            "--county-key",
            arg(&key),
            "--node",
            &node,
            "--role",
            "village",
            "--division",
            "500240001201",
            "--out",
            arg(&out),
        ];
        args.extend_from_slice(extra);
        ok(&args);
        guihe_node::keys::read_cert(&out).unwrap()
    };
    let old = enroll("old.cert", &[]);
    std::thread::sleep(std::time::Duration::from_millis(20));
    let old_path = dir.join("old.cert");
    let renewed = enroll("new.cert", &["--renew", arg(&old_path)]);
    assert_eq!(renewed.body.not_before_ms, old.body.not_before_ms);
    assert!(renewed.body.not_after_ms > old.body.not_after_ms);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A node key (hex), as `guihe init` prints it.
fn hex_key(dir: &std::path::Path) -> String {
    let out = ok(&[
        "init",
        "--data",
        arg(&dir.join("node")),
        "--county-root",
        &std::fs::read_to_string(dir.join("county/county.pub")).unwrap(),
    ]);
    out.split_whitespace().last().unwrap().to_string()
}

/// The county signs and installs its settings on the county node (the status says what
/// schema the node writes); a key that is not the county's is refused.
#[test]
fn the_county_installs_settings_that_gate_the_schema_nodes_write() {
    let dir = county("settings");
    let c = node(&dir.0, "c", "county", "500240000000");
    let before = ok(&["status", "--data", p(&c)]);
    assert!(before.contains("尚无县级设置"), "{before}");
    let out = ok(&[
        "settings",
        "--data",
        p(&c),
        "--county-key",
        p(&dir.0.join("county/county.key")),
        "--record-schema",
        "1",
    ]);
    assert!(out.contains("县级设置已安装"), "{out}");
    let after = ok(&["status", "--data", p(&c)]);
    assert!(
        after.contains("record schema written: 1 · 县级设置"),
        "{after}"
    );

    // Another county's key.
    let elsewhere = county("settings-elsewhere");
    let refused = guihe(&[
        "settings",
        "--data",
        p(&c),
        "--county-key",
        p(&elsewhere.0.join("county/county.key")),
        "--record-schema",
        "1",
    ])
    .unwrap_err();
    assert!(refused.contains("settings"), "{refused}");
}

/// The operator's mistakes get a refusal in Chinese that names what to fix, and nothing
/// is changed: another county's root for a set-up node, a file that is not a certificate,
/// a certificate valid for no day, a division of another county. A data folder is its
/// owner's alone, and nothing prints raw milliseconds.
#[test]
fn an_operators_mistakes_are_refused_in_chinese_and_change_nothing() {
    let d = county("operator");
    let root = std::fs::read_to_string(d.0.join("county/county.pub")).unwrap();
    let data = d.0.join("v1");
    let first = ok(&["init", "--data", p(&data), "--county-root", root.trim()]);
    assert!(first.contains("节点已初始化"), "{first}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&data).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700, "the data folder is {mode:o}");
    }
    let key = first.split_whitespace().last().unwrap().to_string();
    // Again with the same root: the node is kept, and says so.
    let again = ok(&["init", "--data", p(&data), "--county-root", root.trim()]);
    assert!(
        again.contains("节点已存在") && again.ends_with(&key),
        "{again}"
    );
    // Another county's root: refused, the key and configuration unchanged.
    ok(&["county", "init", "--out", p(&d.0.join("other"))]);
    let other = std::fs::read_to_string(d.0.join("other/county.pub")).unwrap();
    let config = std::fs::read_to_string(data.join("guihe.toml")).unwrap();
    let e = guihe(&["init", "--data", p(&data), "--county-root", other.trim()]).unwrap_err();
    assert!(e.contains("另一个县根公钥"), "{e}");
    assert_eq!(
        std::fs::read_to_string(data.join("guihe.toml")).unwrap(),
        config
    );
    assert!(ok(&["init", "--data", p(&data), "--county-root", root.trim()]).ends_with(&key));
    // Random bytes as a certificate.
    let junk = d.0.join("junk.cert");
    std::fs::write(&junk, [0xff, 0xfe, 0x00, 0x81, 0x13, 0x37]).unwrap();
    let e = guihe(&["init", "--data", p(&data), "--cert", p(&junk)]).unwrap_err();
    assert!(e.contains("不是 guihe 的证书文件"), "{e}");
    assert!(!e.contains("UTF-8"), "{e}");

    let county_key = d.0.join("county/county.key");
    let enroll = |division: &str, days: &str| {
        guihe(&[
            "enroll",
            "--county-key",
            p(&county_key),
            "--node",
            &key,
            "--role",
            "village",
            "--division",
            division,
            "--days",
            days,
            "--out",
            p(&d.0.join("v1.cert")),
        ])
    };
    let e = enroll("500240001201", "0").unwrap_err();
    assert!(e.contains("至少为1天"), "{e}");
    assert!(!d.0.join("v1.cert").exists());
    // Without the county's code the division cannot be checked, and the operator is told;
    // with it, another county's village is refused.
    let issued = enroll("510240001201", "30").unwrap();
    assert!(issued.contains("未记录本县代码"), "{issued}");
    std::fs::remove_file(d.0.join("v1.cert")).unwrap();
    let e = guihe(&[
        "county",
        "init",
        "--out",
        p(&d.0.join("county")),
        "--code",
        "5002400",
    ])
    .unwrap_err();
    assert!(e.contains("县代码"), "{e}");
    let recorded = ok(&[
        "county",
        "init",
        "--out",
        p(&d.0.join("county")),
        "--code",
        "500240000000",
    ]);
    assert!(recorded.contains("已存在，未改动"), "{recorded}");
    assert_eq!(
        std::fs::read_to_string(d.0.join("county/county.pub")).unwrap(),
        root,
        "recording the code made a new root key"
    );
    let e = guihe(&[
        "county",
        "init",
        "--out",
        p(&d.0.join("county")),
        "--code",
        "510240000000",
    ])
    .unwrap_err();
    assert!(e.contains("本县代码已记录为 500240000000"), "{e}");
    let e = enroll("510240001201", "30").unwrap_err();
    assert!(e.contains("不在本县"), "{e}");
    assert!(!d.0.join("v1.cert").exists());
    let issued = enroll("500240001201", "30").unwrap();
    assert!(
        issued.contains("村级调解节点")
            && issued.contains("有效期至")
            && !issued.contains("Village"),
        "{issued}"
    );
    ok(&[
        "init",
        "--data",
        p(&data),
        "--cert",
        p(&d.0.join("v1.cert")),
    ]);
    let status = ok(&["status", "--data", p(&data)]);
    assert!(
        status.contains("证书有效期至 certificate valid until 20") && !status.contains("(ms)"),
        "{status}"
    );
    assert!(status.contains("村级调解节点"), "{status}");

    // A closed pipe (`guihe status | head -1`) ends the program quietly, no panic.
    let mut child = std::process::Command::new(guihe_tests::guihe_bin().unwrap())
        .args(["case", "list", "--data", p(&data)])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_ne!(out.status.code(), Some(101), "{stderr}");
}
