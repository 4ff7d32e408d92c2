//! Revoking a key: the frontier of what the county accepted from it.
//!
//! When an office PC is stolen, the county revokes its key (`cert::Revoked`) and makes a
//! frontier (`cert::FrontierBody`) from its own store: for each record the key wrote, and
//! each store incarnation of the key, the last change of it the county holds. Every node
//! then accepts the key's changes up to the frontier and refuses those beyond it, whatever
//! time they claim (a thief sets the PC's clock). What the office recorded and the county
//! already held stands; what it recorded and had not yet reached the county is refused
//! with the thief's work, which cannot be told apart from it.

use std::collections::BTreeMap;

use crate::cert::{FrontierBody, KeyFrontier};
use crate::id::NodeId;
use crate::id::RecordId;
use crate::record::actor_parts;
use crate::store::Store;

/// The frontier of `nodes` in `store` (the county's), as version `version`.
pub fn frontier<S: Store>(
    store: &S,
    version: u64,
    nodes: &[NodeId],
) -> Result<FrontierBody, S::Error> {
    let mut keys: BTreeMap<NodeId, KeyFrontier> = nodes
        .iter()
        .map(|n| {
            (
                *n,
                KeyFrontier {
                    node: *n,
                    records: Vec::new(),
                },
            )
        })
        .collect();
    for record in store.records()? {
        let Some(doc) = store.doc(record)? else {
            continue;
        };
        // Per key: per incarnation, the highest sequence number held.
        let mut last: BTreeMap<NodeId, BTreeMap<u64, u64>> = BTreeMap::new();
        for meta in doc.get_changes_meta(&[]) {
            let Some((node, incarnation)) = actor_parts(&meta.actor) else {
                continue;
            };
            if !keys.contains_key(&node) {
                continue;
            }
            let seq = last
                .entry(node)
                .or_default()
                .entry(incarnation)
                .or_insert(0);
            *seq = (*seq).max(meta.seq);
        }
        for (node, incarnations) in last {
            if let Some(k) = keys.get_mut(&node) {
                k.records.push((record, incarnations.into_iter().collect()));
            }
        }
    }
    Ok(FrontierBody {
        version,
        keys: keys.into_values().collect(),
    })
}

/// The records in `store` that hold changes of a revoked key beyond `frontier`: applied
/// here before the revocation and its frontier arrived. They stay (other changes may
/// depend on them), and their records are put up for review.
pub fn beyond_frontier<S: Store>(
    store: &S,
    frontier: &FrontierBody,
) -> Result<Vec<RecordId>, S::Error> {
    let mut out = Vec::new();
    for record in store.records()? {
        let Some(doc) = store.doc(record)? else {
            continue;
        };
        let beyond = doc.get_changes_meta(&[]).into_iter().any(|meta| {
            actor_parts(&meta.actor).is_some_and(|(node, incarnation)| {
                frontier.allows(&node, record, incarnation, meta.seq) == Some(false)
            })
        });
        if beyond {
            out.push(record);
        }
    }
    Ok(out)
}
