//! Signed change bundles for USB sneakernet.
//!
//! A bundle is `GUIHEBUN`, a version byte, and the postcard encoding of the exporting
//! node's newest revocation list, the certificates of the changes' signers and the changes
//! themselves, each carrying its own signature. Importing verifies everything as a sync
//! session would: the certificates against the county root, every change's signature, and
//! that the importing node may read it. One change that is not a change or whose signature
//! does not verify refuses the whole bundle and nothing is stored. A validly signed change
//! that its signer may not write, or that breaks the change rules, is quarantined as a
//! session would, and the rest is imported. Changes the importing node may not read are
//! skipped.

use std::collections::BTreeSet;
use std::path::Path;

use guihe_protocol::cert::{Certificate, Frontier, RevocationList, Revocations};
use guihe_protocol::division::Division;
use guihe_protocol::id::NodeId;
use guihe_protocol::ingest::ingest;
use guihe_protocol::signed::{CertLookup, SignedChange, VerifyError, verify_batch_with};
use guihe_protocol::store::{Store, StoreCerts};
use serde::{Deserialize, Serialize};

use crate::local::Local;
use crate::store::StoreError;

const MAGIC: &[u8] = b"GUIHEBUN";
/// Version 2 adds the frontier of revoked keys. Version 3 is version 2 that may carry
/// divisions' own records (`owned`), which a build before it cannot read. A bundle is
/// written in the oldest version that holds what it carries: without a frontier or such
/// records, version 1, which every release reads.
const VERSION: u8 = 3;
/// The largest bundle accepted, in bytes.
pub const BUNDLE_BYTES_MAX: u64 = 1 << 30;

/// What a bundle carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bundle {
    /// The exporting node's newest revocation list.
    pub revocations: Option<RevocationList>,
    /// The exporting node's newest frontier of revoked keys (version 2).
    pub frontier: Option<Frontier>,
    /// The certificates of the changes' signers.
    pub certs: Vec<Certificate>,
    /// The changes, each with its signature.
    pub changes: Vec<SignedChange>,
}

/// A version 1 bundle: no frontier.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct BundleV1 {
    revocations: Option<RevocationList>,
    certs: Vec<Certificate>,
    changes: Vec<SignedChange>,
}

impl Bundle {
    /// The bundle's file contents: the header and the encoding.
    pub fn to_bytes(&self) -> Result<Vec<u8>, BundleError> {
        let format = |e: postcard::Error| BundleError::Format(e.to_string());
        let mut bytes = MAGIC.to_vec();
        let owned = self.changes.iter().any(|c| c.record.is_owned());
        if owned || self.frontier.is_some() {
            bytes.push(if owned { VERSION } else { 2 });
            bytes.extend(postcard::to_allocvec(self).map_err(format)?);
        } else {
            bytes.push(1);
            bytes.extend(
                postcard::to_allocvec(&BundleV1 {
                    revocations: self.revocations.clone(),
                    certs: self.certs.clone(),
                    changes: self.changes.clone(),
                })
                .map_err(format)?,
            );
        }
        Ok(bytes)
    }

    /// Reads a bundle from a file's contents, checking the header and the bound. Nothing
    /// is verified yet: [`import_bytes`] does that.
    pub fn from_bytes(bytes: &[u8]) -> Result<Bundle, BundleError> {
        let len = bytes.len() as u64;
        if len > BUNDLE_BYTES_MAX {
            return Err(too_long(len));
        }
        let body = bytes
            .strip_prefix(MAGIC)
            .ok_or_else(|| BundleError::Format("no GUIHEBUN header".into()))?;
        let (&version, body) = body
            .split_first()
            .ok_or_else(|| BundleError::Format("truncated".into()))?;
        let format = |e: postcard::Error| BundleError::Format(e.to_string());
        match version {
            1 => {
                let v1: BundleV1 = postcard::from_bytes(body).map_err(format)?;
                Ok(Bundle {
                    revocations: v1.revocations,
                    frontier: None,
                    certs: v1.certs,
                    changes: v1.changes,
                })
            }
            2..=VERSION => postcard::from_bytes(body).map_err(format),
            _ => Err(BundleError::Format(format!(
                "此同步文件由更新版本的 guihe 写成（格式 {version}），本机只能读取格式 1 至 {VERSION}：请先升级本机再导入。 bundle format {version}, this release reads 1 to {VERSION}: upgrade this node, then import it again"
            ))),
        }
    }
}

fn too_long(len: u64) -> BundleError {
    BundleError::Format(format!(
        "{len} bytes is more than the bound of {BUNDLE_BYTES_MAX}"
    ))
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
    /// Refused and kept aside (or dropped, their signer's quarantine being full).
    pub quarantined: usize,
}

