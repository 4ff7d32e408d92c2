//! A node's data folder and the commands that work on it directly: setting a node up,
//! recording cases and petitions, listing them, and its status.
//!
//! Layout of a data folder: `guihe.toml` (configuration), `node.key` (the node's key),
//! `node.cert` (its certificate), `incarnation` (changes whenever the store is rebuilt) and
//! `store/` (sled).

use std::path::{Path, PathBuf};

use guihe_protocol::cert::{CertError, Identity, Keypair};
use guihe_protocol::id::{NodeId, RecordId, StaffId};
use guihe_protocol::record::{Command, NewRecord};
use guihe_protocol::replica::{Replica, ReplicaError};
use guihe_protocol::store::{Store, StoredChange};
use guihe_protocol::view::View;
use rand::RngCore;

use crate::config::{Config, ConfigError};
use crate::keys::{self, KeyError};
use crate::store::{Options, SledStore, StoreError};

/// Why a local command failed.
#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    /// Configuration.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Key or certificate file.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// The certificate does not fit this node or this county.
    #[error("certificate: {0}")]
    Cert(#[from] CertError),
    /// The certificate is for another key.
    #[error("the certificate is for node {cert}, but this node's key is {key}")]
    WrongKey {
        /// The certificate's key.
        cert: String,
        /// This node's key.
        key: String,
    },
    /// The node has no certificate yet.
    #[error("this node has no certificate yet: run `guihe init --data {0} --cert FILE`")]
    NoCert(PathBuf),
    /// The county root in the configuration is not a key.
    #[error("county_root in the configuration is not a public key")]
    Root,
    /// `guihe init` was given another county's root key for a node set up already.
    #[error(
        "本节点已用另一个县根公钥初始化，未作任何改动 this node was set up for another county root ({configured}), not {given}; nothing was changed. A node belongs to one county: use a new data folder for another"
    )]
    OtherRoot {
        /// The root in the node's configuration.
        configured: String,
        /// The root given.
        given: String,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// sled's own files are damaged, so the store does not open. Nothing was changed.
    #[error(
        "存储已损坏 the store in {path} is damaged ({detail}); nothing was changed. Run `guihe repair --data {data}`: it keeps a copy of the damaged store, recovers what it can read, and the node fetches the rest from its peers",
        path = .data.join("store").display(), data = .data.display()
    )]
    Damaged {
        /// The data folder.
        data: PathBuf,
        /// What sled said.
        detail: String,
    },
    /// A command was refused or failed.
    #[error(transparent)]
    Replica(#[from] ReplicaError<StoreError>),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A staff id that does not parse.
    #[error("staff: {0}")]
    Staff(String),
}

impl LocalError {
    /// Whether the store could not write because the disk is full.
    pub fn is_disk_full(&self) -> bool {
        match self {
            LocalError::Store(e) | LocalError::Replica(ReplicaError::Store(e)) => e.is_disk_full(),
            _ => false,
        }
    }
}

