//! Whether a value serializes to a given JSON value, without building it.
//!
//! The change rules read an event or a party with serde and then require that it writes
//! back to exactly what was read (`rules::event_of`), so that the stored form and the typed
//! value map one to one. `same(value, t)` answers what `serde_json::to_value(t)? == *value`
//! answers, without building the value: a serializer that walks `value` alongside `t`.
//! (Where the two could differ, for a struct that writes one key twice, `same` says no: no
//! record type does.)

use serde::Serialize;
use serde::ser;
use serde_json::{Map, Value};

/// Whether `t` serializes to `value` (as `serde_json::to_value` would give it).
pub(crate) fn same<T: Serialize + ?Sized>(value: &Value, t: &T) -> bool {
    t.serialize(Walk(value)).is_ok()
}

/// `t` does not serialize to the value.
#[derive(Debug)]
pub(crate) struct Differs;

impl std::fmt::Display for Differs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("differs")
    }
}

impl std::error::Error for Differs {}

impl ser::Error for Differs {
    fn custom<M: std::fmt::Display>(_: M) -> Self {
        Differs
    }
}

fn check(ok: bool) -> Result<(), Differs> {
    if ok { Ok(()) } else { Err(Differs) }
}

/// Serializes into a comparison with the value it holds.
struct Walk<'a>(&'a Value);

impl<'a> Walk<'a> {
    fn object(&self) -> Result<&'a Map<String, Value>, Differs> {
        self.0.as_object().ok_or(Differs)
    }

    /// The value of `{variant: value}`, as serde_json writes an enum's non-unit variant.
    fn variant(&self, variant: &str) -> Result<&'a Value, Differs> {
        let map = self.object()?;
        check(map.len() == 1)?;
        map.get(variant).ok_or(Differs)
    }
}

impl<'a> ser::Serializer for Walk<'a> {
    type Ok = ();
    type Error = Differs;
    type SerializeSeq = Items<'a>;
    type SerializeTuple = Items<'a>;
    type SerializeTupleStruct = Items<'a>;
    type SerializeTupleVariant = Items<'a>;
    type SerializeMap = Fields<'a>;
    type SerializeStruct = Fields<'a>;
    type SerializeStructVariant = Fields<'a>;

    fn serialize_bool(self, v: bool) -> Result<(), Differs> {
        check(self.0.as_bool() == Some(v))
    }
    fn serialize_i8(self, v: i8) -> Result<(), Differs> {
        self.serialize_i64(v.into())
    }
    fn serialize_i16(self, v: i16) -> Result<(), Differs> {
        self.serialize_i64(v.into())
    }
    fn serialize_i32(self, v: i32) -> Result<(), Differs> {
        self.serialize_i64(v.into())
    }
    fn serialize_i64(self, v: i64) -> Result<(), Differs> {
        check(self.0.as_i64() == Some(v))
    }
    fn serialize_u8(self, v: u8) -> Result<(), Differs> {
        self.serialize_u64(v.into())
    }
    fn serialize_u16(self, v: u16) -> Result<(), Differs> {
        self.serialize_u64(v.into())
    }
    fn serialize_u32(self, v: u32) -> Result<(), Differs> {
        self.serialize_u64(v.into())
    }
    fn serialize_u64(self, v: u64) -> Result<(), Differs> {
        check(self.0.as_u64() == Some(v))
    }
    fn serialize_f32(self, v: f32) -> Result<(), Differs> {
        self.serialize_f64(v.into())
    }
    fn serialize_f64(self, v: f64) -> Result<(), Differs> {
        // (serde_json writes a number that is not finite as null.)
        match serde_json::Number::from_f64(v) {
            Some(n) => check(self.0.as_number() == Some(&n)),
            None => check(self.0.is_null()),
        }
    }
    fn serialize_char(self, v: char) -> Result<(), Differs> {
        let mut buf = [0; 4];
        self.serialize_str(v.encode_utf8(&mut buf))
    }
    fn serialize_str(self, v: &str) -> Result<(), Differs> {
        check(self.0.as_str() == Some(v))
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<(), Differs> {
        let items = self.0.as_array().ok_or(Differs)?;
        check(
            items.len() == v.len()
                && items
                    .iter()
                    .zip(v)
                    .all(|(i, b)| i.as_u64() == Some(u64::from(*b))),
        )
    }
    fn serialize_none(self) -> Result<(), Differs> {
        check(self.0.is_null())
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), Differs> {
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result<(), Differs> {
        check(self.0.is_null())
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<(), Differs> {
        self.serialize_unit()
    }
    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
    ) -> Result<(), Differs> {
        self.serialize_str(variant)
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        value: &T,
    ) -> Result<(), Differs> {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<(), Differs> {
        value.serialize(Walk(self.variant(variant)?))
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Items<'a>, Differs> {
        Items::of(self.0)
    }
    fn serialize_tuple(self, _: usize) -> Result<Items<'a>, Differs> {
        Items::of(self.0)
    }
    fn serialize_tuple_struct(self, _: &'static str, _: usize) -> Result<Items<'a>, Differs> {
        Items::of(self.0)
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        _: usize,
    ) -> Result<Items<'a>, Differs> {
        Items::of(self.variant(variant)?)
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Fields<'a>, Differs> {
        Fields::of(self.object()?)
    }
    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Fields<'a>, Differs> {
        Fields::of(self.object()?)
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        _: usize,
    ) -> Result<Fields<'a>, Differs> {
        Fields::of(Walk(self.variant(variant)?).object()?)
    }
}

