//! Quarantine: validly signed changes that were refused, kept aside.
//!
//! A change whose signature verifies but which breaks the change rules (`rules`), or which
//! its signer may not write (a revoked or expired certificate, a record outside its
//! division, a claim its content does not bear out), is never applied, indexed, served or
//! relayed. It does not end the session it came in, and the signer's other records keep
//! syncing. It is kept aside so that an operator sees which node sent what: on the node's
//! status and sync page, in its metrics, and in reports to the county.
//!
//! Because Automerge applies one actor's changes to a record in sequence, that signer's
//! later changes to the same record wait behind a quarantined one (as pending changes).
//!
//! The store keeps at most [`PER_SIGNER_MAX`] quarantined changes per signer; beyond that a
//! refused change is dropped (and counted), so one certified node cannot fill a disk. A
//! dropped change may come again from its sender and is refused again.

use automerge::ChangeHash;
use serde::{Deserialize, Serialize};

use crate::id::{NodeId, RecordId};
use crate::signed::{SignedChange, VerifyError};

/// Quarantined changes kept per signer.
pub const PER_SIGNER_MAX: usize = 64;

/// A refused change as kept aside.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quarantined {
    /// The change's hash.
    pub hash: [u8; 32],
    /// Its signer.
    pub signer: NodeId,
    /// The record it claims.
    pub record: RecordId,
    /// When it says it was made (its author's clock).
    pub time_ms: u64,
    /// When this node refused it.
    pub refused_ms: u64,
    /// The reason's code (see [`VerifyError::code`]).
    pub code: String,
    /// The reason in words, for the operator.
    pub detail: String,
    /// The change and its signature, as received.
    pub signed: SignedChange,
}

impl Quarantined {
    /// A refused change, refused at `refused_ms` for `reason`.
    pub fn new(
        signed: SignedChange,
        hash: ChangeHash,
        signer: NodeId,
        time_ms: u64,
        refused_ms: u64,
        reason: &VerifyError,
    ) -> Quarantined {
        Quarantined {
            hash: hash.0,
            signer,
            record: signed.record,
            time_ms,
            refused_ms,
            code: reason.code().to_string(),
            detail: reason.to_string(),
            signed,
        }
    }

    /// The change's hash.
    pub fn change_hash(&self) -> ChangeHash {
        ChangeHash(self.hash)
    }
}

/// A change of this node's own that an office above refused and kept aside, as that office
/// said over sync (`wire::Message::Refused`). Automerge applies one actor's changes to a
/// record in order, so nothing this node writes to the record after it can reach that
/// office: the node refuses further writes to the record (`Replica::apply`), and the
/// office above records what is needed instead.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OwnRefused {
    /// The record.
    pub record: RecordId,
    /// The refused change's hash.
    pub hash: [u8; 32],
    /// Why it was refused (see [`label`]).
    pub code: String,
    /// The node that refused it.
    pub by: NodeId,
    /// When this node learned of it.
    pub at_ms: u64,
}

/// Own refused changes a store keeps (the first per record); beyond that new ones are not
/// kept, and none is forgotten. The office above keeps a refused change aside for good, so
/// the record stays closed here for good: the office above records what is needed.
pub const OWN_REFUSED_MAX: usize = 4_096;

/// Whether a refusal's code is one a node would send: a short lowercase word.
pub fn is_code(code: &str) -> bool {
    !code.is_empty()
        && code.len() <= 64
        && code.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
}

/// The words for a refusal's code, Chinese and English, for the status and sync pages.
/// Codes this build does not know (written by a newer one) get a general label.
pub fn label(code: &str) -> (&'static str, &'static str) {
    match code {
        "revoked" => ("签名节点已被吊销", "the signer was revoked"),
        "certificate" => (
            "签名时证书不在有效期内",
            "the signer's certificate was not valid then",
        ),
        "not_authorised" => (
            "签名节点无权修改该记录",
            "the signer may not write this record",
        ),
        "wrong_claim" => (
            "变更与其声称的记录不符",
            "the change is not the record it claims",
        ),
        "root_write" => (
            "改写了登记后不可更改的字段（辖区、限制查阅等）",
            "rewrites a field fixed at intake (villages, restriction…)",
        ),
        "delete" => ("删除了记录内容", "deletes part of the record"),
        "overwrite" | "existing_object" => {
            ("改写了已有的记录内容", "overwrites part of the record")
        }
        "second_root" => ("重复创建已有记录", "creates an existing record again"),
        "author" => ("冒用其他节点的名义", "writes in another node's name"),
        "time" => ("时间戳自相矛盾", "its times contradict each other"),
        "sequence" | "start_op" => ("变更序号不连续", "its sequence numbers do not run on"),
        "bounds" | "too_large" => ("超出记录的容量上限", "goes past the record's bounds"),
        "apply" | "unknown_object" | "missing_element" | "missing_dependency" | "no_record" => {
            ("无法应用（格式损坏）", "cannot be applied (malformed)")
        }
        _ => ("不符合记录规则", "breaks the record rules"),
    }
}