/// An open node: its configuration and its replica over the sled store.
#[derive(Debug)]
pub struct Local {
    /// The data folder.
    pub data: PathBuf,
    /// The configuration.
    pub config: Config,
    /// The county root's public key.
    pub root: NodeId,
    /// The replica.
    pub replica: Replica<SledStore>,
    /// The materialised views.
    pub views: crate::views::Views,
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> LocalError + '_ {
    move |source| LocalError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn options(config: &Config) -> Options {
    Options {
        cache_bytes: config.cache_mib.saturating_mul(1024 * 1024),
        check_mark: true,
    }
}

fn damaged(data: &Path, e: StoreError) -> LocalError {
    if e.is_damaged() {
        LocalError::Damaged {
            data: data.to_path_buf(),
            detail: e.to_string(),
        }
    } else {
        LocalError::Store(e)
    }
}

/// What [`recover`] found in a data folder's store and did about it.
#[derive(Debug, Default, serde::Serialize)]
pub struct Recovery {
    /// sled's files were damaged and the store was salvaged.
    pub salvaged: Option<Salvage>,
    /// Values that failed their checksum.
    pub corrupt: Vec<String>,
    /// What repairing the store did.
    pub repaired: crate::store::Repair,
}

/// A store salvaged from damaged files.
#[derive(Debug, serde::Serialize)]
pub struct Salvage {
    /// What sled said of the damage.
    pub damage: String,
    /// Where the damaged store was copied, untouched, before anything was changed.
    pub copy: PathBuf,
    /// Nothing could be read: the node starts empty and gets everything from its peers.
    pub started_empty: bool,
}

impl Recovery {
    /// Whether the store was sound.
    pub fn is_sound(&self) -> bool {
        self.salvaged.is_none() && self.corrupt.is_empty()
    }
}

/// Checks a stopped node's store and repairs what it can:
/// - values that fail their checksum are dropped or rebuilt ([`SledStore::repair`]);
/// - if sled's own files are damaged so that it will not open them, the store is first
///   copied aside whole (`store.damaged-<time>`), then reopened from its log alone, which
///   sled reads up to the damage; if even that fails the node starts with an empty store.
///   Everything derived is rebuilt from the changes kept ([`SledStore::rebuild_all`]).
///
/// What was lost here comes back from the peers at the next sync. When any of this node's
/// own changes may be lost, it writes from then on as a new incarnation, so that it never
/// makes two different changes under one actor and sequence number.
pub fn recover(data: &Path) -> Result<Recovery, LocalError> {
    let config = Config::load(data)?;
    let options = options(&config);
    let dir = data.join("store");
    let mut recovery = Recovery::default();
    let mut store = match SledStore::open(&dir, &options) {
        Ok(store) => store,
        Err(e) if e.is_damaged() => {
            let copy = data.join(format!("store.damaged-{}", now_ms()));
            copy_dir(&dir, &copy).map_err(io(&copy))?;
            // Without its snapshot sled replays its log, as far as the log can be read.
            let options = Options {
                check_mark: false,
                ..options.clone()
            };
            for entry in std::fs::read_dir(&dir).map_err(io(&dir))? {
                let path = entry.map_err(io(&dir))?.path();
                if path
                    .file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("snap."))
                {
                    std::fs::remove_file(&path).map_err(io(&path))?;
                }
            }
            let (store, started_empty) = match SledStore::open(&dir, &options) {
                Ok(store) => (store, false),
                Err(again) if again.is_damaged() => {
                    std::fs::remove_dir_all(&dir).map_err(io(&dir))?;
                    (SledStore::open(&dir, &options)?, true)
                }
                Err(again) => return Err(again.into()),
            };
            recovery.salvaged = Some(Salvage {
                damage: e.to_string(),
                copy,
                started_empty,
            });
            store
        }
        Err(e) => return Err(e.into()),
    };
    recovery.corrupt = store.verify().iter().map(ToString::to_string).collect();
    if recovery.salvaged.is_some() {
        recovery.repaired = store.rebuild_all()?;
    } else if !recovery.corrupt.is_empty() {
        recovery.repaired = store.repair()?;
    }
    if recovery.salvaged.is_some() || recovery.repaired.changes_dropped > 0 {
        new_incarnation(data)?;
    }
    Ok(recovery)
}

impl std::fmt::Display for Recovery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.is_sound() {
            return f.write_str("存储完好 the store is sound: every checksum matches");
        }
        if let Some(s) = &self.salvaged {
            write!(
                f,
                "存储文件已损坏 the store's files were damaged ({}); 损坏的副本保存在 the damaged store was kept, untouched, in {}; ",
                s.damage,
                s.copy.display()
            )?;
            if s.started_empty {
                f.write_str("nothing could be read: the node starts empty and fetches every record from its peers; ")?;
            } else {
                f.write_str("what could be read was recovered and everything derived rebuilt; ")?;
            }
        }
        if !self.corrupt.is_empty() {
            write!(
                f,
                "发现 {0} 处损坏 found {0} corrupt values; ",
                self.corrupt.len()
            )?;
        }
        let r = &self.repaired;
        write!(
            f,
            "修复 repaired: {} documents rebuilt from their changes, {} changes dropped, {} other entries dropped. 其余数据将在下次同步时从其他节点取回 What is missing is fetched again from the peers at the next sync.",
            r.docs_rebuilt, r.changes_dropped, r.other_dropped
        )
    }
}

