//! A small YAML document tree built from `yaml-rust2`'s event stream.
//!
//! The tree is built here rather than with the crate's own loader so that the limits that
//! make parsing total live in one place: nesting depth, the number of nodes after alias
//! expansion (YAML 1.2 §3.2.2.2 aliases can otherwise multiply a small document into an
//! enormous one, the "billion laughs" attack) and the bytes held in scalars. Scalars are
//! zeroized when dropped, since a kubeconfig holds tokens and private keys.

use std::collections::HashMap;

use yaml_rust2::parser::{Event, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};
use zeroize::Zeroizing;

/// Deepest nesting of sequences and mappings accepted.
pub(crate) const MAX_DEPTH: usize = 128;
/// Most nodes a document may have once aliases are expanded.
pub(crate) const MAX_NODES: usize = 1_000_000;
/// Most scalar bytes a document may hold once aliases are expanded.
pub(crate) const MAX_SCALAR_BYTES: usize = 16 * 1024 * 1024;

/// A parse failure, before the caller attaches the file name.
#[derive(Debug)]
pub(crate) struct SyntaxError {
    pub(crate) line: usize,
    pub(crate) column: usize,
    pub(crate) message: String,
}

/// One node of the document, with the position where it starts (1-based line and column).
#[derive(Clone)]
pub(crate) struct Node {
    pub(crate) kind: Kind,
    pub(crate) line: usize,
    pub(crate) column: usize,
    /// Nodes in this subtree, itself included.
    weight: usize,
    /// Scalar bytes in this subtree.
    bytes: usize,
}

/// What a node is.
#[derive(Clone)]
pub(crate) enum Kind {
    /// A scalar; `plain` when it was written without quotes or block indicators (only plain
    /// scalars can be null or booleans, YAML 1.2 §10.2).
    Scalar { text: Zeroizing<String>, plain: bool },
    /// A sequence.
    Seq(Vec<Node>),
    /// A mapping, in document order.
    Map(Vec<(Node, Node)>),
}

impl core::fmt::Debug for Node {
    // Scalars may be tokens or keys: show only the shape and position.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "Node({} at {}:{})", self.kind_name(), self.line, self.column)
    }
}

impl Node {
    /// Whether the node is a YAML null (`null`, `~` or empty, unquoted).
    pub(crate) fn is_null(&self) -> bool {
        matches!(&self.kind, Kind::Scalar { text, plain: true }
            if matches!(text.as_str(), "" | "~" | "null" | "Null" | "NULL"))
    }

    /// A short name of the node's kind, for messages.
    pub(crate) fn kind_name(&self) -> &'static str {
        match &self.kind {
            _ if self.is_null() => "null",
            Kind::Scalar { .. } => "a scalar",
            Kind::Seq(_) => "a sequence",
            Kind::Map(_) => "a mapping",
        }
    }

    fn leaf(text: String, plain: bool, mark: Marker) -> Self {
        let bytes = text.len();
        Self {
            kind: Kind::Scalar { text: Zeroizing::new(text), plain },
            line: mark.line(),
            column: mark.col() + 1,
            weight: 1,
            bytes,
        }
    }
}

/// A collection being built.
enum Frame {
    Seq {
        items: Vec<Node>,
        anchor: usize,
        mark: Marker,
        weight: usize,
        bytes: usize,
    },
    Map {
        entries: Vec<(Node, Node)>,
        key: Option<Node>,
        anchor: usize,
        mark: Marker,
        weight: usize,
        bytes: usize,
    },
}

struct Builder {
    stack: Vec<Frame>,
    anchors: HashMap<usize, Node>,
    nodes: usize,
    bytes: usize,
    root: Option<Node>,
}

impl Builder {
    fn fail(mark: Marker, message: impl Into<String>) -> SyntaxError {
        SyntaxError { line: mark.line(), column: mark.col() + 1, message: message.into() }
    }

    /// Accounts for `weight` more nodes and `bytes` more scalar bytes.
    fn charge(&mut self, weight: usize, bytes: usize, mark: Marker) -> Result<(), SyntaxError> {
        self.nodes = self.nodes.saturating_add(weight);
        self.bytes = self.bytes.saturating_add(bytes);
        if self.nodes > MAX_NODES || self.bytes > MAX_SCALAR_BYTES {
            return Err(Self::fail(
                mark,
                format!(
                    "document too large after alias expansion (limits: {MAX_NODES} nodes, \
                     {MAX_SCALAR_BYTES} scalar bytes)"
                ),
            ));
        }
        Ok(())
    }

    /// Places a finished node into its parent, or makes it the root.
    fn finish(&mut self, node: Node, anchor: usize) {
        if anchor != 0 {
            self.anchors.insert(anchor, node.clone());
        }
        match self.stack.last_mut() {
            None => self.root = Some(node),
            Some(Frame::Seq { items, weight, bytes, .. }) => {
                *weight += node.weight;
                *bytes += node.bytes;
                items.push(node);
            }
            Some(Frame::Map { entries, key, weight, bytes, .. }) => {
                *weight += node.weight;
                *bytes += node.bytes;
                match key.take() {
                    None => *key = Some(node),
                    Some(k) => entries.push((k, node)),
                }
            }
        }
    }

