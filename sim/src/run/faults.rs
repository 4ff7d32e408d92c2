//! Faults: half-dead links, the stolen PC and its revocation, forged changes and a
//! compromised village signing rule-breaking ones.

#![allow(clippy::indexing_slicing)]

use super::*;

impl Sim {
    /// Counts verified sessions with the stolen office at a node that knows of its
    /// revocation: the host closes them the moment it learns, and refuses it at every
    /// later hello.
    pub(super) fn watch_revoked(&mut self, n: usize) {
        let Some((v, ..)) = &self.stolen else {
            return;
        };
        if !self.revoked_at.contains_key(&n) || *v == n {
            return;
        }
        let key = self.nodes[*v].replica.identity.key.public();
        let host = &self.nodes[n].host;
        let open = host
            .conns()
            .filter(|c| {
                host.peer_key(*c) == Some(key)
                    && host.session(*c).is_some_and(|s| s.peer().is_some())
            })
            .count();
        self.revoked_left_open += open as u64;
    }

    /// A village link turns half-dead: the village writes a record at once (so that its
    /// session waits for an acknowledgement) and hears nothing more from its township; or
    /// the link recovers, and the village dials again if its session was dropped.
    pub(super) fn half_dead(&mut self, l: usize, on: bool) {
        if self.healing {
            return;
        }
        if !on {
            self.links[l].half_dead = false;
            self.refresh(l);
            return;
        }
        self.links[l].half_dead = true;
        let v = self.links[l].a;
        if let Some(code) = self.village_code(v)
            && self.nodes[v].running
        {
            let new = workload::new_record(&mut self.rng, Kind::Case, &[code]);
            let now = self.thief_clock(v);
            if let Ok((id, changes)) =
                self.nodes[v]
                    .replica
                    .create(now, &mut self.rng, &self.rules, new)
            {
                self.records.insert(id, v);
                self.wrote(v, id, &changes);
            }
        }
        let expecting = self.links[l]
            .sessions
            .is_some_and(|(ca, _)| self.nodes[v].host.is_expecting(ca));
        self.half_dead.push(HalfDead {
            link: l,
            start: self.now,
            expecting,
            stalled_at: None,
            lost_at: None,
        });
    }

    /// The time a node writes with: the thief sets a stolen PC's clock back to before
    /// the revocation.
    pub(super) fn thief_clock(&self, node: usize) -> u64 {
        match &self.stolen {
            Some((v, at, _)) if *v == node => at.saturating_sub(2 * 3_600_000).max(START_MS),
            _ => self.now,
        }
    }

    /// A village PC is stolen: the county revokes its key with the frontier of what it
    /// holds, and offers both to its peers at once; the thief writes on.
    pub(super) fn theft(&mut self) {
        let villages: Vec<usize> = (0..self.nodes.len())
            .filter(|&n| matches!(self.nodes[n].kind, NodeKind::Village(_)))
            .collect();
        let Some(&v) = villages.get(pick(&mut self.rng, villages.len())) else {
            return;
        };
        let key = self.nodes[v].replica.identity.key.public();
        let serial = self.nodes[v].replica.identity.cert.body.serial;
        let body = match guihe_protocol::revoke::frontier(&self.nodes[0].replica.store, 1, &[key]) {
            Ok(body) => body,
            Err(never) => match never {},
        };
        let list = self.root.revocations(guihe_protocol::cert::RevocationBody {
            version: 1,
            revoked: vec![guihe_protocol::cert::Revoked {
                serial,
                node: key,
                from_ms: self.now,
            }],
        });
        let frontier = self.root.frontier(body.clone());
        let (Ok(list), Ok(frontier)) = (list, frontier) else {
            return;
        };
        let now = self.now;
        let county = &mut self.nodes[0];
        let _ = county.replica.store.put_revocations(&list);
        let _ = county.replica.store.put_frontier(&frontier);
        // The county's host passes both on to every peer at once.
        county.host.news(now, &mut county.replica);
        self.revoked_at.insert(0, now);
        self.stolen = Some((v, self.now, body));
        self.at(self.now + 1, Ev::ThiefWrites);
        self.drain(0);
    }

    /// The thief takes in a record on the stolen PC, its clock set back to before the
    /// revocation.
    pub(super) fn thief_writes(&mut self) {
        let Some((v, ..)) = self.stolen.as_ref() else {
            return;
        };
        let v = *v;
        let Some(code) = self.village_code(v) else {
            return;
        };
        let new = workload::new_record(&mut self.rng, Kind::Case, &[code]);
        let at = self.thief_clock(v);
        let node = &mut self.nodes[v];
        if let Ok((id, changes)) = node.replica.create(at, &mut self.rng, &self.rules, new) {
            self.records.insert(id, v);
            self.wrote(v, id, &changes);
        }
    }