/// Runs `f` on the data folder, waiting up to `patience` while another process holds the
/// store's lock (a command run by hand just as the service starts, say).
pub fn when_free<T>(
    patience: std::time::Duration,
    mut f: impl FnMut() -> Result<T, LocalError>,
) -> Result<T, LocalError> {
    let started = std::time::Instant::now();
    loop {
        match f() {
            Err(LocalError::Store(e)) if e.is_locked() && started.elapsed() < patience => {
                std::thread::sleep(std::time::Duration::from_millis(200));
            }
            other => return other,
        }
    }
}

/// Starts a new store incarnation: this node's next changes are made by a new actor.
fn new_incarnation(data: &Path) -> Result<(), LocalError> {
    let path = data.join("incarnation");
    let tmp = data.join("incarnation.new");
    std::fs::write(&tmp, format!("{}\n", rand::rng().next_u64())).map_err(io(&tmp))?;
    std::fs::rename(&tmp, &path).map_err(io(&path))
}

/// Copies a folder of files (sled's: no links, one level of subfolders).
fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}

/// Creates a data folder with a new key and a configuration for the county root
/// `root_hex`. Returns the node's public key, to be enrolled.
pub fn init(data: &Path, root_hex: &str) -> Result<Init, LocalError> {
    let root = keys::parse_public(root_hex).ok_or(LocalError::Root)?;
    if Config::path(data).exists() {
        let configured = Config::load(data)?.county_root;
        if keys::parse_public(&configured) != Some(root) {
            return Err(LocalError::OtherRoot {
                configured: configured.trim().to_string(),
                given: root_hex.trim().to_string(),
            });
        }
    }
    std::fs::create_dir_all(data).map_err(io(data))?;
    // The folder holds the node's key and every record: its owner's alone.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(data, std::fs::Permissions::from_mode(0o700)).map_err(io(data))?;
    }
    let key_path = data.join("node.key");
    let (key, fresh) = if key_path.exists() {
        (keys::read_key(&key_path)?, false)
    } else {
        let key = Keypair::generate(&mut rand::rng());
        keys::write_key(&key_path, &key)?;
        (key, true)
    };
    if !Config::path(data).exists() {
        Config::new(root_hex.trim().to_string()).save(data)?;
    }
    let incarnation = data.join("incarnation");
    if !incarnation.exists() {
        std::fs::write(&incarnation, format!("{}\n", rand::rng().next_u64()))
            .map_err(io(&incarnation))?;
    }
    Ok(Init {
        node: key.public(),
        fresh,
    })
}

/// What `init` did.
#[derive(Debug, Clone, Copy)]
pub struct Init {
    /// The node's key.
    pub node: NodeId,
    /// Whether the key was made now (else the node existed and kept its key).
    pub fresh: bool,
}

/// Installs the node's certificate after checking it is for this node's key and signed by
/// the configured county root.
pub fn install_cert(data: &Path, cert_file: &Path) -> Result<(), LocalError> {
    let config = Config::load(data)?;
    let root = keys::parse_public(&config.county_root).ok_or(LocalError::Root)?;
    let key = keys::read_key(&data.join("node.key"))?;
    let cert = keys::read_cert(cert_file)?;
    cert.verify(&root)?;
    if cert.node() != key.public() {
        return Err(LocalError::WrongKey {
            cert: keys::public_hex(&cert.node()),
            key: keys::public_hex(&key.public()),
        });
    }
    keys::write_cert(&data.join("node.cert"), &cert)?;
    Ok(())
}

