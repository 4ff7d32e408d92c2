//! Signed changes: every Automerge change a node makes travels with its signature.
//!
//! The signature covers the change hash, the record it belongs to and the villages that
//! record belongs to, under a domain tag. The change's Automerge actor must start with the
//! signer's public key, so one node cannot pass its changes off as another's. A receiver
//! accepts a change only if the signature verifies, the signer holds a certificate from the
//! county root that was valid and not revoked when the change was made, and that
//! certificate may write every village of the record.

use std::collections::BTreeMap;

use automerge::{Change, ChangeHash};
use serde::{Deserialize, Serialize};

pub use crate::cert::CertLookup;
use crate::cert::{CertError, Certificate, Keypair, RevocationBody, Revocations, verify};
use crate::division::Division;
use crate::id::{NodeId, RecordId};
use crate::record::Record;
use crate::rules::RuleError;

const CHANGE_TAG: &[u8] = b"guihe-change-v1";

/// A change as it travels and is stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedChange {
    /// The record the change belongs to.
    pub record: RecordId,
    /// The divisions the record belongs to: the villages of a case or petition, or the
    /// owner of a division's own record (`owned`). On the wire each is its 12-digit code,
    /// as a village was before division-owned records existed.
    pub jurisdictions: Vec<Division>,
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
    /// A first change whose content is not the record and villages it claims, or a later
    /// change signed for villages that are not its record's.
    #[error("the change does not belong to the record it claims ({0})")]
    WrongClaim(RecordId),
    /// The change breaks the change rules (`rules`).
    #[error("the change breaks the rules: {0}")]
    Rule(#[from] RuleError),
}

impl VerifyError {
    /// Whether the error refuses the whole batch the change came in: bytes that are not a
    /// change, or a signature that does not verify. Every other refusal is of one validly
    /// signed change, which is quarantined while the rest of its batch goes on.
    pub fn is_fatal(&self) -> bool {
        matches!(
            self,
            VerifyError::Malformed(_)
                | VerifyError::Actor
                | VerifyError::BadSignature(_)
                | VerifyError::UnknownSigner(_)
        )
    }

    /// A short stable code for reports and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            VerifyError::Malformed(_) => "malformed",
            VerifyError::Actor => "actor",
            VerifyError::BadSignature(_) => "bad_signature",
            VerifyError::UnknownSigner(_) => "unknown_signer",
            VerifyError::Certificate {
                error: CertError::Revoked { .. },
                ..
            } => "revoked",
            VerifyError::Certificate { .. } => "certificate",
            VerifyError::NotAuthorised { .. } => "not_authorised",
            VerifyError::WrongClaim(_) => "wrong_claim",
            VerifyError::Rule(e) => e.code(),
        }
    }
}

/// A validly signed change that was refused: it is quarantined, not applied.
#[derive(Debug, Clone)]
pub struct Refused {
    /// The change as received.
    pub signed: SignedChange,
    /// Its hash.
    pub hash: ChangeHash,
    /// Its signer.
    pub signer: NodeId,
    /// When it says it was made.
    pub time_ms: u64,
    /// Why it was refused (never a fatal error; see [`VerifyError::is_fatal`]).
    pub reason: VerifyError,
}

impl Refused {
    /// The change as kept aside, refused at `refused_ms`.
    pub fn quarantined(&self, refused_ms: u64) -> crate::quarantine::Quarantined {
        crate::quarantine::Quarantined::new(
            self.signed.clone(),
            self.hash,
            self.signer,
            self.time_ms,
            refused_ms,
            &self.reason,
        )
    }
}

/// One change of a batch after verification: verified, or refused on its own.
pub type Checked = Result<Verified, Refused>;

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
    /// The change, parsed once here so that applying it does not parse it again.
    pub change: Change,
    /// For a first change, the record's document (and history) as that change makes it:
    /// built to check the claim, and kept so that ingesting it does not build it again.
    pub first: Option<Box<crate::rules::Created>>,
    /// For a later change, what the change rules read of it (`rules::read`), so that
    /// ingesting it does not read it again.
    pub read: Option<crate::rules::Read>,
}

