//! Signed change bundles for USB sneakernet: the files. The format and how a bundle is
//! taken in are the protocol's (`guihe_protocol::bundle`, through the node's
//! `guihe_protocol::host::Host`); this module reads and writes the files.

use std::path::Path;

use guihe_protocol::bundle::{self as format, BUNDLE_BYTES_MAX};
pub use guihe_protocol::bundle::{Bundle, Imported};
use guihe_protocol::cert::CertError;
use guihe_protocol::division::Division;
use guihe_protocol::host::{self, Event, Host};
use guihe_protocol::signed::VerifyError;

use crate::local::Local;
use crate::store::StoreError;

/// Why a bundle could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    /// The file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not a bundle this build reads.
    #[error("not a guihe bundle: {0}")]
    Format(String),
    /// A certificate or the revocation list is not the county's.
    #[error("certificate: {0}")]
    Cert(#[from] CertError),
    /// A change was refused; nothing from the bundle was stored.
    #[error("refused change, nothing imported: {0}")]
    Change(#[from] VerifyError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The store failed while the bundle was taken in.
    #[error("store: {0}")]
    Stored(String),
}

impl From<format::BundleError> for BundleError {
    fn from(e: format::BundleError) -> Self {
        match e {
            format::BundleError::Format(s) => BundleError::Format(s),
            format::BundleError::Cert(e) => BundleError::Cert(e),
            format::BundleError::Change(e) => BundleError::Change(e),
            format::BundleError::Store(s) => BundleError::Stored(s),
        }
    }
}

fn too_long(len: u64) -> BundleError {
    BundleError::Format(format!(
        "{len} bytes is more than the bound of {BUNDLE_BYTES_MAX}"
    ))
}

/// Writes every change this node holds for records `target` may read (all it holds when
/// `target` is `None`). Returns the number of changes written.
pub fn export(local: &Local, target: Option<Division>, path: &Path) -> Result<usize, BundleError> {
    let bundle = format::of_store(
        &local.replica.store,
        local.replica.identity.cert.body.division,
        target,
    )?;
    let count = bundle.changes.len();
    std::fs::write(path, bundle.to_bytes()?).map_err(|source| BundleError::Io {
        path: path.display().to_string(),
        source,
    })?;
    Ok(count)
}

/// Verifies and imports a bundle file.
pub fn import(local: &mut Local, path: &Path) -> Result<Imported, BundleError> {
    let io = |source| BundleError::Io {
        path: path.display().to_string(),
        source,
    };
    let len = std::fs::metadata(path).map_err(io)?.len();
    if len > BUNDLE_BYTES_MAX {
        return Err(too_long(len));
    }
    let bytes = std::fs::read(path).map_err(io)?;
    import_bytes(local, &bytes)
}

/// Verifies and imports a bundle from a file's contents, through a host of the node's
/// (`Host::import`, as the daemon would): a bundle refused for any reason leaves the store
/// as it was; what it refused goes into this office's quarantine report, which syncs up
/// to the county the next time the daemon runs.
pub fn import_bytes(local: &mut Local, bytes: &[u8]) -> Result<Imported, BundleError> {
    let mut host = Host::new(
        host::Config::default(),
        local.root,
        Box::new(<rand::rngs::StdRng as rand::SeedableRng>::from_os_rng()),
    )
    .verifying_with(std::sync::Arc::new(crate::threads::Threads::of_machine()));
    let imported = host.import(bytes, crate::local::now_ms(), &mut local.replica)?;
    while let Some(event) = host.poll_event() {
        match event {
            Event::Reported(_) => local
                .replica
                .store
                .put_last_write_ms(local.replica.last_write_ms)?,
            Event::Frontier(_) => {
                if let Err(e) = local.flag_beyond_frontier() {
                    tracing::warn!(%e, "could not check records against the frontier");
                }
            }
            Event::ReportFailed(why) => {
                tracing::warn!(%why, "could not write the refused changes into the quarantine report; the daemon writes it when it runs");
            }
            Event::StoreFailed(why) => return Err(BundleError::Stored(why)),
            _ => {}
        }
    }
    Ok(imported)
}
