//! Names the key a byte offset of a (possibly broken) `surveyor.toml` falls in, so a TOML syntax
//! error reads `catalog.retention: invalid TOML: ...` rather than a bare line and column.

use std::borrow::Cow;
use std::collections::HashMap;

use toml_parser::decoder::Encoding;
use toml_parser::parser::{EventReceiver, parse_document};
use toml_parser::{ErrorSink, Source, Span};

/// The dotted path (`connectors[1].schedule`, `identity[0].aliases`) of the table header or
/// key-value pair that `offset` falls in; empty before the first key. Works on invalid TOML: the
/// parser recovers after errors, and only what precedes `offset` matters.
pub(crate) fn key_at(text: &str, offset: usize) -> String {
    let source = Source::new(text);
    let tokens = source.lex().into_vec();
    let mut tracker = Tracker {
        source,
        anchors: Vec::new(),
        table: String::new(),
        array_tables: HashMap::new(),
        header: None,
        key: Vec::new(),
        key_anchor: None,
        in_value: false,
        depth: 0,
    };
    parse_document(&tokens, &mut tracker, &mut ());
    tracker.finish_header();
    tracker
        .anchors
        .iter()
        .rev()
        .find(|(start, _)| *start <= offset)
        .map(|(_, path)| path.clone())
        .unwrap_or_default()
}

/// A key as it appears in a dotted path: bare when TOML allows it bare, quoted otherwise.
pub(crate) fn key_segment(name: &str) -> Cow<'_, str> {
    let bare = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if bare {
        Cow::Borrowed(name)
    } else {
        Cow::Owned(format!("{name:?}"))
    }
}

struct Header {
    start: usize,
    array: bool,
    keys: Vec<String>,
}

struct Tracker<'i> {
    source: Source<'i>,
    /// Where each header or key-value pair starts, and the path it names, in file order.
    anchors: Vec<(usize, String)>,
    /// The path of the current table (`catalog`, `connectors[2]`).
    table: String,
    /// How many `[[name]]` tables each dotted name has had so far.
    array_tables: HashMap<String, usize>,
    header: Option<Header>,
    /// The (possibly dotted) key of the pair being read, and its anchor's index.
    key: Vec<String>,
    key_anchor: Option<usize>,
    /// After `=` until the end of the line: keys inside inline tables are not the pair's key.
    in_value: bool,
    depth: usize,
}

impl Tracker<'_> {
    fn decode(&self, span: Span, encoding: Option<Encoding>) -> String {
        let Some(raw) = self.source.get(span) else {
            return String::new();
        };
        let raw = toml_parser::Raw::new_unchecked(raw.as_str(), encoding, span);
        let mut out = String::new();
        raw.decode_key(&mut out, &mut ());
        out
    }

    fn finish_header(&mut self) {
        let Some(header) = self.header.take() else {
            return;
        };
        if header.keys.is_empty() {
            return;
        }
        let full = header.keys.join(".");
        if header.array {
            *self.array_tables.entry(full).or_insert(0) += 1;
        }
        let mut path = String::new();
        for (i, key) in header.keys.iter().enumerate() {
            if !path.is_empty() {
                path.push('.');
            }
            path.push_str(&key_segment(key));
            let so_far = header.keys[..=i].join(".");
            if let Some(count) = self.array_tables.get(&so_far) {
                path.push_str(&format!("[{}]", count.saturating_sub(1)));
            }
        }
        self.anchors.push((header.start, path.clone()));
        self.table = path;
        self.reset_pair();
    }

    fn reset_pair(&mut self) {
        self.key.clear();
        self.key_anchor = None;
        self.in_value = false;
        self.depth = 0;
    }

    fn pair_path(&self) -> String {
        let mut path = self.table.clone();
        for key in &self.key {
            if !path.is_empty() {
                path.push('.');
            }
            path.push_str(&key_segment(key));
        }
        path
    }
}