fn message(record: RecordId, jurisdictions: &[Division], hash: &ChangeHash) -> Vec<u8> {
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

/// Parses an Automerge change from bytes that came from outside (a peer, a bundle).
///
/// Automerge 0.12 panics on some malformed changes instead of returning an error: an
/// object id in the op columns whose counter or actor index does not fit in 32 bits
/// unwraps a failed conversion (`types.rs`, `OpId::new`). The fuzzer found it through a
/// sync session and a bundle (`fuzz/regressions/`). Such a panic is caught here and
/// becomes a [`VerifyError::Malformed`] like any other bad encoding, so no input can take a
/// node down. This relies on panics unwinding, as they do in every profile of the project.
pub fn parse_change(bytes: Vec<u8>) -> Result<Change, VerifyError> {
    std::panic::catch_unwind(move || Change::from_bytes(bytes))
        .map_err(|_| VerifyError::Malformed("the change's columns could not be read".into()))?
        .map_err(|e| VerifyError::Malformed(e.to_string()))
}

/// The node whose key starts the change's actor id.
pub fn signer_of(change: &Change) -> Option<NodeId> {
    let actor = change.actor_id().to_bytes();
    let key: [u8; 32] = actor.get(..32)?.try_into().ok()?;
    Some(NodeId::from_bytes(key))
}

/// A document whose changes a node signs: a case or petition (`record`), or a division's
/// own record (`owned`).
pub trait Document {
    /// The record's id.
    fn record_id(&self) -> RecordId;
    /// The divisions it belongs to: its villages, or its owner.
    fn divisions(&self) -> Vec<Division>;
    /// Its Automerge document.
    fn document(&self) -> &automerge::Automerge;
}

impl Document for Record {
    fn record_id(&self) -> RecordId {
        self.id()
    }
    fn divisions(&self) -> Vec<Division> {
        self.jurisdictions()
            .iter()
            .copied()
            .map(Division::from)
            .collect()
    }
    fn document(&self) -> &automerge::Automerge {
        self.doc()
    }
}

impl Document for crate::owned::Owned {
    fn record_id(&self) -> RecordId {
        self.id()
    }
    fn divisions(&self) -> Vec<Division> {
        vec![self.owner()]
    }
    fn document(&self) -> &automerge::Automerge {
        self.doc()
    }
}

/// Signs a change made by this node.
pub fn sign(key: &Keypair, record: &dyn Document, change: &Change) -> SignedChange {
    let jurisdictions = record.divisions();
    let id = record.record_id();
    SignedChange {
        record: id,
        signature: key.sign(&message(id, &jurisdictions, &change.hash())),
        jurisdictions,
        bytes: change.raw_bytes().to_vec(),
    }
}

/// Signs every change of `record` that is not an ancestor of `before`: what a command (or
/// the creation of the record) just wrote.
pub fn sign_new(key: &Keypair, record: &dyn Document, before: &[ChangeHash]) -> Vec<SignedChange> {
    record
        .document()
        .get_changes(before)
        .into_iter()
        .map(|c| sign(key, record, &c))
        .collect()
}

/// Verifies one change. `certs` must hold only certificates already checked against the
/// county root. Any refusal is an error here, fatal or not (see [`verify_batch`]).
pub fn verify_change(
    signed: SignedChange,
    certs: &dyn CertLookup,
    revocations: &Revocations,
) -> Result<Verified, VerifyError> {
    check(look_up(signed, certs), revocations)?.map_err(|r| r.reason)
}

/// Batches at least this long are split into parts for [`Parallel`].
const PARALLEL_MIN: usize = 32;

/// Runs independent jobs for the protocol, which starts no threads of its own: the driver
/// decides how many threads check signatures (the daemon: its cores; the simulator and
/// the tests: none but the caller's, [`InOrder`]).
pub trait Parallel: Send + Sync {
    /// Into how many parts a batch is split (1: checked in order on the caller's thread).
    fn width(&self) -> usize;
    /// Runs every job and returns when all have run. A job that did not run (its thread
    /// failed) leaves its part unchecked, and the batch is refused.
    fn run<'a>(&self, jobs: Vec<Box<dyn FnOnce() + Send + 'a>>);
}