/// Sets up a node in one step where the county root key is at hand (the demo, tests and
/// benchmarks): a data folder, a key, and a certificate for `role` and `division` valid
/// for `days` from yesterday.
pub fn init_enrolled(
    data: &Path,
    root: &guihe_protocol::cert::Root,
    serial: u64,
    role: guihe_protocol::cert::Role,
    division: guihe_protocol::division::Division,
    days: u64,
) -> Result<NodeId, LocalError> {
    let node = init(data, &keys::public_hex(&root.public()))?.node;
    let now = now_ms();
    let cert = root.issue(guihe_protocol::cert::CertBody {
        serial,
        node,
        role,
        division,
        not_before_ms: now.saturating_sub(86_400_000),
        not_after_ms: now.saturating_add(days.saturating_mul(86_400_000)),
    })?;
    let path = data.join("enrolment.cert");
    keys::write_cert(&path, &cert)?;
    install_cert(data, &path)?;
    Ok(node)
}

impl Local {
    /// Opens a set-up data folder.
    pub fn open(data: &Path) -> Result<Local, LocalError> {
        let config = Config::load(data)?;
        let root = keys::parse_public(&config.county_root).ok_or(LocalError::Root)?;
        let key = keys::read_key(&data.join("node.key"))?;
        let cert_path = data.join("node.cert");
        if !cert_path.exists() {
            return Err(LocalError::NoCert(data.to_path_buf()));
        }
        let cert = keys::read_cert(&cert_path)?;
        cert.verify(&root)?;
        let incarnation_path = data.join("incarnation");
        let incarnation: u64 = std::fs::read_to_string(&incarnation_path)
            .map_err(io(&incarnation_path))?
            .trim()
            .parse()
            .unwrap_or(0);
        let store = SledStore::open(&data.join("store"), &options(&config))
            .map_err(|e| damaged(data, e))?;
        let staff: StaffId = config
            .staff
            .parse()
            .map_err(|e: guihe_protocol::id::IdError| LocalError::Staff(e.to_string()))?;
        let mut store = store;
        // Views depend on the deadline rules and on the view's own form: views made under
        // other rules, or stored by a build whose views held other fields, are dropped and
        // made again from their records.
        store.views_made_under(&views_stamp(&config.deadlines))?;
        // The node's own certificate travels with its changes (in bundles, and to peers
        // that relay them), so it is kept like any other.
        store.put_certificate(&cert)?;
        let mut replica = Replica::new(Identity { key, cert }, store, staff, incarnation);
        replica.last_write_ms = replica.store.last_write_ms();
        Ok(Local {
            data: data.to_path_buf(),
            config,
            root,
            replica,
            views: Default::default(),
        })
    }

    /// Records as a given staff member from now on, under their display name if they have
    /// an account here.
    pub fn as_staff(&mut self, staff: &str) -> Result<(), LocalError> {
        self.replica.writer.author.staff = staff
            .parse()
            .map_err(|e: guihe_protocol::id::IdError| LocalError::Staff(e.to_string()))?;
        self.replica.writer.author.display = self.display_name(staff).unwrap_or_default();
        Ok(())
    }

    /// The display name of a staff account of this node, if it has one.
    pub fn display_name(&self, staff: &str) -> Option<String> {
        self.replica
            .store
            .account(staff)
            .ok()
            .flatten()
            .and_then(|json| serde_json::from_slice::<crate::accounts::Account>(&json).ok())
            .map(|a| a.display)
            .filter(|d| !d.trim().is_empty())
    }

    /// Takes in a new record. The write is durable when this returns; the changes it
    /// made come back, for a running daemon to push.
    pub fn create(&mut self, new: NewRecord) -> Result<(RecordId, Vec<StoredChange>), LocalError> {
        let rules = self.config.deadlines.clone();
        let made = self
            .replica
            .create(now_ms(), &mut rand::rng(), &rules, new)?;
        self.replica
            .store
            .put_last_write_ms(self.replica.last_write_ms)?;
        Ok(made)
    }

