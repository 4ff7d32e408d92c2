//! Signed changes: every Automerge change a node makes travels with its signature.
//!
//! The signature covers the change hash, the record it belongs to and the villages that
//! record belongs to, under a domain tag. The change's Automerge actor must start with the
//! signer's public key, so one node cannot pass its changes off as another's. A receiver
//! accepts a change only if the signature verifies, the signer holds a certificate from the
//! county root that was valid and not revoked when the change was made, and that
//! certificate may write every village of the record.

use automerge::{Change, ChangeHash};
use serde::{Deserialize, Serialize};

pub use crate::cert::CertLookup;
use crate::cert::{CertError, Keypair, RevocationBody, verify};
use crate::division::VillageCode;
use crate::id::{NodeId, RecordId};
use crate::record::{Record, jurisdictions_of};

const CHANGE_TAG: &[u8] = b"guihe-change-v1";

/// A change as it travels and is stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedChange {
    /// The record the change belongs to.
    pub record: RecordId,
    /// The villages of that record.
    pub jurisdictions: Vec<VillageCode>,
    /// The Automerge change. Its actor id starts with the signer's public key, so the
    /// signer does not travel separately.
    pub bytes: Vec<u8>,
    /// Ed25519 over the tagged (record, villages, change hash).
    pub signature: Vec<u8>,
}

/// Why a change was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// The bytes are not an Automerge change.
    #[error("not an Automerge change: {0}")]
    Malformed(String),
    /// The change's actor does not start with a public key.
    #[error("the change's actor does not name a node")]
    Actor,
    /// The signature does not verify.
    #[error("bad signature from {0}")]
    BadSignature(NodeId),
    /// No certificate is known for the signer.
    #[error("no certificate known for signer {0}")]
    UnknownSigner(NodeId),
    /// The signer's certificate was not valid when the change was made.
    #[error("signer {signer}: {error}")]
    Certificate {
        /// The signer.
        signer: NodeId,
        /// Why its certificates do not cover the change.
        error: CertError,
    },
    /// The signer may not write every village of the record.
    #[error("signer {signer} may not write record {record}")]
    NotAuthorised {
        /// The signer.
        signer: NodeId,
        /// The record.
        record: RecordId,
    },
    /// A first change whose content is not the record and villages it claims.
    #[error("the change does not create the record it claims ({0})")]
    WrongClaim(RecordId),
}

/// A change that passed verification.
#[derive(Debug, Clone)]
pub struct Verified {
    /// The signed change as received.
    pub signed: SignedChange,
    /// Its hash.
    pub hash: ChangeHash,
    /// The node that made and signed it.
    pub signer: NodeId,
    /// The hashes it depends on.
    pub deps: Vec<ChangeHash>,
    /// The time it was made (ms since the epoch, as its author's clock said).
    pub time_ms: u64,
}

fn message(record: RecordId, jurisdictions: &[VillageCode], hash: &ChangeHash) -> Vec<u8> {
    let mut out = CHANGE_TAG.to_vec();
    out.extend_from_slice(record.to_string().as_bytes());
    for v in jurisdictions {
        out.push(b'/');
        out.extend_from_slice(v.to_string().as_bytes());
    }
    out.push(b'#');
    out.extend_from_slice(&hash.0);
    out
}

/// The node whose key starts the change's actor id.
pub fn signer_of(change: &Change) -> Option<NodeId> {
    let actor = change.actor_id().to_bytes();
    let key: [u8; 32] = actor.get(..32)?.try_into().ok()?;
    Some(NodeId::from_bytes(key))
}

/// Signs a change made by this node.
pub fn sign(key: &Keypair, record: &Record, change: &Change) -> SignedChange {
    let jurisdictions = record.jurisdictions().to_vec();
    SignedChange {
        record: record.id(),
        signature: key.sign(&message(record.id(), &jurisdictions, &change.hash())),
        jurisdictions,
        bytes: change.raw_bytes().to_vec(),
    }
}

/// Signs every change of `record` that is not an ancestor of `before`: what a command (or
/// the creation of the record) just wrote.
pub fn sign_new(key: &Keypair, record: &Record, before: &[ChangeHash]) -> Vec<SignedChange> {
    record
        .doc()
        .get_changes(before)
        .into_iter()
        .map(|c| sign(key, record, &c))
        .collect()
}

/// Verifies one change. `certs` must hold only certificates already checked against the
/// county root.
pub fn verify_change(
    signed: SignedChange,
    certs: &dyn CertLookup,
    revocations: &RevocationBody,
) -> Result<Verified, VerifyError> {
    let change = Change::from_bytes(signed.bytes.clone())
        .map_err(|e| VerifyError::Malformed(e.to_string()))?;
    let signer = signer_of(&change).ok_or(VerifyError::Actor)?;
    let hash = change.hash();
    verify(
        &signer,
        &message(signed.record, &signed.jurisdictions, &hash),
        &signed.signature,
    )
    .map_err(|_| VerifyError::BadSignature(signer))?;
    let time_ms = u64::try_from(change.timestamp()).unwrap_or(0);
    let known = certs.certificates(&signer);
    if known.is_empty() {
        return Err(VerifyError::UnknownSigner(signer));
    }
    let mut authorised = false;
    let mut cert_error = None;
    for cert in &known {
        match cert.valid_at(time_ms, revocations) {
            Ok(()) if cert.may_write(&signed.jurisdictions) => {
                authorised = true;
                break;
            }
            Ok(()) => {}
            Err(e) => cert_error = Some(e),
        }
    }
    if !authorised {
        // A valid certificate that does not cover the record is a matter of authority;
        // only when no certificate was valid at the time is it a matter of validity.
        let valid_somewhere = known
            .iter()
            .any(|c| c.valid_at(time_ms, revocations).is_ok());
        return Err(match cert_error {
            Some(error) if !valid_somewhere => VerifyError::Certificate { signer, error },
            _ => VerifyError::NotAuthorised {
                signer,
                record: signed.record,
            },
        });
    }
    let deps = change.deps().to_vec();
    if deps.is_empty() {
        // A first change creates the record: its content must be the record and villages
        // the signature claims, or a writer of one village could create a record that
        // lands in another's.
        let mut doc = automerge::Automerge::new();
        doc.apply_changes([change])
            .map_err(|e| VerifyError::Malformed(e.to_string()))?;
        // Only the id and the villages are read: the rest of the record is checked when
        // it is read, and a first change is on the hot path of every sync.
        let id: Option<RecordId> = autosurgeon::hydrate_prop(&doc, automerge::ROOT, "id").ok();
        if id != Some(signed.record)
            || jurisdictions_of(&doc).as_deref() != Some(signed.jurisdictions.as_slice())
        {
            return Err(VerifyError::WrongClaim(signed.record));
        }
    }
    Ok(Verified {
        signed,
        hash,
        signer,
        deps,
        time_ms,
    })
}
