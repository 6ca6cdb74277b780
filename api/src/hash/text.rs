//! The template hash computed from JSON text (the webhook's `spec.template`, still inside the
//! request body) without building a `serde_json::Value`: strings and keys are borrowed from the
//! text, each object is a plain vector sorted as it is read, and nothing is hashed or allocated per
//! key.
//! It must give exactly [`template_hash`](super::template_hash) of the same text parsed into a
//! `Value`; a property test holds the two together, duplicate keys (the last one wins, as in a
//! `Value`) and escapes included.

use std::borrow::Cow;
use std::fmt;

use serde::Deserialize;
use serde::de::{Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Number;

use crate::json_text::Text;

/// Hash of a pod template given as JSON text. Errors only when `text` is not JSON.
pub fn template_hash_text(text: &str) -> Result<String, serde_json::Error> {
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let template = Template::deserialize(&mut deserializer)?;
    deserializer.end()?;
    Ok(template.hash())
}

/// A pod template read from JSON (through any serde deserializer), ready to be hashed: read where
/// it stands inside a larger document, it is parsed once.
pub struct Template<'a>(Node<'a>);

impl Template<'_> {
    /// The template hash of this template.
    pub fn hash(&self) -> String {
        let mut out = Vec::with_capacity(1024);
        write(&self.0, &mut out);
        super::digest_hex(&out)
    }
}

impl<'de> Deserialize<'de> for Template<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Node::deserialize(deserializer).map(Template)
    }
}

impl fmt::Debug for Template<'_> {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("Template(")?;
        f.write_str(&self.hash())?;
        f.write_str(")")
    }
}

/// A JSON value whose strings borrow from the text where it has no escapes.
enum Node<'a> {
    Null,
    Bool(bool),
    Number(Number),
    String(Cow<'a, str>),
    Array(Vec<Node<'a>>),
    /// Members sorted by key (byte order); of equal keys, the text's last one counts and is the
    /// last here (resolved when written).
    Object(Vec<(Cow<'a, str>, Node<'a>)>),
}

impl<'de> Deserialize<'de> for Node<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

// Mirrors serde_json's own `Value` visitor, so numbers come out as the same `Number`.
impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_unit<E>(self) -> Result<Node<'de>, E> {
        Ok(Node::Null)
    }
    fn visit_none<E>(self) -> Result<Node<'de>, E> {
        Ok(Node::Null)
    }
    fn visit_bool<E>(self, v: bool) -> Result<Node<'de>, E> {
        Ok(Node::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Node<'de>, E> {
        Ok(Node::Number(v.into()))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Node<'de>, E> {
        Ok(Node::Number(v.into()))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Node<'de>, E> {
        Ok(Number::from_f64(v).map_or(Node::Null, Node::Number))
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Node<'de>, E> {
        Ok(Node::String(Cow::Borrowed(v)))
    }
    fn visit_str<E>(self, v: &str) -> Result<Node<'de>, E> {
        Ok(Node::String(Cow::Owned(v.to_owned())))
    }
    fn visit_string<E>(self, v: String) -> Result<Node<'de>, E> {
        Ok(Node::String(Cow::Owned(v)))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node<'de>, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Node::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node<'de>, A::Error> {
        let mut members = Vec::with_capacity(map.size_hint().unwrap_or(0));
        while let Some(Text(key)) = map.next_key()? {
            members.push((key, map.next_value()?));
        }
        // Stable, so among equal keys the text's order stays and the last one is the value.
        members.sort_by(|a: &(Cow<str>, Node), b| a.0.as_bytes().cmp(b.0.as_bytes()));
        Ok(Node::Object(members))
    }
}

/// Appends the canonical form of `node` (the definition in the parent module); returns false,
/// having appended nothing, when normalisation drops it.
fn write(node: &Node, out: &mut Vec<u8>) -> bool {
    match node {
        Node::Null => false,
        Node::Bool(b) => {
            out.extend_from_slice(if *b { b"true" } else { b"false" });
            true
        }
        Node::Number(n) => {
            super::write_scalar(n, out);
            true
        }
        Node::String(s) => {
            write_str(s, out);
            true
        }
        Node::Array(items) => super::write_array(items, out, write),
        Node::Object(members) => {
            // Of equal keys (adjacent, sorted when read) the last one is the value.
            let last_of_each_key = members
                .iter()
                .enumerate()
                .filter(|(i, (key, _))| members.get(i + 1).is_none_or(|next| next.0 != *key))
                .map(|(_, (key, value))| (key, value));
            super::write_object(last_of_each_key, out, |key, out| write_str(key, out), write)
        }
    }
}

/// A string as serde_json writes it: in quotes as it is, unless it holds a character serde_json
/// escapes (rare in a pod template: most strings never need the escaper).
fn write_str(s: &str, out: &mut Vec<u8>) {
    if s.bytes().any(|b| b == b'"' || b == b'\\' || b < 0x20) {
        super::write_scalar(s, out);
    } else {
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    }
}
