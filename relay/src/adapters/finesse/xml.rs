//! The little XML the Finesse adapter needs: top-level stanzas cut out of an XMPP stream, and
//! small element trees (a stanza, a Finesse `<Update>` or `<Dialogs>`) read with quick-xml.
//!
//! The simulated Finesse reads with a strict parser of its own, so a mistake in this reader is
//! not shared by both sides of a test.

use quick_xml::events::Event;
use quick_xml::reader::Reader;

/// One element: its local name, attributes (by their name as written), text and children.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Element {
    pub name: String,
    pub attrs: Vec<(String, String)>,
    pub text: String,
    pub children: Vec<Element>,
}

impl Element {
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The first child of that local name.
    pub fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }

    pub fn children_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> {
        self.children.iter().filter(move |c| c.name == name)
    }

    /// The trimmed text of the first child of that name, empty when absent.
    pub fn text_of(&self, name: &str) -> String {
        self.child(name)
            .map(|c| c.text.trim().to_string())
            .unwrap_or_default()
    }

    /// Follows a path of child names.
    pub fn path(&self, names: &[&str]) -> Option<&Element> {
        names.iter().try_fold(self, |at, name| at.child(name))
    }
}

#[derive(Debug, thiserror::Error)]
#[error("malformed XML: {0}")]
pub struct XmlError(pub String);

fn local(name: &[u8]) -> String {
    let name = String::from_utf8_lossy(name);
    match name.rsplit_once(':') {
        Some((_, local)) => local.to_string(),
        None => name.into_owned(),
    }
}

/// Reads one document (or one stanza) into its root element.
pub fn parse(text: &str) -> Result<Element, XmlError> {
    let mut reader = Reader::from_str(text);
    let mut stack: Vec<Element> = Vec::new();
    loop {
        match reader.read_event() {
            Ok(Event::Start(start)) => stack.push(open(&start)?),
            Ok(Event::Empty(start)) => {
                let element = open(&start)?;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(element),
                    None => return Ok(element),
                }
            }
            Ok(Event::End(_)) => {
                let element = stack
                    .pop()
                    .ok_or_else(|| XmlError("unbalanced end".into()))?;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(element),
                    None => return Ok(element),
                }
            }
            Ok(Event::Text(t)) => {
                if let Some(top) = stack.last_mut() {
                    let raw = String::from_utf8_lossy(t.as_ref()).into_owned();
                    let text =
                        quick_xml::escape::unescape(&raw).map_err(|e| XmlError(e.to_string()))?;
                    top.text.push_str(&text);
                }
            }
            Ok(Event::GeneralRef(r)) => {
                if let Some(top) = stack.last_mut() {
                    let name = String::from_utf8_lossy(r.as_ref()).into_owned();
                    let reference = format!("&{name};");
                    let text = quick_xml::escape::unescape(&reference)
                        .map_err(|e| XmlError(e.to_string()))?;
                    top.text.push_str(&text);
                }
            }
            Ok(Event::CData(c)) => {
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&String::from_utf8_lossy(c.as_ref()));
                }
            }
            Ok(Event::Eof) => return Err(XmlError("no root element".into())),
            Ok(_) => {}
            Err(e) => return Err(XmlError(e.to_string())),
        }
    }
}

fn open(start: &quick_xml::events::BytesStart<'_>) -> Result<Element, XmlError> {
    let mut element = Element {
        name: local(start.name().as_ref()),
        ..Element::default()
    };
    for attr in start.attributes() {
        let attr = attr.map_err(|e| XmlError(e.to_string()))?;
        let value = attr
            .unescape_value()
            .map_err(|e| XmlError(e.to_string()))?
            .into_owned();
        element.attrs.push((
            String::from_utf8_lossy(attr.key.as_ref()).into_owned(),
            value,
        ));
    }
    Ok(element)
}

/// Text or an attribute value made safe for XML.
pub fn escape(text: &str) -> String {
    quick_xml::escape::escape(text).into_owned()
}

/// What the front of an XMPP stream's buffer holds.
#[derive(Debug, PartialEq, Eq)]
pub enum Piece {
    /// The server's `<stream:stream ...>` (its attributes do not matter here).
    StreamOpen,
    /// One complete top-level element, as text.
    Stanza(String),
    /// `</stream:stream>`.
    StreamClose,
}

/// Cuts the first complete piece off the front of `buffer`: the piece and the bytes it took, or
/// None while it is incomplete. Tags are found by their angle brackets, quotes respected; text
/// never holds a raw `<` in XML.
pub fn split(buffer: &[u8]) -> Option<(Piece, usize)> {
    let mut at = 0;
    while at < buffer.len() && buffer[at].is_ascii_whitespace() {
        at += 1;
    }
    let mut depth = 0usize;
    let mut start = None;
    loop {
        let lt = at + buffer.get(at..)?.iter().position(|&b| b == b'<')?;
        let gt = tag_end(buffer, lt)?;
        let tag = &buffer[lt..=gt];
        at = gt + 1;
        if tag.starts_with(b"<?") || tag.starts_with(b"<!") {
            if depth == 0 {
                // The XML declaration (or a comment) between stanzas: consumed on its own.
                return Some((Piece::Stanza(String::new()), at));
            }
            continue;
        }
        if depth == 0 && tag.starts_with(b"<stream:stream") {
            return Some((Piece::StreamOpen, at));
        }
        if depth == 0 && tag.starts_with(b"</stream:stream") {
            return Some((Piece::StreamClose, at));
        }
        if start.is_none() {
            start = Some(lt);
        }
        if tag.starts_with(b"</") {
            depth = depth.checked_sub(1)?;
        } else if !tag.ends_with(b"/>") {
            depth += 1;
        }
        if depth == 0 {
            let text = String::from_utf8_lossy(&buffer[start.unwrap_or(lt)..at]).into_owned();
            return Some((Piece::Stanza(text), at));
        }
    }
}

fn tag_end(buffer: &[u8], from: usize) -> Option<usize> {
    let mut quote = None;
    for (i, &b) in buffer.iter().enumerate().skip(from) {
        match quote {
            Some(q) if b == q => quote = None,
            Some(_) => {}
            None if b == b'"' || b == b'\'' => quote = Some(b),
            None if b == b'>' => return Some(i),
            None => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stanzas_are_cut_from_the_stream_as_they_complete() {
        let stream = b"<?xml version='1.0'?><stream:stream xmlns='jabber:client' id='x'><message a='>'><body>hi &amp; bye</body></message><presence/></stream:stream>";
        let (piece, used) = split(stream).expect("declaration");
        assert_eq!(piece, Piece::Stanza(String::new()));
        let rest = &stream[used..];
        let (piece, used2) = split(rest).expect("open");
        assert_eq!(piece, Piece::StreamOpen);
        let rest = &rest[used2..];
        assert!(split(&rest[..20]).is_none(), "incomplete");
        let (piece, used3) = split(rest).expect("message");
        let Piece::Stanza(text) = piece else {
            panic!("a stanza")
        };
        let message = parse(&text).expect("parses");
        assert_eq!(message.attr("a"), Some(">"));
        assert_eq!(message.text_of("body"), "hi & bye");
        let rest = &rest[used3..];
        let (piece, used4) = split(rest).expect("presence");
        assert_eq!(piece, Piece::Stanza("<presence/>".into()));
        assert_eq!(split(&rest[used4..]).expect("close").0, Piece::StreamClose);
    }

    #[test]
    fn broken_xml_is_an_error_not_a_panic() {
        assert!(parse("<a><b></a>").is_err());
        assert!(parse("").is_err());
        assert!(parse("&lt;Update").is_err());
    }
}