    fn open(&mut self, frame: Frame, mark: Marker) -> Result<(), SyntaxError> {
        if self.stack.len() >= MAX_DEPTH {
            return Err(Self::fail(mark, format!("nesting deeper than {MAX_DEPTH} levels")));
        }
        self.charge(1, 0, mark)?;
        self.stack.push(frame);
        Ok(())
    }

    fn close(&mut self, mark: Marker) -> Result<(), SyntaxError> {
        let node = match self.stack.pop() {
            Some(Frame::Seq { items, anchor, mark, weight, bytes }) => (
                Node {
                    kind: Kind::Seq(items),
                    line: mark.line(),
                    column: mark.col() + 1,
                    weight: weight + 1,
                    bytes,
                },
                anchor,
            ),
            Some(Frame::Map { entries, anchor, mark, weight, bytes, .. }) => (
                Node {
                    kind: Kind::Map(entries),
                    line: mark.line(),
                    column: mark.col() + 1,
                    weight: weight + 1,
                    bytes,
                },
                anchor,
            ),
            None => return Err(Self::fail(mark, "unbalanced collection end")),
        };
        self.finish(node.0, node.1);
        Ok(())
    }
}

/// Parses the first YAML document of `text` into a tree; `Ok(None)` for a stream without
/// documents (an empty file).
pub(crate) fn parse(text: &str) -> Result<Option<Node>, SyntaxError> {
    let mut parser = Parser::new_from_str(text);
    let mut builder =
        Builder { stack: Vec::new(), anchors: HashMap::new(), nodes: 0, bytes: 0, root: None };
    loop {
        let (event, mark) =
            parser.next_token().map_err(|e| Builder::fail(*e.marker(), e.info().to_owned()))?;
        match event {
            Event::StreamEnd => return Ok(builder.root),
            Event::Nothing | Event::StreamStart | Event::DocumentStart => {}
            // Like kubectl (go-yaml's Unmarshal), only the first document counts.
            Event::DocumentEnd => return Ok(builder.root),
            Event::Scalar(text, style, anchor, _tag) => {
                builder.charge(1, text.len(), mark)?;
                let plain = style == TScalarStyle::Plain;
                builder.finish(Node::leaf(text, plain, mark), anchor);
            }
            Event::Alias(id) => {
                let Some(target) = builder.anchors.get(&id) else {
                    return Err(Builder::fail(mark, "alias to an unknown anchor"));
                };
                let (weight, bytes) = (target.weight, target.bytes);
                let mut copy = target.clone();
                builder.charge(weight, bytes, mark)?;
                copy.line = mark.line();
                copy.column = mark.col() + 1;
                builder.finish(copy, 0);
            }
            Event::SequenceStart(anchor, _tag) => builder
                .open(Frame::Seq { items: Vec::new(), anchor, mark, weight: 0, bytes: 0 }, mark)?,
            Event::MappingStart(anchor, _tag) => builder.open(
                Frame::Map { entries: Vec::new(), key: None, anchor, mark, weight: 0, bytes: 0 },
                mark,
            )?,
            Event::SequenceEnd | Event::MappingEnd => builder.close(mark)?,
        }
    }
}

/// Writes `value` as a YAML double-quoted scalar (YAML 1.2 §7.3.1), which every YAML
/// reader, kubectl's included, accepts.
pub(crate) fn quote(out: &mut String, value: &str) {
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 || c == '\u{7f}' || ('\u{80}'..='\u{9f}').contains(&c) => {
                out.push_str(&format!("\\u{:04x}", c as u32));
            }
            // Line and paragraph separators and the BOM are not printable in YAML.
            '\u{2028}' | '\u{2029}' | '\u{feff}' => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn scalar(node: &Node) -> &str {
        match &node.kind {
            Kind::Scalar { text, .. } => text.as_str(),
            _ => panic!("not a scalar"),
        }
    }

    #[test]
    fn quoting_round_trips_awkward_strings() {
        for value in
            ["plain", "with \"quotes\" and \\", "tab\tnl\nctl\u{1}", "ünïcode ✓", "", "\u{2028}"]
        {
            let mut text = String::from("k: ");
            quote(&mut text, value);
            let root = parse(&text).unwrap().unwrap();
            let Kind::Map(entries) = &root.kind else { panic!("not a map") };
            assert_eq!(scalar(&entries[0].1), value);
        }
    }

    #[test]
    fn positions_are_one_based() {
        let root = parse("a:\n  b: [1, 2]\n").unwrap().unwrap();
        let Kind::Map(outer) = &root.kind else { panic!() };
        let Kind::Map(inner) = &outer[0].1.kind else { panic!() };
        assert_eq!((inner[0].0.line, inner[0].0.column), (2, 3));
        let err = parse("a: [1, 2\n").unwrap_err();
        assert!(err.line >= 1 && err.column >= 1, "{err:?}");
    }

    #[test]
    fn aliases_expand_and_nesting_is_bounded() {
        let root = parse("a: &x [1, 2]\nb: *x\n").unwrap().unwrap();
        assert_eq!(root.weight, 1 + 1 + 3 + 1 + 3);
        let deep = "[".repeat(MAX_DEPTH + 1);
        let err = parse(&deep).unwrap_err();
        assert!(err.message.contains("nesting deeper"), "{err:?}");
        assert!(parse(&"[".repeat(MAX_DEPTH)).is_err());
    }
}
