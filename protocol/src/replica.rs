//! A node's protocol state: its identity, its store and its writer. The node and the
//! simulator both keep one per node; local commands go through it so that every change is
//! signed and stored before it is acknowledged.

use automerge::ChangeHash;

use crate::cert::Identity;
use crate::deadline::Deadlines;
use crate::id::{EventId, RecordId};
use crate::ingest::{CommitError, commit_local};
use crate::owned::{Body, Entry, Owned, OwnedError, OwnedKind};
use crate::quarantine::Quarantined;
use crate::record::{Command, CommandError, DocError, NewRecord, Record, Writer};
use crate::store::{Store, StoredChange};

/// Why this office's quarantine report could not be written.
#[derive(Debug, thiserror::Error)]
pub enum ReportError<E: std::error::Error> {
    /// The node may not write now (its clock), or the report could not be written.
    #[error(transparent)]
    Command(#[from] CommandError),
    /// The report could not be written.
    #[error(transparent)]
    Owned(#[from] OwnedError),
    /// The store failed.
    #[error("store: {0}")]
    Store(E),
}

impl<E: std::error::Error> From<CommitError<E>> for ReportError<E> {
    fn from(e: CommitError<E>) -> Self {
        match e {
            CommitError::Store(e) => ReportError::Store(e),
            CommitError::Rules(e) => ReportError::Command(CommandError::Rules(e)),
        }
    }
}

/// Why a local command failed.
#[derive(Debug, thiserror::Error)]
pub enum ReplicaError<E: std::error::Error> {
    /// The command was refused or its document unreadable; nothing was written.
    #[error(transparent)]
    Command(#[from] CommandError),
    /// The store holds no such record.
    #[error("no record {0}")]
    Unknown(RecordId),
    /// The store failed.
    #[error("store: {0}")]
    Store(E),
}

impl<E: std::error::Error> From<CommitError<E>> for ReplicaError<E> {
    fn from(e: CommitError<E>) -> Self {
        match e {
            CommitError::Store(e) => ReplicaError::Store(e),
            CommitError::Rules(e) => ReplicaError::Command(CommandError::Rules(e)),
        }
    }
}

impl<E: std::error::Error> From<DocError> for ReplicaError<E> {
    fn from(e: DocError) -> Self {
        ReplicaError::Command(CommandError::Document(e))
    }
}

/// How far a node's clock may fall behind its own latest entry before it refuses to
/// write: clocks kept by the network move back a little now and then.
pub const CLOCK_BACK_TOLERANCE_MS: u64 = 15 * 60_000;

/// A command carried out: its event, and the signed, stored changes to push.
pub type Applied = (EventId, Vec<StoredChange>);

/// One node's identity, store and writer.
#[derive(Debug)]
pub struct Replica<S: Store> {
    /// The node's key and certificate.
    pub identity: Identity,
    /// Its store.
    pub store: S,
    /// Its writing identity (clock, actor, staff).
    pub writer: Writer,
    /// When this node last wrote (its own clock); the node keeps it across restarts.
    pub last_write_ms: u64,
}

impl<S: Store> Replica<S> {
    /// A replica writing as `staff` with the actor of store incarnation `incarnation`.
    pub fn new(identity: Identity, store: S, staff: crate::id::StaffId, incarnation: u64) -> Self {
        let mut writer = Writer::new(identity.key.public(), incarnation, staff);
        writer.author.division = Some(identity.cert.body.division);
        Replica {
            identity,
            store,
            writer,
            last_write_ms: 0,
        }
    }

    /// Refuses to write when the node's clock cannot be right: outside its certificate's
    /// validity (every peer would refuse the change), or earlier than its own latest entry
    /// by more than [`CLOCK_BACK_TOLERANCE_MS`] (the clock was set back).
    pub fn check_clock(&self, now_ms: u64) -> Result<(), CommandError> {
        let b = &self.identity.cert.body;
        if now_ms < b.not_before_ms || now_ms > b.not_after_ms {
            return Err(CommandError::ClockOutsideCertificate {
                now_ms,
                not_before_ms: b.not_before_ms,
                not_after_ms: b.not_after_ms,
            });
        }
        if now_ms.saturating_add(CLOCK_BACK_TOLERANCE_MS) < self.last_write_ms {
            return Err(CommandError::ClockBehind {
                now_ms,
                last_ms: self.last_write_ms,
            });
        }
        Ok(())
    }

    /// A record as currently stored.
    pub fn record(&self, id: RecordId) -> Result<Record, ReplicaError<S::Error>> {
        let doc = self
            .store
            .doc(id)
            .map_err(ReplicaError::Store)?
            .ok_or(ReplicaError::Unknown(id))?;
        Ok(Record::from_doc(doc)?)
    }

    /// Refuses to write a record of villages this node's certificate may not write: every
    /// office would refuse the change (`signed`), so it is not made.
    pub fn check_authority(
        &self,
        jurisdictions: &[crate::division::VillageCode],
    ) -> Result<(), CommandError> {
        if self.identity.cert.may_write(jurisdictions) {
            Ok(())
        } else {
            Err(CommandError::NotAuthorised {
                division: self.identity.cert.body.division,
                jurisdictions: jurisdictions.to_vec(),
            })
        }
    }

    /// Writes the newest schema this build knows that the county's settings allow.
    fn refresh_schema(&mut self) -> Result<(), ReplicaError<S::Error>> {
        let settings = self.store.settings().map_err(ReplicaError::Store)?;
        self.writer.schema = crate::cert::writable_schema(
            settings.as_ref().map(|s| &s.body),
            crate::record::SCHEMA_VERSION,
        );
        Ok(())
    }

    /// Takes in a new record; returns its id and the signed, stored changes to push.
    pub fn create(
        &mut self,
        now_ms: u64,
        rng: &mut dyn rand_core::RngCore,
        rules: &Deadlines,
        new: NewRecord,
    ) -> Result<(RecordId, Vec<StoredChange>), ReplicaError<S::Error>> {
        self.check_clock(now_ms)?;
        self.check_authority(&new.jurisdictions)?;
        self.refresh_schema()?;
        let (record, _) = Record::create(&mut self.writer.ctx(now_ms, rng, rules), new)?;
        let changes = commit_local(&mut self.store, &self.identity.key, &record, &[])?;
        self.last_write_ms = self.last_write_ms.max(now_ms);
        Ok((record.id(), changes))
    }

    /// Carries out a command on a stored record; returns the event id and the signed,
    /// stored changes to push.
    pub fn apply(
        &mut self,
        id: RecordId,
        now_ms: u64,
        rng: &mut dyn rand_core::RngCore,
        rules: &Deadlines,
        command: Command,
    ) -> Result<(EventId, Vec<StoredChange>), ReplicaError<S::Error>> {
        self.check_clock(now_ms)?;
        self.check_not_refused(id)?;
        let mut record = self.record(id)?;
        self.check_authority(record.jurisdictions())?;
        self.refresh_schema()?;
        let before: Vec<ChangeHash> = record.heads();
        let event = record.apply(&mut self.writer.ctx(now_ms, rng, rules), command)?;
        let changes = commit_local(&mut self.store, &self.identity.key, &record, &before)?;
        self.last_write_ms = self.last_write_ms.max(now_ms);
        Ok((event, changes))
    }

    /// As [`Replica::apply`], with the command chosen from the record's fold (see
    /// [`Record::choose`]): a driver that picks the next command from the record's state
    /// (the simulator's workload) reads the record once. `Ok(None)` if `choose` chose
    /// nothing.
    pub fn apply_chosen(
        &mut self,
        id: RecordId,
        now_ms: u64,
        rng: &mut dyn rand_core::RngCore,
        rules: &Deadlines,
        choose: impl FnOnce(&mut dyn rand_core::RngCore, &crate::fold::Fold) -> Option<Command>,
    ) -> Result<Option<Applied>, ReplicaError<S::Error>> {
        // (Loaded here, in the same call that stores the result: a record loaded earlier
        // by the caller could miss changes ingested since, and storing its document would
        // drop them.)
        let mut record = self.record(id)?;
        let Some(chosen) = record.choose(rules, rng, choose)? else {
            return Ok(None);
        };
        self.check_clock(now_ms)?;
        self.check_not_refused(record.id())?;
        self.check_authority(record.jurisdictions())?;
        self.refresh_schema()?;
        let before: Vec<ChangeHash> = record.heads();
        let event = record.apply_chosen(&mut self.writer.ctx(now_ms, rng, rules), chosen)?;
        let changes = commit_local(&mut self.store, &self.identity.key, &record, &before)?;
        self.last_write_ms = self.last_write_ms.max(now_ms);
        Ok(Some((event, changes)))
    }

    /// Refuses further writes to a record a change of this node's was refused on upstream:
    /// the township re-records what is needed.
    fn check_not_refused(&self, id: RecordId) -> Result<(), ReplicaError<S::Error>> {
        if let Some(r) = self
            .store
            .own_refused()
            .map_err(ReplicaError::Store)?
            .into_iter()
            .find(|r| r.record == id)
        {
            return Err(ReplicaError::Command(CommandError::RefusedUpstream {
                code: r.code,
            }));
        }
        Ok(())
    }

    /// Writes every change this node keeps aside (`quarantine`) that its office's
    /// quarantine reports do not hold yet into the current report: a division's own record
    /// (`owned`) that the county (and the township's other nodes) read, and no village.
    /// What to write is read from the store each time, so nothing is lost to a failed
    /// write or a restart: call it after anything was refused, and now and then. A report
    /// the office above refused a change of is not written to again (nothing more of it
    /// could reach the county): a new one is started. A village writes no report (its
    /// quarantine stays on its own pages): villages own no records. Returns the signed,
    /// stored changes to push; none when there was nothing new.
    pub fn report_quarantined(
        &mut self,
        now_ms: u64,
        rng: &mut dyn rand_core::RngCore,
    ) -> Result<Vec<StoredChange>, ReportError<S::Error>> {
        let owner = self.identity.cert.body.division;
        if owner.level() == crate::division::Level::Village
            || !self.identity.cert.may_write(&[owner])
        {
            return Ok(Vec::new());
        }
        let mut refused: Vec<Quarantined> = self.store.quarantined().map_err(ReportError::Store)?;
        refused.sort_by_key(|q| (q.refused_ms, q.hash));
        if refused.is_empty() {
            return Ok(Vec::new());
        }
        let mut reports = crate::owned::all_of(&self.store, OwnedKind::QuarantineReport)
            .map_err(ReportError::Store)?;
        reports.retain(|r| r.owner() == owner);
        let mut known = std::collections::BTreeSet::new();
        for report in &reports {
            for e in report.entries().0 {
                let Body::Refusal { change, .. } = e.body;
                known.insert(change);
            }
        }
        let closed: std::collections::BTreeSet<_> = self
            .store
            .own_refused()
            .map_err(ReportError::Store)?
            .into_iter()
            .map(|r| r.record)
            .collect();
        reports.retain(|r| !closed.contains(&r.id()));
        let me = self.identity.key.public();
        let mut entries = Vec::new();
        for q in &refused {
            let change = q.change_hash().to_string();
            if !known.insert(change.clone()) {
                continue;
            }
            entries.push(Entry {
                id: crate::id::EventId::random(rng),
                node: me,
                at_ms: now_ms,
                body: Body::Refusal {
                    signer: q.signer,
                    record: q.record,
                    change,
                    change_ms: q.time_ms,
                    code: q.code.clone(),
                },
            });
        }
        if entries.is_empty() {
            return Ok(Vec::new());
        }
        self.check_clock(now_ms)?;
        let mut out = Vec::new();
        let mut current = reports
            .into_iter()
            .find(|r| r.len() < crate::model::limits::EVENTS_MAX);
        for entry in entries {
            let report = match current.take() {
                Some(mut report) if report.len() < crate::model::limits::EVENTS_MAX => {
                    let before = report.doc().get_heads();
                    report.append(&self.writer.actor, now_ms, &entry)?;
                    out.extend(commit_local(
                        &mut self.store,
                        &self.identity.key,
                        &report,
                        &before,
                    )?);
                    report
                }
                _ => {
                    let report = Owned::create(
                        self.writer.actor.clone(),
                        now_ms,
                        rng,
                        owner,
                        OwnedKind::QuarantineReport,
                        std::slice::from_ref(&entry),
                    )?;
                    out.extend(commit_local(
                        &mut self.store,
                        &self.identity.key,
                        &report,
                        &[],
                    )?);
                    report
                }
            };
            current = Some(report);
        }
        self.last_write_ms = self.last_write_ms.max(now_ms);
        Ok(out)
    }
}
