//! The workload: new records written at villages and townships, the work on them through
//! the node's own commands, and who may read what.

#![allow(clippy::indexing_slicing)]

use super::*;
use guihe_protocol::record::CommandError;
use guihe_protocol::replica::ReplicaError;

impl Sim {
    pub(super) fn villages_of(&self, township: usize) -> Vec<usize> {
        (0..self.nodes.len())
            .filter(|&n| self.nodes[n].kind == NodeKind::Village(township))
            .collect()
    }

    pub(super) fn village_code(&self, node: usize) -> Option<VillageCode> {
        match self.nodes[node].replica.identity.cert.body.division {
            Division::Village(v) => Some(v),
            _ => None,
        }
    }

    pub(super) fn new_record(&mut self) {
        let w = self.scenario.workload.clone();
        let townships = self.scenario.townships.len();
        let ti = pick(&mut self.rng, townships);
        let villages = self.villages_of(ti);
        let kind = if chance(&mut self.rng, w.petition_share) {
            Kind::Petition
        } else {
            Kind::Case
        };
        let cross = villages.len() >= 2
            && kind == Kind::Case
            && chance(&mut self.rng, w.cross_village_share);
        let (origin, codes) = if cross {
            let t = self
                .nodes
                .iter()
                .position(|n| n.kind == NodeKind::Township(ti))
                .unwrap_or(0);
            let i = pick(&mut self.rng, villages.len());
            let j = (i + 1 + pick(&mut self.rng, villages.len() - 1)) % villages.len();
            let codes: Vec<_> = [villages[i], villages[j]]
                .iter()
                .filter_map(|&v| self.village_code(v))
                .collect();
            (t, codes)
        } else {
            let v = villages[pick(&mut self.rng, villages.len())];
            (v, self.village_code(v).into_iter().collect())
        };
        if !self.nodes[origin].running || codes.is_empty() {
            return;
        }
        let new = workload::new_record(&mut self.rng, kind, &codes);
        let now = self.thief_clock(origin);
        let node = &mut self.nodes[origin];
        let Ok((id, changes)) = node.replica.create(now, &mut self.rng, &self.rules, new) else {
            return;
        };
        self.records.insert(id, origin);
        self.wrote(origin, id, &changes);
        let now = self.now;
        let gap = exp(&mut self.rng, w.work_mean_days * DAY_MS).max(1);
        self.at(
            now + gap,
            Ev::Work {
                record: id,
                origin,
                done: 0,
            },
        );
    }

    pub(super) fn work(&mut self, record: RecordId, origin: usize, done: u32) {
        let w = self.scenario.workload.clone();
        if done >= w.commands_per_record_max {
            return;
        }
        // Township staff sometimes work on a village's record on their own replica.
        let mut actor = origin;
        if let NodeKind::Village(ti) = self.nodes[origin].kind
            && chance(&mut self.rng, w.township_share)
            && let Some(t) = self
                .nodes
                .iter()
                .position(|n| n.kind == NodeKind::Township(ti))
            && self.nodes[t]
                .replica
                .store
                .doc(record)
                .ok()
                .flatten()
                .is_some()
        {
            actor = t;
        }
        let gap = exp(&mut self.rng, w.work_mean_days * DAY_MS).max(1);
        if !self.nodes[actor].running {
            self.at(
                self.now + gap,
                Ev::Work {
                    record,
                    origin,
                    done,
                },
            );
            return;
        }
        // After a theft, nobody but the thief writes the stolen village's records.
        let stolen_record = self.stolen.as_ref().is_some_and(|(v, ..)| *v == origin);
        let now = self.now;
        if !stolen_record || actor == origin {
            // The next command is chosen from the record as the actor holds it, and
            // carried out on it: the record is read once.
            let at = self.thief_clock(actor);
            let node = &mut self.nodes[actor];
            match node.replica.apply_chosen(
                record,
                at,
                &mut self.rng,
                &self.rules,
                workload::next_command,
            ) {
                Ok(Some((_, changes))) => self.wrote(actor, record, &changes),
                // Nothing left to do on it, or (as when the actor does not hold the record
                // or cannot read it) nothing to choose from: its work ends.
                Ok(None)
                | Err(ReplicaError::Unknown(_))
                | Err(ReplicaError::Command(CommandError::Document(_))) => return,
                Err(_) => {}
            }
        } else {
            // (Chosen all the same, so that the seed's draws stay as they were.)
            let Ok(current) = self.nodes[actor].replica.record(record) else {
                return;
            };
            let Ok(fold) = current.fold(&self.rules) else {
                return;
            };
            if workload::next_command(&mut self.rng, &fold).is_none() {
                return;
            }
        }
        self.at(
            now + gap,
            Ev::Work {
                record,
                origin,
                done: done + 1,
            },
        );
    }

    pub(super) fn wrote(&mut self, node: usize, record: RecordId, changes: &[StoredChange]) {
        if self.stolen.as_ref().is_some_and(|(v, ..)| *v == node) {
            // The thief's: offered as any change, expected nowhere.
            self.offer_written(node, changes);
            return;
        }
        for c in changes {
            self.written.insert(
                c.hash,
                Written {
                    time: self.now,
                    origin: node,
                    record,
                    bytes: c.signed.bytes.len(),
                },
            );
            self.arrived.insert((c.hash, node), self.now);
        }
        self.offer_written(node, changes);
    }

    /// The honest nodes whose certificate may read a record of these villages.
    pub(crate) fn readers(&self, villages: &[VillageCode]) -> Vec<usize> {
        (0..self.nodes.len())
            .filter(|&n| {
                self.nodes[n].kind != NodeKind::Forger
                    && self.nodes[n].replica.identity.cert.may_read(villages)
            })
            .collect()
    }

    /// A record's villages, read from the replica that wrote it.
    pub(crate) fn villages_of_record(&self, record: RecordId) -> Vec<VillageCode> {
        self.records
            .get(&record)
            .and_then(|&n| self.nodes[n].replica.store.doc(record).ok().flatten())
            .and_then(|doc| Record::from_doc(doc).ok())
            .map(|r| r.jurisdictions().to_vec())
            .unwrap_or_default()
    }
}