/// A sequence, compared item by item.
struct Items<'a> {
    items: std::slice::Iter<'a, Value>,
}

impl<'a> Items<'a> {
    fn of(value: &'a Value) -> Result<Self, Differs> {
        Ok(Items {
            items: value.as_array().ok_or(Differs)?.iter(),
        })
    }

    fn item<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Differs> {
        value.serialize(Walk(self.items.next().ok_or(Differs)?))
    }

    fn end(mut self) -> Result<(), Differs> {
        check(self.items.next().is_none())
    }
}

impl ser::SerializeSeq for Items<'_> {
    type Ok = ();
    type Error = Differs;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Differs> {
        self.item(value)
    }
    fn end(self) -> Result<(), Differs> {
        Items::end(self)
    }
}

impl ser::SerializeTuple for Items<'_> {
    type Ok = ();
    type Error = Differs;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Differs> {
        self.item(value)
    }
    fn end(self) -> Result<(), Differs> {
        Items::end(self)
    }
}

impl ser::SerializeTupleStruct for Items<'_> {
    type Ok = ();
    type Error = Differs;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Differs> {
        self.item(value)
    }
    fn end(self) -> Result<(), Differs> {
        Items::end(self)
    }
}

impl ser::SerializeTupleVariant for Items<'_> {
    type Ok = ();
    type Error = Differs;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Differs> {
        self.item(value)
    }
    fn end(self) -> Result<(), Differs> {
        Items::end(self)
    }
}

/// A map or struct, compared field by field: every field written must be in the object
/// with the same value, and the object must hold no field that was not written.
struct Fields<'a> {
    object: &'a Map<String, Value>,
    /// The object's keys written so far: a key written twice differs (`to_value` would
    /// keep the second value, and a key of the object would go unchecked).
    written: Vec<&'a str>,
    /// A map's key, written before its value.
    key: Option<String>,
}

impl<'a> Fields<'a> {
    fn of(object: &'a Map<String, Value>) -> Result<Self, Differs> {
        Ok(Fields {
            object,
            written: Vec::with_capacity(object.len()),
            key: None,
        })
    }

    fn field<T: Serialize + ?Sized>(&mut self, key: &str, value: &T) -> Result<(), Differs> {
        let (key, held) = self.object.get_key_value(key).ok_or(Differs)?;
        check(!self.written.contains(&key.as_str()))?;
        self.written.push(key);
        value.serialize(Walk(held))
    }

    fn end(self) -> Result<(), Differs> {
        check(self.written.len() == self.object.len())
    }
}

impl ser::SerializeMap for Fields<'_> {
    type Ok = ();
    type Error = Differs;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), Differs> {
        // serde_json writes a map's key as a string: the value's JSON form when it is one.
        match serde_json::to_value(key).map_err(|_| Differs)? {
            Value::String(s) => self.key = Some(s),
            Value::Number(n) => self.key = Some(n.to_string()),
            Value::Bool(b) => self.key = Some(b.to_string()),
            _ => return Err(Differs),
        }
        Ok(())
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Differs> {
        let key = self.key.take().ok_or(Differs)?;
        self.field(&key, value)
    }
    fn end(self) -> Result<(), Differs> {
        Fields::end(self)
    }
}

impl ser::SerializeStruct for Fields<'_> {
    type Ok = ();
    type Error = Differs;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), Differs> {
        self.field(key, value)
    }
    fn end(self) -> Result<(), Differs> {
        Fields::end(self)
    }
}

