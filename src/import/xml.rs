//! The streaming XML walk the WXR and Disqus readers share: it finds the record elements and
//! hands each one over as the decoded text of its descendants, by relative path.

use std::collections::HashMap;
use std::path::Path;

use quick_xml::events::{BytesStart, Event};
use quick_xml::name::ResolveResult;
use quick_xml::{NsReader, XmlVersion};

use super::{line_of, ImportError, Position};

/// Which elements are records.
pub(super) struct RecordSpec {
    /// The document's root element (local name).
    pub root: &'static str,
    /// The record element's parent (local name).
    pub parent: &'static str,
    /// The record element (local name).
    pub local: &'static str,
    /// Whether the record element's namespace is the right one.
    pub namespace_ok: fn(&[u8]) -> bool,
}

/// One record element, read.
pub(super) struct XmlRecord {
    /// Decoded text of each descendant element, by its path of local names below the record
    /// (`comment_content`, `author/email`); empty for an element without text, and repeated
    /// elements' texts are concatenated.
    fields: HashMap<String, String>,
    /// The record element's attributes: (namespace, local name, value).
    attrs: Vec<(String, String, String)>,
    /// Where the record starts.
    pub line: u64,
}

impl XmlRecord {
    /// The text of the descendant at `path`, or `None` when there is no such element.
    pub(super) fn get(&self, path: &str) -> Option<&str> {
        self.fields.get(path).map(String::as_str)
    }

    /// The text of the descendant at `path`, or empty.
    pub(super) fn field(&self, path: &str) -> &str {
        self.get(path).unwrap_or_default()
    }

    /// The value of the attribute `local` in `namespace`; failing that, of any attribute named
    /// `local` (exports are not always careful with prefixes).
    pub(super) fn attr(&self, namespace: &str, local: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(ns, l, _)| ns == namespace && l == local)
            .or_else(|| self.attrs.iter().find(|(_, l, _)| l == local))
            .map(|(_, _, v)| v.as_str())
    }
}

/// A record being read.
struct Open {
    /// The depth of the record element (the stack's length with it pushed).
    depth: usize,
    record: XmlRecord,
}

fn reader(text: &str) -> NsReader<&[u8]> {
    let mut reader = NsReader::from_reader(text.as_bytes());
    let config = reader.config_mut();
    // `<a/>` reads as `<a></a>`, so every element has an end to pop.
    config.expand_empty_elements = true;
    // WordPress writes author URLs through `esc_url_raw`, unescaped: `?a=1&b=2` is taken as
    // the text it is rather than failing the whole export.
    config.allow_dangling_amp = true;
    reader
}

fn position(text: &str, byte: u64, stack: &[(String, String)]) -> Position {
    let element: Vec<&str> = stack.iter().map(|(q, _)| q.as_str()).collect();
    Position::Xml {
        byte,
        line: line_of(text.as_bytes(), usize::try_from(byte).unwrap_or(usize::MAX)),
        element: element.join("/"),
    }
}

fn malformed(path: &Path, at: Position, message: impl Into<String>) -> ImportError {
    ImportError::Malformed {
        path: path.to_path_buf(),
        at,
        message: message.into(),
    }
}

fn names(e: &BytesStart<'_>) -> (String, String) {
    (
        String::from_utf8_lossy(e.name().as_ref()).into_owned(),
        String::from_utf8_lossy(e.local_name().as_ref()).into_owned(),
    )
}

/// The local name of the document's root element.
pub(super) fn root_name(path: &Path, text: &str) -> Result<String, ImportError> {
    let mut reader = reader(text);
    let mut buf = Vec::new();
    loop {
        match reader.read_event_into(&mut buf) {
            Ok(Event::Start(e)) => return Ok(names(&e).1),
            Ok(Event::Eof) => {
                return Err(malformed(
                    path,
                    position(text, reader.buffer_position(), &[]),
                    "an XML document without a root element",
                ))
            }
            Ok(_) => {}
            Err(e) => {
                return Err(malformed(
                    path,
                    position(text, reader.error_position(), &[]),
                    format!("not well-formed XML: {e}"),
                ))
            }
        }
        buf.clear();
    }
}