    /// After a newer frontier of revoked keys arrived: the records holding their entries
    /// beyond it are put up for review. Returns how many.
    pub fn flag_beyond_frontier(&mut self) -> Result<usize, LocalError> {
        let store = &self.replica.store;
        let Some(frontier) = store.frontier()? else {
            return Ok(0);
        };
        let records = guihe_protocol::revoke::beyond_frontier(store, &frontier.body)?;
        store.flag(&records)?;
        Ok(records.len())
    }

    /// The operator's override for a clock that was fast when the node last wrote and is
    /// right now: writes are taken again from the current time on.
    pub fn accept_clock(&mut self) -> Result<u64, LocalError> {
        let now = now_ms();
        self.replica.last_write_ms = now;
        self.replica.store.put_last_write_ms(now)?;
        self.replica.store.flush()?;
        Ok(now)
    }

    /// Carries out a command on a record. The write is durable when this returns; the
    /// changes it made come back, for a running daemon to push.
    pub fn apply(
        &mut self,
        id: RecordId,
        command: Command,
    ) -> Result<Vec<StoredChange>, LocalError> {
        let rules = self.config.deadlines.clone();
        let now = now_ms();
        let mut command = command;
        if matches!(
            &command,
            Command::Event {
                body: guihe_protocol::event::Body::Accept(_)
                    | guihe_protocol::event::Body::Receive(_),
                ..
            }
        ) {
            let schema = self.writable_schema()?;
            let held: Vec<_> = self
                .fresh()?
                .values()
                .flat_map(|(v, _)| v.common().numbers.iter().copied())
                .collect();
            guihe_protocol::numbering::number_acceptance(
                &mut command,
                id,
                self.replica.identity.cert.body.division,
                now,
                schema,
                held,
            );
        }
        let (_, changes) = self
            .replica
            .apply(id, now, &mut rand::rng(), &rules, command)?;
        self.replica
            .store
            .put_last_write_ms(self.replica.last_write_ms)?;
        Ok(changes)
    }

    /// The record schema this node writes: the newest it knows that the county's settings
    /// allow.
    pub fn writable_schema(&self) -> Result<u64, LocalError> {
        Ok(guihe_protocol::cert::writable_schema(
            self.replica.store.settings()?.as_ref().map(|s| &s.body),
            guihe_protocol::record::SCHEMA_VERSION,
        ))
    }

    /// The views of every record held, as this office shows them (`View::at_schema`).
    pub fn views(&mut self) -> Result<Vec<View>, LocalError> {
        let schema = self.writable_schema()?;
        Ok(self
            .fresh()?
            .values()
            .map(|(v, _)| v.clone().at_schema(schema))
            .collect())
    }

    /// The materialised views and dashboard rows, brought up to date.
    pub fn fresh(
        &mut self,
    ) -> Result<&std::collections::BTreeMap<RecordId, (View, guihe_protocol::stats::Row)>, LocalError>
    {
        Ok(self.views.fresh(&self.replica, &self.config.deadlines)?)
    }

    /// One record's view.
    pub fn view(&self, id: RecordId) -> Result<View, LocalError> {
        let record = self.replica.record(id)?;
        let mut view = record
            .view(&self.config.deadlines)
            .map_err(ReplicaError::from)?;
        if self.replica.store.flagged().contains(&id) {
            view.flag_revoked_entries();
        }
        Ok(view.at_schema(self.writable_schema()?))
    }
}

/// What stored views were made under: the view's form and the deadline rules.
pub(crate) fn views_stamp(deadlines: &guihe_protocol::deadline::Deadlines) -> String {
    format!(
        "view-{} {}",
        guihe_protocol::view::VIEW_FORM,
        serde_json::to_string(deadlines).unwrap_or_default()
    )
}

/// Milliseconds since the epoch, from the system clock.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}