impl EventReceiver for Tracker<'_> {
    fn std_table_open(&mut self, span: Span, _error: &mut dyn ErrorSink) {
        self.finish_header();
        self.header = Some(Header {
            start: span.start(),
            array: false,
            keys: Vec::new(),
        });
    }

    fn std_table_close(&mut self, _span: Span, _error: &mut dyn ErrorSink) {
        self.finish_header();
    }

    fn array_table_open(&mut self, span: Span, _error: &mut dyn ErrorSink) {
        self.finish_header();
        self.header = Some(Header {
            start: span.start(),
            array: true,
            keys: Vec::new(),
        });
    }

    fn array_table_close(&mut self, _span: Span, _error: &mut dyn ErrorSink) {
        self.finish_header();
    }

    fn inline_table_open(&mut self, _span: Span, _error: &mut dyn ErrorSink) -> bool {
        self.depth += 1;
        true
    }

    fn inline_table_close(&mut self, _span: Span, _error: &mut dyn ErrorSink) {
        self.depth = self.depth.saturating_sub(1);
    }

    fn array_open(&mut self, _span: Span, _error: &mut dyn ErrorSink) -> bool {
        self.depth += 1;
        true
    }

    fn array_close(&mut self, _span: Span, _error: &mut dyn ErrorSink) {
        self.depth = self.depth.saturating_sub(1);
    }

    fn simple_key(&mut self, span: Span, encoding: Option<Encoding>, _error: &mut dyn ErrorSink) {
        let key = self.decode(span, encoding);
        if let Some(header) = self.header.as_mut() {
            header.keys.push(key);
            return;
        }
        if self.in_value || self.depth > 0 {
            return;
        }
        self.key.push(key);
        let path = self.pair_path();
        match self.key_anchor {
            Some(i) => self.anchors[i].1 = path,
            None => {
                self.key_anchor = Some(self.anchors.len());
                self.anchors.push((span.start(), path));
            }
        }
    }

    fn key_val_sep(&mut self, _span: Span, _error: &mut dyn ErrorSink) {
        if self.header.is_none() && self.depth == 0 {
            self.in_value = true;
        }
    }

    fn newline(&mut self, _span: Span, _error: &mut dyn ErrorSink) {
        // An unclosed header ends at its line; a pair ends at a newline outside brackets.
        self.finish_header();
        if self.depth == 0 {
            self.key.clear();
            self.key_anchor = None;
            self.in_value = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str, needle: &str) -> String {
        let offset = text.find(needle).expect("needle in text");
        key_at(text, offset)
    }

    #[test]
    fn names_tables_keys_and_array_table_indexes() {
        let text = "top = 1\n[catalog]\nretention = \"7d\"\n[[connectors]]\nid = \"a\"\n[[connectors]]\nid = \"b\"\nschedule = \"x\"\n[[identity]]\n[identity.aliases]\n\"Payments API\" = [\"p\"]\n";
        assert_eq!(at(text, "top"), "top");
        assert_eq!(at(text, "\"7d\""), "catalog.retention");
        assert_eq!(at(text, "\"a\""), "connectors[0].id");
        assert_eq!(at(text, "\"x\""), "connectors[1].schedule");
        assert_eq!(at(text, "[identity.aliases]"), "identity[0].aliases");
        assert_eq!(at(text, "[\"p\"]"), "identity[0].aliases.\"Payments API\"");
    }

    #[test]
    fn multi_line_values_and_inline_tables_keep_their_key() {
        let text = "[server]\ncors_origins = [\n  \"a\",\n  [\"b\"],\n]\nx = { inner = 1 }\n";
        assert_eq!(at(text, "[\"b\"]"), "server.cors_origins");
        assert_eq!(at(text, "inner"), "server.x");
    }

    #[test]
    fn broken_files_still_name_a_key() {
        assert_eq!(key_at("[catalog\nx = 1\n", 8), "catalog");
        let text = "[catalog]\nretention =\n";
        assert_eq!(key_at(text, text.len() - 1), "catalog.retention");
        assert_eq!(key_at("", 0), "");
        assert_eq!(key_at("# only a comment\n", 3), "");
    }

    #[test]
    fn segments_are_quoted_only_when_they_must_be() {
        assert_eq!(key_segment("max_page_size"), "max_page_size");
        assert_eq!(key_segment("a b"), "\"a b\"");
        assert_eq!(key_segment(""), "\"\"");
    }
}