/// Walks the whole document, calling `on_record` for each record element in order. A record
/// that `on_record` rejects, and any XML error anywhere, fails the walk with its position.
pub(super) fn read_records(
    path: &Path,
    text: &str,
    spec: &RecordSpec,
    mut on_record: impl FnMut(XmlRecord) -> Result<(), String>,
) -> Result<(), ImportError> {
    let mut reader = reader(text);
    let mut buf = Vec::new();
    // The open elements: (qualified name, local name).
    let mut stack: Vec<(String, String)> = Vec::new();
    let mut open: Option<Open> = None;
    let mut saw_root = false;
    loop {
        let start = reader.buffer_position();
        let (namespace, event) = match reader.read_resolved_event_into(&mut buf) {
            Ok((ns, event)) => {
                let ns = match ns {
                    ResolveResult::Bound(n) => n.as_ref().to_vec(),
                    _ => Vec::new(),
                };
                (ns, event)
            }
            Err(e) => {
                return Err(malformed(
                    path,
                    position(text, reader.error_position(), &stack),
                    format!("not well-formed XML: {e}"),
                ))
            }
        };
        match event {
            Event::Start(e) => {
                let (qname, local) = names(&e);
                if stack.is_empty() {
                    if saw_root {
                        return Err(malformed(
                            path,
                            position(text, start, &stack),
                            format!("a second root element <{qname}>"),
                        ));
                    }
                    saw_root = true;
                    if local != spec.root {
                        return Err(malformed(
                            path,
                            position(text, start, &stack),
                            format!("the root element is <{qname}>, expected <{}>", spec.root),
                        ));
                    }
                }
                let is_record = open.is_none()
                    && local == spec.local
                    && stack.last().is_some_and(|(_, l)| l == spec.parent)
                    && (spec.namespace_ok)(&namespace);
                stack.push((qname, local));
                // A descendant is present even when it holds no text (`<parent dsq:id="1"/>`).
                append(&mut open, &stack, "");
                if is_record {
                    let mut attrs = Vec::new();
                    for attr in e.attributes() {
                        let attr = attr.map_err(|err| {
                            malformed(
                                path,
                                position(text, start, &stack),
                                format!("bad attribute: {err}"),
                            )
                        })?;
                        let (ns, local) = reader.resolver().resolve_attribute(attr.key);
                        let ns = match ns {
                            ResolveResult::Bound(n) => String::from_utf8_lossy(n.as_ref()).into(),
                            _ => String::new(),
                        };
                        let value = attr
                            .normalized_value(XmlVersion::Implicit1_0)
                            .map(|v| v.into_owned())
                            .unwrap_or_else(|_| String::from_utf8_lossy(&attr.value).into());
                        attrs.push((
                            ns,
                            String::from_utf8_lossy(local.as_ref()).into_owned(),
                            value,
                        ));
                    }
                    open = Some(Open {
                        depth: stack.len(),
                        record: XmlRecord {
                            fields: HashMap::new(),
                            attrs,
                            line: line_of(
                                text.as_bytes(),
                                usize::try_from(start).unwrap_or(usize::MAX),
                            ),
                        },
                    });
                }
            }
            Event::End(_) => {
                if let Some(o) = open.take_if(|o| o.depth == stack.len()) {
                    on_record(o.record).map_err(|message| {
                        malformed(path, position(text, start, &stack), message)
                    })?;
                }
                stack.pop();
            }
            Event::Text(t) => {
                let decoded = t
                    .decode()
                    .map_err(|e| malformed(path, position(text, start, &stack), e.to_string()))?;
                append(&mut open, &stack, &decoded);
            }
            Event::CData(c) => {
                let decoded = c
                    .decode()
                    .map_err(|e| malformed(path, position(text, start, &stack), e.to_string()))?;
                append(&mut open, &stack, &decoded);
            }
            Event::GeneralRef(r) => {
                let resolved = match r.resolve_char_ref() {
                    Ok(Some(ch)) => ch.to_string(),
                    Ok(None) => {
                        let name = r.decode().map_err(|e| {
                            malformed(path, position(text, start, &stack), e.to_string())
                        })?;
                        match name.as_ref() {
                            "amp" => "&".into(),
                            "lt" => "<".into(),
                            "gt" => ">".into(),
                            "quot" => "\"".into(),
                            "apos" => "'".into(),
                            // Not an XML entity (an HTML one such as `&nbsp;` written outside
                            // CDATA): kept as written, for the HTML normaliser downstream.
                            other => format!("&{other};"),
                        }
                    }
                    Err(e) => {
                        return Err(malformed(
                            path,
                            position(text, start, &stack),
                            format!("bad character reference: {e}"),
                        ))
                    }
                };
                append(&mut open, &stack, &resolved);
            }
            Event::Eof => {
                if let Some((qname, _)) = stack.last() {
                    return Err(malformed(
                        path,
                        position(text, reader.buffer_position(), &stack),
                        format!("the document ends inside <{qname}> (truncated?)"),
                    ));
                }
                if !saw_root {
                    return Err(malformed(
                        path,
                        position(text, reader.buffer_position(), &stack),
                        "an XML document without a root element",
                    ));
                }
                return Ok(());
            }
            Event::Empty(_)
            | Event::Comment(_)
            | Event::Decl(_)
            | Event::PI(_)
            | Event::DocType(_) => {}
        }
        buf.clear();
    }
}

