//! Signed change bundles for USB sneakernet.
//!
//! A bundle is `GUIHEBUN`, a version byte, and the postcard encoding of the exporting
//! node's newest revocation list, the certificates of the changes' signers and the changes
//! themselves, each carrying its own signature. Importing verifies everything as a sync
//! session would: the certificates against the county root, every change's signature and
//! authority, and that the importing node may read it. One bad change refuses the whole
//! bundle and nothing is stored. Changes the importing node may not read are skipped.

use std::collections::BTreeSet;
use std::path::Path;

use guihe_protocol::cert::{Certificate, RevocationList};
use guihe_protocol::division::Division;
use guihe_protocol::ingest::ingest;
use guihe_protocol::signed::{SignedChange, VerifyError, verify_batch};
use guihe_protocol::store::{Store, StoreCerts};
use serde::{Deserialize, Serialize};

use crate::local::Local;
use crate::store::StoreError;

const MAGIC: &[u8] = b"GUIHEBUN";
const VERSION: u8 = 1;
/// The largest bundle accepted, in bytes.
pub const BUNDLE_BYTES_MAX: u64 = 1 << 30;

#[derive(Debug, Serialize, Deserialize)]
struct Bundle {
    revocations: Option<RevocationList>,
    certs: Vec<Certificate>,
    changes: Vec<SignedChange>,
}

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
    Cert(#[from] guihe_protocol::cert::CertError),
    /// A change was refused; nothing from the bundle was stored.
    #[error("refused change, nothing imported: {0}")]
    Change(#[from] VerifyError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What an import did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Imported {
    /// Changes in the bundle.
    pub changes: usize,
    /// New to this node.
    pub new: usize,
    /// Skipped: records this node may not read.
    pub skipped: usize,
}

/// Writes every change this node holds for records `target` may read (all it holds when
/// `target` is `None`). Returns the number of changes written.
pub fn export(local: &Local, target: Option<Division>, path: &Path) -> Result<usize, BundleError> {
    let store = &local.replica.store;
    let mine = local.replica.identity.cert.body.division;
    let keys = store.keys(mine, &|villages| match target {
        Some(t) => villages.iter().any(|v| t.covers(*v)),
        None => true,
    })?;
    let mut changes = Vec::with_capacity(keys.len());
    let mut signers = BTreeSet::new();
    for (_, hash) in keys {
        if let Some(c) = store.change(&hash)? {
            signers.insert(c.signer);
            changes.push(c.signed);
        }
    }
    let mut certs = Vec::new();
    for s in signers {
        certs.extend(store.certificates_of(&s)?);
    }
    let count = changes.len();
    let bundle = Bundle {
        revocations: store.revocations()?,
        certs,
        changes,
    };
    let mut bytes = MAGIC.to_vec();
    bytes.push(VERSION);
    bytes.extend(postcard::to_allocvec(&bundle).map_err(|e| BundleError::Format(e.to_string()))?);
    std::fs::write(path, bytes).map_err(|source| BundleError::Io {
        path: path.display().to_string(),
        source,
    })?;
    Ok(count)
}

/// Verifies and imports a bundle.
pub fn import(local: &mut Local, path: &Path) -> Result<Imported, BundleError> {
    let io = |source| BundleError::Io {
        path: path.display().to_string(),
        source,
    };
    let len = std::fs::metadata(path).map_err(io)?.len();
    if len > BUNDLE_BYTES_MAX {
        return Err(BundleError::Format(format!(
            "{len} bytes is more than the bound of {BUNDLE_BYTES_MAX}"
        )));
    }
    let bytes = std::fs::read(path).map_err(io)?;
    let body = bytes
        .strip_prefix(MAGIC)
        .ok_or_else(|| BundleError::Format("no GUIHEBUN header".into()))?;
    let (&version, body) = body
        .split_first()
        .ok_or_else(|| BundleError::Format("truncated".into()))?;
    if version != VERSION {
        return Err(BundleError::Format(format!(
            "bundle version {version}, this build reads {VERSION}"
        )));
    }
    let bundle: Bundle =
        postcard::from_bytes(body).map_err(|e| BundleError::Format(e.to_string()))?;

    let root = local.root;
    let store = &mut local.replica.store;
    if let Some(list) = &bundle.revocations {
        list.verify(&root)?;
        if store
            .revocations()?
            .is_none_or(|ours| ours.body.version < list.body.version)
        {
            store.put_revocations(list)?;
        }
    }
    for cert in &bundle.certs {
        cert.verify(&root)?;
    }
    for cert in &bundle.certs {
        store.put_certificate(cert)?;
    }
    let revocations = store.revocations()?.map(|l| l.body).unwrap_or_default();
    let me = local.replica.identity.cert.clone();
    let mut result = Imported {
        changes: bundle.changes.len(),
        ..Imported::default()
    };
    let mut readable = Vec::new();
    for signed in bundle.changes {
        if me.may_read(&signed.jurisdictions) {
            readable.push(signed);
        } else {
            result.skipped += 1;
        }
    }
    let verified = verify_batch(readable, &StoreCerts(&*store), &revocations)?;
    result.new = ingest(store, verified)?.len();
    Ok(result)
}