/// Writes every change this node holds for records `target` may read (all it holds when
/// `target` is `None`). Returns the number of changes written.
pub fn export(local: &Local, target: Option<Division>, path: &Path) -> Result<usize, BundleError> {
    let store = &local.replica.store;
    let mine = local.replica.identity.cert.body.division;
    let keys = store.keys(mine, &|villages| match target {
        Some(t) => villages.iter().any(|v| t.contains(*v)),
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
        frontier: store.frontier()?,
        certs,
        changes,
    };
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

/// Verifies and imports a bundle from a file's contents. Everything is verified before
/// anything is stored: the revocation list and the certificates against the county root,
/// then every change the node may read (against the bundle's certificates and the ones
/// the store holds, and the newer of the two revocation lists). A bundle refused for any
/// reason leaves the store as it was.
pub fn import_bytes(local: &mut Local, bytes: &[u8]) -> Result<Imported, BundleError> {
    let bundle = Bundle::from_bytes(bytes)?;
    let root = local.root;
    let store = &mut local.replica.store;
    let ours = store.revocations()?;
    let mut newer_list = None;
    if let Some(list) = bundle.revocations {
        list.verify(&root)?;
        if ours
            .as_ref()
            .is_none_or(|o| o.body.version < list.body.version)
        {
            newer_list = Some(list);
        }
    }
    let our_frontier = store.frontier()?;
    let mut newer_frontier = None;
    if let Some(frontier) = bundle.frontier {
        frontier.verify(&root)?;
        if our_frontier
            .as_ref()
            .is_none_or(|o| o.body.version < frontier.body.version)
        {
            newer_frontier = Some(frontier);
        }
    }
    for cert in &bundle.certs {
        cert.verify(&root)?;
    }
    let revocations = Revocations {
        list: newer_list
            .as_ref()
            .or(ours.as_ref())
            .map(|l| l.body.clone())
            .unwrap_or_default(),
        frontier: newer_frontier
            .as_ref()
            .or(our_frontier.as_ref())
            .map(|f| f.body.clone()),
    };
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
    let certs = WithBundle {
        store: &*store,
        bundle: &bundle.certs,
    };
    let verified = verify_batch_with(
        readable,
        &certs,
        &revocations,
        &crate::threads::Threads::of_machine(),
    )?;
    if let Some(list) = &newer_list {
        store.put_revocations(list)?;
    }
    if let Some(frontier) = &newer_frontier {
        store.put_frontier(frontier)?;
    }
    for cert in &bundle.certs {
        store.put_certificate(cert)?;
    }
    let now = crate::local::now_ms();
    let ingested = ingest(store, verified, now)?;
    result.new = ingested.stored.len();
    result.quarantined = ingested.quarantined.len() + ingested.dropped;
    // What was refused goes into this office's quarantine report, which syncs up to the
    // county the next time the daemon runs.
    if !ingested.quarantined.is_empty() {
        match local.replica.report_quarantined(now, &mut rand::rng()) {
            Ok(written) if !written.is_empty() => {
                local
                    .replica
                    .store
                    .put_last_write_ms(local.replica.last_write_ms)?;
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(%e, "could not write the refused changes into the quarantine report; the daemon writes it when it runs");
            }
        }
    }
    if newer_frontier.is_some()
        && let Err(e) = local.flag_beyond_frontier()
    {
        tracing::warn!(%e, "could not check records against the frontier");
    }
    Ok(result)
}

/// The certificates a bundle's changes are checked against: those the store holds and
/// those the bundle carries (verified against the root, not stored yet).
struct WithBundle<'a, S: Store> {
    store: &'a S,
    bundle: &'a [Certificate],
}

impl<S: Store> CertLookup for WithBundle<'_, S> {
    fn certificates(&self, node: &NodeId) -> Vec<Certificate> {
        let mut certs = StoreCerts(self.store).certificates(node);
        for cert in self.bundle.iter().filter(|c| c.node() == *node) {
            if !certs.contains(cert) {
                certs.push(cert.clone());
            }
        }
        certs
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use guihe_protocol::cert::{FrontierBody, Keypair, Root};
    use guihe_protocol::id::{CaseId, OwnedId, RecordId};

    fn change(record: RecordId, place: &str) -> SignedChange {
        SignedChange {
            record,
            jurisdictions: vec![place.parse().unwrap()],
            bytes: vec![1, 2, 3],
            signature: vec![4; 64],
        }
    }

    /// Every bundle format written so far reads back as written: format 1 (no frontier, as
    /// release 0.1 wrote it), 2 (a frontier) and 3 (a division's own record); each is
    /// written only when what it carries needs it, and a newer format is refused in words.
    #[test]
    fn bundles_of_every_format_read_back_and_the_oldest_that_holds_them_is_written() {
        let case = change(RecordId::Case(CaseId::from_bytes([1; 16])), "500240101201");
        let report = change(
            RecordId::Owned(OwnedId::from_bytes([2; 16])),
            "500240101000",
        );
        let frontier = Root::new(Keypair::from_secret([1; 32]))
            .frontier(FrontierBody::default())
            .unwrap();
        let plain = Bundle {
            revocations: None,
            frontier: None,
            certs: Vec::new(),
            changes: vec![case.clone()],
        };
        let with_frontier = Bundle {
            frontier: Some(frontier),
            ..plain.clone()
        };
        let with_report = Bundle {
            changes: vec![case, report],
            ..plain.clone()
        };
        for (bundle, format) in [(&plain, 1), (&with_frontier, 2), (&with_report, 3)] {
            let bytes = bundle.to_bytes().unwrap();
            assert_eq!(bytes[MAGIC.len()], format);
            assert_eq!(&Bundle::from_bytes(&bytes).unwrap(), bundle);
        }
        // Format 1 as release 0.1 wrote it.
        let mut old = MAGIC.to_vec();
        old.push(1);
        old.extend(
            postcard::to_allocvec(&BundleV1 {
                revocations: None,
                certs: Vec::new(),
                changes: plain.changes.clone(),
            })
            .unwrap(),
        );
        assert_eq!(Bundle::from_bytes(&old).unwrap(), plain);
        let mut newer = plain.to_bytes().unwrap();
        newer[MAGIC.len()] = VERSION + 1;
        let refused = Bundle::from_bytes(&newer).unwrap_err().to_string();
        assert!(refused.contains("请先升级本机"), "{refused}");
    }
}