/// Adds text to the innermost element below the open record (text directly inside the record
/// element is layout whitespace and dropped).
fn append(open: &mut Option<Open>, stack: &[(String, String)], text: &str) {
    let Some(o) = open else { return };
    let Some(below) = stack.get(o.depth..).filter(|b| !b.is_empty()) else {
        return;
    };
    let key: Vec<&str> = below.iter().map(|(_, l)| l.as_str()).collect();
    o.record
        .fields
        .entry(key.join("/"))
        .or_default()
        .push_str(text);
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPEC: RecordSpec = RecordSpec {
        root: "r",
        parent: "r",
        local: "rec",
        namespace_ok: |ns| ns == b"urn:x",
    };

    fn walk(doc: &str) -> Result<Vec<XmlRecord>, ImportError> {
        let mut out = Vec::new();
        read_records(Path::new("t.xml"), doc, &SPEC, |r| {
            out.push(r);
            Ok(())
        })?;
        Ok(out)
    }

    #[test]
    fn fields_join_cdata_text_and_references() {
        let doc = "<r xmlns=\"urn:x\" xmlns:i=\"urn:i\">\n<rec i:id=\"7\"><a>x &amp; &#8217;<![CDATA[<b>]]]]><![CDATA[>]]> &nbsp;</a><n><m>deep</m></n><e/></rec><rec/><other xmlns=\"urn:y\"><rec/></other></r>";
        let recs = walk(doc).unwrap();
        assert_eq!(recs.len(), 2);
        assert_eq!(recs[0].field("a"), "x & \u{2019}<b>]]> &nbsp;");
        assert_eq!(recs[0].field("n/m"), "deep");
        assert_eq!(recs[0].get("e"), Some(""));
        assert_eq!(recs[0].get("f"), None);
        assert_eq!(recs[0].attr("urn:i", "id"), Some("7"));
        assert_eq!(recs[0].line, 2);
    }

    #[test]
    fn dangling_ampersands_are_text() {
        let recs = walk("<r xmlns=\"urn:x\"><rec><u>http://a.test/?a=1&b=2</u></rec></r>").unwrap();
        assert_eq!(recs[0].field("u"), "http://a.test/?a=1&b=2");
    }

    #[test]
    fn truncation_and_mismatches_name_the_element() {
        let err = walk("<r xmlns=\"urn:x\">\n<rec><a>text")
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("t.xml: line 2") && err.contains("<r/rec/a>"),
            "{err}"
        );
        let err = walk("<r xmlns=\"urn:x\"><rec><a>text</b></rec></r>")
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("r/rec/a") && err.contains("not well-formed"),
            "{err}"
        );
        let err = walk("<q/>").err().unwrap().to_string();
        assert!(err.contains("root element is <q>"), "{err}");
        let err = walk("<r><rec><![CDATA[never closed")
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("t.xml"), "{err}");
    }
}
