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
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
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

/// Creates a data folder with a new key and a configuration for the county root
/// `root_hex`. Returns the node's public key, to be enrolled.
pub fn init(data: &Path, root_hex: &str) -> Result<NodeId, LocalError> {
    keys::parse_public(root_hex).ok_or(LocalError::Root)?;
    std::fs::create_dir_all(data).map_err(io(data))?;
    let key_path = data.join("node.key");
    let key = if key_path.exists() {
        keys::read_key(&key_path)?
    } else {
        let key = Keypair::generate(&mut rand::rng());
        keys::write_key(&key_path, &key)?;
        key
    };
    if !Config::path(data).exists() {
        Config::new(root_hex.trim().to_string()).save(data)?;
    }
    let incarnation = data.join("incarnation");
    if !incarnation.exists() {
        std::fs::write(&incarnation, format!("{}\n", rand::rng().next_u64()))
            .map_err(io(&incarnation))?;
    }
    Ok(key.public())
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
    let node = init(data, &keys::public_hex(&root.public()))?;
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
        let store = SledStore::open(
            &data.join("store"),
            &Options {
                cache_bytes: config.cache_mib.saturating_mul(1024 * 1024),
            },
        )?;
        let staff: StaffId = config
            .staff
            .parse()
            .map_err(|e: guihe_protocol::id::IdError| LocalError::Staff(e.to_string()))?;
        let mut store = store;
        // Views depend on the deadline rules: views made under other rules are dropped.
        store.views_made_under(&serde_json::to_string(&config.deadlines).unwrap_or_default())?;
        // The node's own certificate travels with its changes (in bundles, and to peers
        // that relay them), so it is kept like any other.
        store.put_certificate(&cert)?;
        let replica = Replica::new(Identity { key, cert }, store, staff, incarnation);
        Ok(Local {
            data: data.to_path_buf(),
            config,
            root,
            replica,
            views: Default::default(),
        })
    }

    /// Records as a given staff member from now on.
    pub fn as_staff(&mut self, staff: &str) -> Result<(), LocalError> {
        self.replica.writer.author.staff = staff
            .parse()
            .map_err(|e: guihe_protocol::id::IdError| LocalError::Staff(e.to_string()))?;
        Ok(())
    }

    /// Takes in a new record. The write is durable when this returns; the changes it
    /// made come back, for a running daemon to push.
    pub fn create(&mut self, new: NewRecord) -> Result<(RecordId, Vec<StoredChange>), LocalError> {
        let rules = self.config.deadlines.clone();
        Ok(self
            .replica
            .create(now_ms(), &mut rand::rng(), &rules, new)?)
    }

    /// Carries out a command on a record. The write is durable when this returns; the
    /// changes it made come back, for a running daemon to push.
    pub fn apply(
        &mut self,
        id: RecordId,
        command: Command,
    ) -> Result<Vec<StoredChange>, LocalError> {
        let rules = self.config.deadlines.clone();
        let (_, changes) = self
            .replica
            .apply(id, now_ms(), &mut rand::rng(), &rules, command)?;
        Ok(changes)
    }

    /// The views of every record held.
    pub fn views(&mut self) -> Result<Vec<View>, LocalError> {
        Ok(self.fresh()?.values().map(|(v, _)| v.clone()).collect())
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
        Ok(record
            .view(&self.config.deadlines)
            .map_err(ReplicaError::from)?)
    }
}

/// Milliseconds since the epoch, from the system clock.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}
