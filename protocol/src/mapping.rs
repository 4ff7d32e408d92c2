//! Glue between typed values and their Automerge representation.
//!
//! Typed ids and codes are stored as strings and parsed back on hydration, so a document
//! that holds a malformed id fails to load with a typed error instead of producing a value
//! that breaks an invariant later.

/// Implements `autosurgeon::Reconcile` and `autosurgeon::Hydrate` for a type through its
/// `Display` and `FromStr` implementations.
macro_rules! string_mapped {
    ($name:ty) => {
        impl autosurgeon::Reconcile for $name {
            type Key<'a> = autosurgeon::reconcile::NoKey;
            fn reconcile<R: autosurgeon::Reconciler>(&self, mut r: R) -> Result<(), R::Error> {
                r.str(self.to_string())
            }
        }

        impl autosurgeon::Hydrate for $name {
            fn hydrate_string(s: &str) -> Result<Self, autosurgeon::HydrateError> {
                s.parse().map_err(|e| {
                    autosurgeon::HydrateError::unexpected(
                        stringify!($name),
                        format!("{s:?}, which does not parse: {e}"),
                    )
                })
            }
        }
    };
}
pub(crate) use string_mapped;