impl ser::SerializeStructVariant for Fields<'_> {
    type Ok = ();
    type Error = Differs;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), Differs> {
        self.field(key, value)
    }
    fn end(self) -> Result<(), Differs> {
        Fields::end(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every value that differs from `v` in one place: each leaf changed, each field
    /// removed, a field added to each object, each list shortened and lengthened.
    fn variants(v: &Value) -> Vec<Value> {
        let mut out = Vec::new();
        match v {
            Value::Object(map) => {
                let mut added = map.clone();
                added.insert("extra".into(), Value::Null);
                out.push(Value::Object(added));
                for (k, inner) in map {
                    let mut removed = map.clone();
                    removed.remove(k);
                    out.push(Value::Object(removed));
                    for changed in variants(inner) {
                        let mut m = map.clone();
                        m.insert(k.clone(), changed);
                        out.push(Value::Object(m));
                    }
                }
            }
            Value::Array(items) => {
                let mut longer = items.clone();
                longer.push(Value::Null);
                out.push(Value::Array(longer));
                if !items.is_empty() {
                    out.push(Value::Array(items[1..].to_vec()));
                }
                for (i, inner) in items.iter().enumerate() {
                    for changed in variants(inner) {
                        let mut a = items.clone();
                        a[i] = changed;
                        out.push(Value::Array(a));
                    }
                }
            }
            Value::String(s) => {
                out.push(Value::String(format!("{s}!")));
                out.push(Value::Null);
            }
            Value::Number(n) => {
                out.push(Value::from(n.as_u64().map_or(0, |n| n.wrapping_add(1))));
                out.push(Value::String(n.to_string()));
            }
            Value::Bool(b) => out.push(Value::Bool(!b)),
            Value::Null => {
                out.push(Value::from(0));
                out.push(Value::String(String::new()));
            }
        }
        out
    }

    /// `same` answers as `to_value` and `==` do, for every event and party of a village's
    /// records and every value one change away from each.
    #[test]
    fn same_answers_as_writing_back_and_comparing() {
        use automerge::Automerge;
        use rand_core::SeedableRng;
        use std::collections::BTreeMap;
        let (changes, _) = crate::workload::village_history(
            &mut rand_chacha::ChaCha8Rng::seed_from_u64(5),
            60,
            1_772_323_200_000,
        )
        .unwrap();
        let mut docs: BTreeMap<_, Automerge> = BTreeMap::new();
        for c in &changes {
            let change = automerge::Change::from_bytes(c.signed.bytes.clone()).unwrap();
            docs.entry(c.signed.record)
                .or_default()
                .apply_changes([change])
                .unwrap();
        }
        let (mut events, mut parties) = (0, 0);
        for doc in docs.into_values() {
            let record = crate::record::Record::from_doc(doc).unwrap();
            let check = |t: &dyn erased::Check| {
                let v = t.to_value();
                assert!(t.same(&v));
                for other in variants(&v) {
                    assert_eq!(t.same(&other), other == v, "{other}");
                }
            };
            for e in record.events().unwrap().events {
                check(&e);
                events += 1;
            }
            for p in record.parties().unwrap().values() {
                check(p);
                parties += 1;
            }
        }
        assert!(
            events > 100 && parties > 60,
            "{events} events, {parties} parties"
        );
    }

    mod erased {
        pub(super) trait Check {
            fn to_value(&self) -> serde_json::Value;
            fn same(&self, v: &serde_json::Value) -> bool;
        }

        impl<T: serde::Serialize> Check for T {
            fn to_value(&self) -> serde_json::Value {
                serde_json::to_value(self).unwrap()
            }
            fn same(&self, v: &serde_json::Value) -> bool {
                super::same(v, self)
            }
        }
    }

    #[test]
    fn a_map_or_a_sequence_compares_whole() {
        let map: std::collections::BTreeMap<u32, Vec<u8>> = [(1, vec![1, 2]), (2, vec![])].into();
        let v = serde_json::to_value(&map).unwrap();
        assert!(same(&v, &map));
        for other in variants(&v) {
            assert_eq!(same(&other, &map), other == v, "{other}");
        }
        assert!(same(&serde_json::json!([1, "a", null]), &(1u8, 'a', ())));
        assert!(!same(&serde_json::json!([1, "a"]), &(1u8, 'a', ())));
        for (v, f) in [
            (serde_json::json!(1.5), 1.5f64),
            (serde_json::json!(1), 1.0),
            (Value::Null, f64::NAN),
        ] {
            assert_eq!(
                same(&v, &f),
                serde_json::to_value(f).unwrap() == v,
                "{v} {f}"
            );
        }
        assert!(!same(&serde_json::json!(-1), &1u64) && same(&serde_json::json!(-1), &-1i8));
        // A key written twice differs, whatever the object holds.
        struct Twice;
        impl Serialize for Twice {
            fn serialize<S: ser::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                use ser::SerializeStruct;
                let mut st = s.serialize_struct("Twice", 2)?;
                st.serialize_field("a", &1u8)?;
                st.serialize_field("a", &1u8)?;
                st.end()
            }
        }
        assert!(!same(&serde_json::json!({"a": 1, "b": 2}), &Twice));
        assert!(!same(&serde_json::json!({"a": 1}), &Twice));
    }
}