/// Every job in order, on the caller's thread.
#[derive(Debug, Clone, Copy, Default)]
pub struct InOrder;

impl Parallel for InOrder {
    fn width(&self) -> usize {
        1
    }
    fn run<'a>(&self, jobs: Vec<Box<dyn FnOnce() + Send + 'a>>) {
        for job in jobs {
            job();
        }
    }
}

/// Verifies a batch as [`verify_change`] does each change, in order on the caller's thread
/// ([`verify_batch_with`] and [`InOrder`]).
pub fn verify_batch(
    batch: Vec<SignedChange>,
    certs: &dyn CertLookup,
    revocations: &Revocations,
) -> Result<Vec<Checked>, VerifyError> {
    verify_batch_with(batch, certs, revocations, &InOrder)
}

/// Verifies a batch as [`verify_change`] does each change. The first fatal failure, in the
/// batch's order, refuses it all (see [`VerifyError::is_fatal`]); any other refusal is of
/// its change alone, which comes back as [`Refused`] in its place. Certificates are looked
/// up once per signer, and the signatures and first changes, most of the cost, are checked
/// in as many parts as `parallel` runs at once: the result does not depend on how the work
/// was split.
pub fn verify_batch_with(
    batch: Vec<SignedChange>,
    certs: &dyn CertLookup,
    revocations: &Revocations,
    parallel: &dyn Parallel,
) -> Result<Vec<Checked>, VerifyError> {
    let cached = Cached {
        inner: certs,
        seen: std::cell::RefCell::new(BTreeMap::new()),
    };
    let items: Vec<LookedUp> = batch.into_iter().map(|s| look_up(s, &cached)).collect();
    let width = parallel.width();
    if width < 2 || items.len() < PARALLEL_MIN {
        return items.into_iter().map(|i| check(i, revocations)).collect();
    }
    let chunk = items.len().div_ceil(width);
    let mut chunks: Vec<Vec<LookedUp>> = Vec::with_capacity(width);
    let mut items = items.into_iter().peekable();
    while items.peek().is_some() {
        chunks.push(items.by_ref().take(chunk).collect());
    }
    let mut results: Vec<Option<Result<Vec<Checked>, VerifyError>>> =
        chunks.iter().map(|_| None).collect();
    let jobs: Vec<Box<dyn FnOnce() + Send + '_>> = chunks
        .into_iter()
        .zip(results.iter_mut())
        .map(|(c, slot)| -> Box<dyn FnOnce() + Send + '_> {
            Box::new(move || {
                *slot = Some(
                    c.into_iter()
                        .map(|i| check(i, revocations))
                        .collect::<Result<Vec<_>, _>>(),
                );
            })
        })
        .collect();
    parallel.run(jobs);
    let mut out = Vec::new();
    for r in results {
        out.extend(
            r.unwrap_or_else(|| Err(VerifyError::Malformed("verifier thread failed".into())))?,
        );
    }
    Ok(out)
}

/// A lookup that asks `inner` once per node.
struct Cached<'a> {
    inner: &'a dyn CertLookup,
    seen: std::cell::RefCell<BTreeMap<NodeId, Vec<Certificate>>>,
}

impl CertLookup for Cached<'_> {
    fn certificates(&self, node: &NodeId) -> Vec<Certificate> {
        if let Some(c) = self.seen.borrow().get(node) {
            return c.clone();
        }
        let c = self.inner.certificates(node);
        self.seen.borrow_mut().insert(*node, c.clone());
        c
    }
}

/// A change parsed, with the certificates of its signer: everything [`check`] needs, so
/// that it needs no store.
struct LookedUp {
    signed: SignedChange,
    parsed: Result<(Change, NodeId), VerifyError>,
    certs: Vec<Certificate>,
}

fn look_up(signed: SignedChange, certs: &dyn CertLookup) -> LookedUp {
    let parsed = parse_change(signed.bytes.clone()).and_then(|c| {
        let signer = signer_of(&c).ok_or(VerifyError::Actor)?;
        Ok((c, signer))
    });
    let certs = match &parsed {
        Ok((_, signer)) => certs.certificates(signer),
        Err(_) => Vec::new(),
    };
    LookedUp {
        signed,
        parsed,
        certs,
    }
}

