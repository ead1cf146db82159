//! Objects are read only from JSON objects.
//!
//! serde's derived `Deserialize` also reads a struct from an array, by position: `["ivcc",
//! "enrolled"]` would be a `Postsecondary`. A record's meaning must never depend on the order of
//! a struct's fields in our code, so every type read from a request derives its `Deserialize`
//! with `#[serde(remote = "Self")]` (which makes the derived code an inherent function) and gets
//! its trait impl from [`objects_only!`](crate::objects_only), which hands the derived code a
//! deserializer that reads a struct as a map and nothing else. A nested struct goes through its
//! own impl, so the rule holds at every level.

use std::fmt;

use serde::de::{Deserializer, MapAccess, Visitor};

/// A deserializer that reads structs from maps only; everything else passes through.
pub struct ObjectOnly<D>(pub D);

/// The derived visitor, expecting "an object" (the words of the error for anything else).
struct ObjectVisitor<V>(V);

impl<'de, V: Visitor<'de>> Visitor<'de> for ObjectVisitor<V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<V::Value, A::Error> {
        self.0.visit_map(map)
    }
}

impl<'de, D: Deserializer<'de>> Deserializer<'de> for ObjectOnly<D> {
    type Error = D::Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        self.0.deserialize_any(visitor)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.0.deserialize_map(ObjectVisitor(visitor))
    }

    fn is_human_readable(&self) -> bool {
        self.0.is_human_readable()
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
        ignored_any
    }
}

/// The `Deserialize` (and, with `Serialize`, the `Serialize`) impl of a struct that derives them
/// with `#[serde(remote = "Self")]`: the derived code, reading objects only.
#[macro_export]
macro_rules! objects_only {
    ($t:ty) => {
        impl<'de> serde::Deserialize<'de> for $t {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                <$t>::deserialize($crate::policy::objects::ObjectOnly(d))
            }
        }
    };
    ($t:ty, Serialize) => {
        $crate::objects_only!($t);
        impl serde::Serialize for $t {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                <$t>::serialize(self, s)
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use serde::{Deserialize, Serialize};

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    #[serde(remote = "Self", deny_unknown_fields)]
    struct Inner {
        a: String,
        b: Option<u32>,
    }
    crate::objects_only!(Inner, Serialize);

    #[derive(Debug, PartialEq, Deserialize)]
    #[serde(remote = "Self", deny_unknown_fields)]
    struct Outer {
        inner: Option<Inner>,
        list: Option<Vec<Inner>>,
    }
    crate::objects_only!(Outer);

    #[test]
    fn objects_read_as_before_and_arrays_are_refused_at_every_level() {
        let ok: Outer =
            serde_json::from_str(r#"{"inner": {"a": "x", "b": 1}, "list": [{"a": "y"}]}"#).unwrap();
        assert_eq!(ok.inner.unwrap().b, Some(1));
        assert_eq!(ok.list.unwrap()[0].a, "y");
        for bad in [
            r#"[{"a": "x"}, null]"#,
            r#"{"inner": ["x", 1]}"#,
            r#"{"list": [["y", null]]}"#,
            r#"{"inner": [null, null]}"#,
        ] {
            let e = serde_json::from_str::<Outer>(bad).unwrap_err();
            assert!(e.to_string().contains("expected an object"), "{bad}: {e}");
        }
        let e = serde_json::from_str::<Outer>(r#"{"inner": {"a": "x", "c": 1}}"#).unwrap_err();
        assert!(e.to_string().contains("unknown field `c`"), "{e}");
        let back = serde_json::to_string(&Inner {
            a: "x".into(),
            b: None,
        })
        .unwrap();
        assert_eq!(back, r#"{"a":"x","b":null}"#);
    }
}
