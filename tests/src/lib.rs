//! Helpers for tests that run real `guihe` processes.
//!
//! The tests find the `guihe` binary that cargo built next to them; `tests/run` builds every
//! binary of the workspace before it runs the tests.

use std::path::{Path, PathBuf};

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

/// The Debian package that tests/run builds (`target/debian/guihe_*.deb`), if there is one.
pub fn debian_package() -> Option<PathBuf> {
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

/// A port that was free a moment ago.
#[allow(clippy::panic)]
pub fn free_port() -> u16 {
    // Below Linux's ephemeral range (32768 and up), so that the outgoing connections of
    // tests running alongside cannot take the port between now and the node's start.
    use std::hash::{BuildHasher, Hasher};
    let mut seed = std::collections::hash_map::RandomState::new().build_hasher();
    seed.write_u32(std::process::id());
    let mut x = seed.finish() | 1;
    for _ in 0..1000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let port = 20_000 + (x % 12_000) as u16;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port between 20000 and 32000")
}

/// A small county of real nodes in a scratch folder, each node a `guihe run` process
/// while it runs. Dropping it kills the processes and removes the folder.
#[derive(Debug)]
pub struct Lab {
    /// The scratch folder; the county key is in `county/`.
    pub dir: PathBuf,
    nodes: Vec<LabNode>,
}

/// One node of a [`Lab`].
#[derive(Debug)]
struct LabNode {
    name: String,
    data: PathBuf,
    port: u16,
    child: Option<std::process::Child>,
}

#[allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]
impl Lab {
    /// A new lab with a county root key.
    pub fn new(name: &str) -> Lab {
        let dir = std::env::temp_dir().join(format!("guihe-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        ok(&["county", "init", "--out", arg(&dir.join("county"))]);
        Lab {
            dir,
            nodes: Vec::new(),
        }
    }

    fn find(&self, name: &str) -> &LabNode {
        self.nodes
            .iter()
            .find(|n| n.name == name)
            .unwrap_or_else(|| panic!("no node {name}"))
    }

    fn find_mut(&mut self, name: &str) -> &mut LabNode {
        self.nodes
            .iter_mut()
            .find(|n| n.name == name)
            .unwrap_or_else(|| panic!("no node {name}"))
    }

    /// Enrols a node listening on loopback that dials `bootstrap` (another node's name).
    pub fn add(
        &mut self,
        name: &str,
        role: &str,
        division: &str,
        bootstrap: Option<&str>,
    ) -> PathBuf {
        let port = free_port();
        let listen = format!("/ip4/127.0.0.1/tcp/{port}");
        let boot = bootstrap.map(|b| format!("/ip4/127.0.0.1/tcp/{}", self.find(b).port));
        let mut extra = vec![
            "--listen",
            listen.as_str(),
            "--no-mdns",
            "--http",
            "127.0.0.1:0",
        ];
        if let Some(b) = &boot {
            extra.extend(["--bootstrap", b.as_str()]);
        }
        let data = enrolled_node(&self.dir, name, role, division, &extra);
        self.nodes.push(LabNode {
            name: name.into(),
            data: data.clone(),
            port,
            child: None,
        });
        data
    }

    /// Adds a node set up elsewhere (another county's, say) that dials `bootstrap`.
    pub fn adopt(&mut self, name: &str, data: &Path, bootstrap: &str) {
        let port = free_port();
        let listen = format!("/ip4/127.0.0.1/tcp/{port}");
        let boot = format!("/ip4/127.0.0.1/tcp/{}", self.find(bootstrap).port);
        ok(&[
            "init",
            "--data",
            arg(data),
            "--listen",
            &listen,
            "--bootstrap",
            &boot,
            "--no-mdns",
            "--http",
            "127.0.0.1:0",
        ]);
        self.nodes.push(LabNode {
            name: name.into(),
            data: data.to_path_buf(),
            port,
            child: None,
        });
    }

    /// A node's data folder.
    pub fn data(&self, name: &str) -> PathBuf {
        self.find(name).data.clone()
    }

    /// The TCP port a node listens on (loopback).
    pub fn port(&self, name: &str) -> u16 {
        self.find(name).port
    }

    /// The process id of a node's running daemon.
    pub fn pid(&self, name: &str) -> Option<u32> {
        self.find(name).child.as_ref().map(std::process::Child::id)
    }

    /// How a node's daemon ended, if it has.
    pub fn exited(&mut self, name: &str) -> Option<std::process::ExitStatus> {
        self.find_mut(name)
            .child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
    }

    /// The resident memory of a node's running daemon, in KiB.
    pub fn rss_kib(&self, name: &str) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid(name)?)).ok()?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
    }

    /// Sets `key = value` in the `[limits]` section of a stopped node's configuration.
    pub fn limit(&self, name: &str, key: &str, value: u64) {
        let path = self.data(name).join("guihe.toml");
        let text = std::fs::read_to_string(&path).unwrap();
        let mut out = String::new();
        let mut done = false;
        for line in text.lines() {
            if line.split('=').next().map(str::trim) == Some(key) {
                continue;
            }
            out.push_str(line);
            out.push('\n');
            if line.trim() == "[limits]" {
                out.push_str(&format!("{key} = {value}\n"));
                done = true;
            }
        }
        if !done {
            out.push_str(&format!("\n[limits]\n{key} = {value}\n"));
        }
        std::fs::write(&path, out).unwrap();
    }

    /// Starts a node's daemon and waits until its API answers.
    pub fn start(&mut self, name: &str) {
        let bin = guihe_bin().unwrap();
        let node = self.find_mut(name);
        let _ = std::fs::remove_file(node.data.join("api.json"));
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(node.data.join("run.log"))
            .unwrap();
        let child = std::process::Command::new(bin)
            .args(["run", "--data", arg(&node.data), "--for-seconds", "300"])
            .env("RUST_LOG", "info,guihe_node=debug")
            .stdout(std::process::Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        node.child = Some(child);
        let data = node.data.clone();
        self.wait_for(
            &format!("{name}'s API"),
            std::time::Duration::from_secs(30),
            || data.join("api.json").exists(),
        );
    }

    /// Stops a node's daemon with SIGKILL: no chance to flush or say goodbye.
    pub fn kill(&mut self, name: &str) {
        if let Some(mut child) = self.find_mut(name).child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Every node's log, for a failure message.
    pub fn logs(&self) -> String {
        self.nodes
            .iter()
            .map(|n| {
                format!(
                    "--- {}\n{}\n",
                    n.name,
                    std::fs::read_to_string(n.data.join("run.log")).unwrap_or_default()
                )
            })
            .collect()
    }

    /// Waits until `f` holds, or fails the test with every node's log.
    pub fn wait_for(&self, what: &str, limit: std::time::Duration, mut f: impl FnMut() -> bool) {
        let started = std::time::Instant::now();
        while started.elapsed() < limit {
            if f() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(250));
        }
        panic!("timed out waiting for {what}\n{}", self.logs());
    }

    /// Runs `guihe` against a node, running or not; the output or the error.
    pub fn guihe(&self, name: &str, args: &[&str]) -> Result<String, String> {
        let data = self.data(name);
        let mut all: Vec<&str> = args.to_vec();
        // `--data` goes after the subcommands, which are the leading words.
        let at = all
            .iter()
            .position(|a| a.starts_with('-'))
            .unwrap_or(all.len())
            .min(2);
        all.insert(at, arg(&data));
        all.insert(at, "--data");
        guihe(&all)
    }

    /// Like [`Lab::guihe`], failing the test on an error.
    pub fn ok(&self, name: &str, args: &[&str]) -> String {
        self.guihe(name, args)
            .unwrap_or_else(|e| panic!("guihe {args:?} at {name} failed: {e}\n{}", self.logs()))
    }

    /// A record as JSON at a node (running or not), or None if it has none.
    pub fn show(&self, name: &str, id: &str) -> Option<String> {
        self.guihe(name, &["case", "show", id, "--json"]).ok()
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for n in &mut self.nodes {
            if let Some(mut c) = n.child.take() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}
