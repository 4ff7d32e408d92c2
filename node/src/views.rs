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

#[cfg(test)]
mod tests {
    use crate::api::{Call, NewForm, PartyForm, Reply};
    use crate::local::{self, Local};
    use guihe_protocol::cert::{Keypair, Role, Root};

    /// A view stored by an older build, before it named who handles the record with
    /// their office, is made again from its record, not shown without them (which would
    /// hide a restricted record from its own handler): the stored views' stamp names the
    /// view's form.
    #[test]
    fn a_view_stored_without_its_handlers_is_read_again_from_its_record() {
        use rand_core::SeedableRng;
        let dir = tempfile::tempdir().unwrap();
        let root = Root::new(Keypair::generate(
            &mut rand_chacha::ChaCha8Rng::seed_from_u64(1),
        ));
        local::init_enrolled(
            dir.path(),
            &root,
            1,
            Role::Village,
            "500240001201".parse().unwrap(),
            30,
        )
        .unwrap();
        let mut local = Local::open(dir.path()).unwrap();
        let form = NewForm {
            villages: vec!["500240001201".into()],
            category: "marriage_family".into(),
            risk: "general".into(),
            channel: None,
            summary: "抚养费纠纷".into(),
            parties: vec![PartyForm {
                name: "谭小雨".into(),
                role: None,
                minor: true,
                ..PartyForm::default()
            }],
            restricted: false,
            received_ms: None,
            matter: None,
        };
        let Ok((Reply::Created { id }, _)) = crate::api::execute(
            &mut local,
            Some("tan"),
            Call::Create {
                kind: guihe_protocol::model::Kind::Case,
                form,
            },
        ) else {
            panic!("not created");
        };
        let view = local.view(id).unwrap();
        assert!(view.common().restricted && !view.common().handlers.is_empty());
        // As an older build stored it: no handlers.
        let mut old = serde_json::to_value(&view).unwrap();
        fn strip(v: &mut serde_json::Value) -> bool {
            match v {
                serde_json::Value::Object(m) => {
                    m.remove("handlers").is_some() | m.values_mut().any(strip)
                }
                _ => false,
            }
        }
        assert!(strip(&mut old), "{old}");
        // As the older build stamped its views: the deadline rules alone.
        let store = &local.replica.store;
        store
            .views_made_under(&serde_json::to_string(&local.config.deadlines).unwrap())
            .unwrap();
        store
            .put_view(id, &serde_json::to_vec(&old).unwrap())
            .unwrap();
        // Read as it is, the old view would name no handler.
        let read: guihe_protocol::view::View = serde_json::from_value(old.clone()).unwrap();
        assert!(read.common().handlers.is_empty());
        drop(local);
        let mut local = Local::open(dir.path()).unwrap();
        let views = local.views().unwrap();
        assert_eq!(views.len(), 1);
        assert_eq!(views[0].common().handlers, view.common().handlers);
    }
}