    /// Forgers hold records they may not write: a foreign root's node writes in the
    /// county's village; a real village certificate writes its neighbour's.
    pub(super) fn plant_forgeries(&mut self) {
        for n in 0..self.nodes.len() {
            if self.nodes[n].kind != NodeKind::Forger {
                continue;
            }
            let Some(&l) = self.nodes[n].links.first() else {
                continue;
            };
            let t = self.links[l].b;
            let NodeKind::Township(ti) = self.nodes[t].kind else {
                continue;
            };
            let Some(&victim) = self.villages_of(ti).first() else {
                continue;
            };
            let Some(code) = self.village_code(victim) else {
                continue;
            };
            let new = workload::new_record(&mut self.rng, Kind::Case, &[code]);
            // As a modified build writes it: past the replica's authority check, signed
            // with the forger's own key.
            let replica = &mut self.nodes[n].replica;
            let mut ctx = replica.writer.ctx(START_MS, &mut self.rng, &self.rules);
            let Ok((record, _)) = Record::create(&mut ctx, new) else {
                continue;
            };
            if let Ok(changes) = guihe_protocol::ingest::commit_local(
                &mut replica.store,
                &replica.identity.key,
                &record,
                &[],
            ) {
                self.forged.extend(changes.iter().map(|c| c.hash));
            }
        }
    }

    /// Compromised villages: each takes in a record of its own, then signs changes to it
    /// that no command writes (as a second store incarnation of its key, so that its
    /// honest work carries on beside them), and offers them to its township like any
    /// other. Every node must refuse them.
    pub(super) fn plant_rule_breakers(&mut self, count: u32) {
        use automerge::transaction::{CommitOptions, Transactable};
        use automerge::{ObjType, ROOT, ReadDoc, Value};
        let villages: Vec<usize> = (0..self.nodes.len())
            .filter(|&n| matches!(self.nodes[n].kind, NodeKind::Village(_)))
            .collect();
        for i in 0..count as usize {
            let Some(&n) = villages.get((i * 7 + 3) % villages.len().max(1)) else {
                continue;
            };
            let Some(code) = self.village_code(n) else {
                continue;
            };
            let new = workload::new_record(&mut self.rng, Kind::Case, &[code]);
            let Ok((id, _)) =
                self.nodes[n]
                    .replica
                    .create(START_MS, &mut self.rng, &self.rules, new)
            else {
                continue;
            };
            self.records.insert(id, n);
            let node = &mut self.nodes[n];
            let Ok(Some(doc)) = node.replica.store.doc(id) else {
                continue;
            };
            let Ok(record) = Record::from_doc(doc.clone()) else {
                continue;
            };
            let actor =
                guihe_protocol::record::actor_id(node.replica.identity.key.public(), 7 + i as u64);
            let attacks: [Attack; 3] = [
                |tx| tx.put(ROOT, "restricted", true),
                |tx| {
                    let villages = tx.put_object(ROOT, "jurisdictions", ObjType::List)?;
                    tx.insert(&villages, 0, "500240999201")
                },
                |tx| match tx.get(ROOT, "events")? {
                    Some((Value::Object(ObjType::List), events)) => tx.delete(&events, 0),
                    _ => Ok(()),
                },
            ];
            let mut bad = Vec::new();
            for attack in attacks {
                let mut fork = doc.fork().with_actor(actor.clone());
                let before = fork.get_heads();
                let time = i64::try_from(START_MS + 1).unwrap_or(i64::MAX);
                if fork
                    .transact_with(|_| CommitOptions::default().with_time(time), attack)
                    .is_err()
                {
                    continue;
                }
                for change in fork.get_changes(&before) {
                    let signed =
                        guihe_protocol::signed::sign(&node.replica.identity.key, &record, &change);
                    bad.push(guihe_protocol::store::StoredChange {
                        hash: change.hash(),
                        time_ms: START_MS + 1,
                        deps: change.deps().to_vec(),
                        signer: node.replica.identity.key.public(),
                        signed,
                    });
                }
            }
            // Offered like any change it holds; its own document stays as its commands
            // left it.
            let _ = node.replica.store.put_changes(&bad);
            for c in bad {
                self.bad.insert(c.hash, n);
            }
        }
    }
}