/// The checks of [`verify_change`], in its order, on a looked-up change. A fatal refusal
/// is the outer error; a refusal of this change alone is the inner one.
fn check(item: LookedUp, revocations: &Revocations) -> Result<Checked, VerifyError> {
    let LookedUp {
        signed,
        parsed,
        certs: known,
    } = item;
    let (change, signer) = parsed?;
    let hash = change.hash();
    verify(
        &signer,
        &message(signed.record, &signed.jurisdictions, &hash),
        &signed.signature,
    )
    .map_err(|_| VerifyError::BadSignature(signer))?;
    let time_ms = u64::try_from(change.timestamp()).unwrap_or(0);
    if known.is_empty() {
        return Err(VerifyError::UnknownSigner(signer));
    }
    // A case or petition belongs to villages; a division's own record to one township or
    // county. A claim of any other shape is no record's, whatever the change holds.
    let shape_claimed = match signed.jurisdictions.as_slice() {
        [owner] if !matches!(owner, Division::Village(_)) => signed.record.is_owned(),
        places => {
            !signed.record.is_owned() && places.iter().all(|d| matches!(d, Division::Village(_)))
        }
    };
    let refuse = |signed: SignedChange, reason: VerifyError| {
        Ok(Err(Refused {
            signed,
            hash,
            signer,
            time_ms,
            reason,
        }))
    };
    if !shape_claimed {
        let record = signed.record;
        return refuse(signed, VerifyError::WrongClaim(record));
    }
    // A revoked key's changes are held against the county's frontier when there is one:
    // within it they stand whatever time they claim, beyond it they are refused whatever
    // time they claim. Without a frontier, the revocation's time is the cut-off.
    let incarnation = crate::record::actor_parts(change.actor_id()).map_or(0, |(_, i)| i);
    let frontier = revocations
        .frontier
        .as_ref()
        .and_then(|f| f.allows(&signer, signed.record, incarnation, change.seq()));
    let unrevoked = RevocationBody::default();
    let by_time = match frontier {
        Some(false) => {
            let serial = known.first().map_or(0, |c| c.body.serial);
            return refuse(
                signed,
                VerifyError::Certificate {
                    signer,
                    error: CertError::Revoked {
                        serial,
                        node: signer,
                    },
                },
            );
        }
        Some(true) => &unrevoked,
        None => &revocations.list,
    };
    let mut authorised = false;
    let mut cert_error = None;
    for cert in &known {
        match cert.valid_at(time_ms, by_time) {
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
        let valid_somewhere = known.iter().any(|c| c.valid_at(time_ms, by_time).is_ok());
        let reason = match cert_error {
            Some(error) if !valid_somewhere => VerifyError::Certificate { signer, error },
            _ => VerifyError::NotAuthorised {
                signer,
                record: signed.record,
            },
        };
        return refuse(signed, reason);
    }
    let deps = change.deps().to_vec();
    let mut first = None;
    let mut read = None;
    if deps.is_empty() {
        // A first change creates the record: it must make a whole record under the change
        // rules, and that record must be the one and the villages the signature claims, or
        // a writer of one village could create a record that lands in another's.
        // (A record of a schema this build does not know yet is held, and its claim
        // checked when it is applied.)
        match crate::rules::create(&change, signer) {
            Ok(created) => {
                if created.id != signed.record || created.villages != signed.jurisdictions {
                    let record = signed.record;
                    return refuse(signed, VerifyError::WrongClaim(record));
                }
                first = Some(Box::new(created));
            }
            Err(e) if e.is_temporary() => {}
            Err(e) => return refuse(signed, VerifyError::Rule(e)),
        }
    } else {
        // What does not depend on the record is checked here, on every core.
        match crate::rules::read(&change, signer) {
            Ok(r) => read = Some(r),
            Err(e) if e.is_temporary() => {}
            Err(e) => return refuse(signed, VerifyError::Rule(e)),
        }
    }
    Ok(Ok(Verified {
        signed,
        hash,
        signer,
        deps,
        time_ms,
        change,
        first,
        read,
    }))
}
