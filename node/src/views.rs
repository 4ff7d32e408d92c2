//! The materialised read model: every record's view and its dashboard row, kept in memory
//! and in the store, recomputed only for records whose document changed.

use std::collections::BTreeMap;

use guihe_protocol::deadline::Deadlines;
use guihe_protocol::id::RecordId;
use guihe_protocol::replica::Replica;
use guihe_protocol::stats::Row;
use guihe_protocol::view::View;

use crate::store::{SledStore, StoreError};

/// Views and rows by record.
#[derive(Debug, Default)]
pub struct Views {
    map: BTreeMap<RecordId, (View, Row)>,
    loaded: bool,
}

impl Views {
    /// Brings the views up to date with the store and returns them: stored views are read
    /// once, and the views of records whose document changed since are computed again
    /// (and stored). A record that cannot be read is left out and logged.
    pub fn fresh(
        &mut self,
        replica: &Replica<SledStore>,
        rules: &Deadlines,
    ) -> Result<&BTreeMap<RecordId, (View, Row)>, StoreError> {
        let store = &replica.store;
        if !self.loaded {
            for (id, json) in store.stored_views()? {
                match serde_json::from_slice::<View>(&json) {
                    Ok(v) => {
                        let row = Row::of(&v);
                        self.map.insert(id, (v, row));
                    }
                    Err(_) => store.mark_stale(id),
                }
            }
            self.loaded = true;
        }
        let dirty = store.take_dirty();
        let flagged = if dirty.is_empty() {
            Default::default()
        } else {
            store.flagged()
        };
        for id in dirty {
            // A division's own record (a quarantine report) is no case or petition: it has
            // no view and is not listed.
            if id.is_owned() {
                continue;
            }
            let view = replica
                .record(id)
                .map_err(|e| e.to_string())
                .and_then(|r| r.view(rules).map_err(|e| e.to_string()));
            match view {
                Ok(mut v) => {
                    if flagged.contains(&id) {
                        v.flag_revoked_entries();
                    }
                    if let Ok(json) = serde_json::to_vec(&v) {
                        store.put_view(id, &json)?;
                    }
                    let row = Row::of(&v);
                    self.map.insert(id, (v, row));
                }
                Err(e) => {
                    tracing::warn!(record = %id, %e, "record cannot be read; left out of lists");
                    self.map.remove(&id);
                }
            }
        }
        Ok(&self.map)
    }
}
