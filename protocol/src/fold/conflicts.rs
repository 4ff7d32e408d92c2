//! Conflicts: concurrent decisive events with different outcomes, and concurrent
//! amendments of one field with different values, found by the events' ancestry.

use super::*;

/// A field an amendment can change, for detecting concurrent amendments.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Field {
    Category,
    Risk,
    Restricted,
    Party(PartyId),
    Summary,
}

pub(super) fn bit(set: &[u64], i: usize) -> bool {
    set.get(i / 64).is_some_and(|w| w & (1u64 << (i % 64)) != 0)
}

pub(super) fn set_bit(set: &mut [u64], i: usize) {
    if let Some(w) = set.get_mut(i / 64) {
        *w |= 1u64 << (i % 64);
    }
}

impl Folder<'_> {
    pub(super) fn record_outcome_conflicts(
        &mut self,
        pos: usize,
        id: EventId,
        outcome: Status,
        concurrent: &[(usize, EventId, Status)],
    ) {
        for &(p, earlier, earlier_outcome) in concurrent {
            if earlier_outcome != outcome {
                self.conflict((p, earlier), (pos, id), ConflictAbout::Outcome);
            }
        }
    }

    /// The decisive events applied so far that the event at `pos` had not seen.
    pub(super) fn concurrent_decisive(&self, pos: usize) -> Vec<(usize, EventId, Status)> {
        self.decisive
            .iter()
            .copied()
            .filter(|(p, ..)| !self.is_ancestor(pos, *p))
            .collect()
    }

    /// Notes an unsettled conflict between two events, given as (position, id).
    pub(super) fn conflict(
        &mut self,
        first: (usize, EventId),
        second: (usize, EventId),
        about: ConflictAbout,
    ) {
        self.conflicts.push((
            false,
            Conflict {
                first: first.1,
                second: second.1,
                about,
            },
            first.0,
            second.0,
        ));
    }

    pub(super) fn is_ancestor(&self, of: usize, candidate: usize) -> bool {
        self.ancestors.get(of).is_some_and(|a| bit(a, candidate))
    }

    pub(super) fn detect_conflicts(&mut self, pos: usize, event: &Event) {
        if let Some(outcome) = decisive_outcome(event.body.event_type()) {
            let concurrent = self.concurrent_decisive(pos);
            self.record_outcome_conflicts(pos, event.id, outcome, &concurrent);
            self.decisive.push((pos, event.id, outcome));
        }
        if let Body::Amend(a) = &event.body {
            let (field, value) = match &a.change {
                Change::Category(c) => (Field::Category, c.code().to_string()),
                Change::Risk(r) => (Field::Risk, r.code().to_string()),
                Change::Restricted(b) => (Field::Restricted, b.to_string()),
                Change::Party(fix) => (Field::Party(fix.id), format!("{:?}", fix.party)),
                // Release 0.1 edited the summary text in place and wrote an empty note.
                Change::Summary(n) if !n.note.is_empty() => (Field::Summary, n.note.clone()),
                Change::PartyAdded(_) | Change::Summary(_) | Change::Note(_) => return,
            };
            let earlier = self.amended.get(&field).cloned().unwrap_or_default();
            for (p, id, v) in &earlier {
                if *v != value && !self.is_ancestor(pos, *p) {
                    self.conflict((*p, *id), (pos, event.id), ConflictAbout::Field);
                }
            }
            self.amended
                .entry(field)
                .or_default()
                .push((pos, event.id, value));
        }
    }
}
