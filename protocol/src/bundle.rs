//! Signed change bundles, carried on a USB stick where no link reaches.
//!
//! A bundle is `GUIHEBUN`, a version byte, and the postcard encoding of the exporting
//! node's newest revocation list (and frontier of revoked keys), the certificates of the
//! changes' signers and the changes themselves, each carrying its own signature.
//! [`accept`] takes one in as a sync session takes a batch: the certificates against the
//! county root, every change's signature, authority and rules, and that the importing node
//! may read it. One change that is not a change or whose signature does not verify refuses
//! the whole bundle and nothing is stored. A validly signed change that its signer may not
//! write, or that breaks the change rules, is quarantined as a session would, and the rest
//! is imported. Changes the importing node may not read are skipped. The node reads and
//! writes the files; `host::Host::import` passes what a bundle applied to the sessions.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::cert::{Certificate, Frontier, RevocationList, Revocations};
use crate::division::Division;
use crate::id::NodeId;
use crate::ingest::{Ingested, ingest};
use crate::signed::{CertLookup, Parallel, SignedChange, VerifyError, verify_batch_with};
use crate::store::{Store, StoreCerts};

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
    /// is verified yet: [`accept`] does that.
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

/// Why a bundle could not be made or taken in.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BundleError {
    /// The bytes are not a bundle this build reads.
    #[error("not a guihe bundle: {0}")]
    Format(String),
    /// A certificate or the revocation list is not the county's.
    #[error("certificate: {0}")]
    Cert(#[from] crate::cert::CertError),
    /// A change was refused; nothing from the bundle was stored.
    #[error("refused change, nothing imported: {0}")]
    Change(#[from] VerifyError),
    /// The store failed.
    #[error("store: {0}")]
    Store(String),
}

fn store_err<E: std::error::Error>(e: E) -> BundleError {
    BundleError::Store(e.to_string())
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

/// A bundle of every change `store` holds for records `target` may read (all it holds
/// when `target` is `None`), read as the node of division `mine` reads its store.
pub fn of_store<S: Store>(
    store: &S,
    mine: Division,
    target: Option<Division>,
) -> Result<Bundle, BundleError> {
    let keys = store
        .keys(mine, &|villages| match target {
            Some(t) => villages.iter().any(|v| t.contains(*v)),
            None => true,
        })
        .map_err(store_err)?;
    let mut changes = Vec::with_capacity(keys.len());
    let mut signers = BTreeSet::new();
    for (_, hash) in keys {
        if let Some(c) = store.change(&hash).map_err(store_err)? {
            signers.insert(c.signer);
            changes.push(c.signed);
        }
    }
    let mut certs = Vec::new();
    for s in signers {
        certs.extend(store.certificates_of(&s).map_err(store_err)?);
    }
    Ok(Bundle {
        revocations: store.revocations().map_err(store_err)?,
        frontier: store.frontier().map_err(store_err)?,
        certs,
        changes,
    })
}

/// What [`accept`] did, beyond the counts: what was ingested, and whether the bundle
/// brought a newer revocation list or frontier.
#[derive(Debug, Clone, Default)]
pub struct Accepted {
    /// The counts.
    pub imported: Imported,
    /// What was stored, applied and refused.
    pub ingested: Ingested,
    /// A newer revocation list was stored.
    pub newer_revocations: bool,
    /// A newer frontier of revoked keys was stored.
    pub newer_frontier: bool,
}

/// Verifies and takes in a bundle from its bytes, into the store of the node whose
/// certificate is `me`, at `now_ms`. Everything is verified before anything is stored: the
/// revocation list and the certificates against the county `root`, then every change the
/// node may read (against the bundle's certificates and the ones the store holds, and the
/// newer of the two revocation lists). A bundle refused for any reason leaves the store as
/// it was. Signatures are checked in parts that `parallel` runs.
pub fn accept<S: Store>(
    bytes: &[u8],
    root: &NodeId,
    me: &Certificate,
    store: &mut S,
    now_ms: u64,
    parallel: &dyn Parallel,
) -> Result<Accepted, BundleError> {
    let bundle = Bundle::from_bytes(bytes)?;
    let ours = store.revocations().map_err(store_err)?;
    let mut newer_list = None;
    if let Some(list) = bundle.revocations {
        list.verify(root)?;
        if ours
            .as_ref()
            .is_none_or(|o| o.body.version < list.body.version)
        {
            newer_list = Some(list);
        }
    }
    let our_frontier = store.frontier().map_err(store_err)?;
    let mut newer_frontier = None;
    if let Some(frontier) = bundle.frontier {
        frontier.verify(root)?;
        if our_frontier
            .as_ref()
            .is_none_or(|o| o.body.version < frontier.body.version)
        {
            newer_frontier = Some(frontier);
        }
    }
    for cert in &bundle.certs {
        cert.verify(root)?;
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
    let mut imported = Imported {
        changes: bundle.changes.len(),
        ..Imported::default()
    };
    let mut readable = Vec::new();
    for signed in bundle.changes {
        if me.may_read(&signed.jurisdictions) {
            readable.push(signed);
        } else {
            imported.skipped += 1;
        }
    }
    let certs = WithBundle {
        store: &*store,
        bundle: &bundle.certs,
    };
    let verified = verify_batch_with(readable, &certs, &revocations, parallel)?;
    if let Some(list) = &newer_list {
        store.put_revocations(list).map_err(store_err)?;
    }
    if let Some(frontier) = &newer_frontier {
        store.put_frontier(frontier).map_err(store_err)?;
    }
    for cert in &bundle.certs {
        store.put_certificate(cert).map_err(store_err)?;
    }
    let ingested = ingest(store, verified, now_ms).map_err(store_err)?;
    imported.new = ingested.stored.len();
    imported.quarantined = ingested.quarantined.len() + ingested.dropped;
    Ok(Accepted {
        imported,
        ingested,
        newer_revocations: newer_list.is_some(),
        newer_frontier: newer_frontier.is_some(),
    })
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
    use crate::cert::{FrontierBody, Keypair, Root};
    use crate::id::{CaseId, OwnedId, RecordId};

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
