//! The little XML the simulated Finesse needs: stanzas cut out of its XMPP stream to the
//! notification service, and request bodies read into small element trees.
//!
//! Read with a strict XML 1.0 parser (roxmltree), not the relay's quick-xml reader: the
//! simulator checks what the relay sends, so it refuses what a real server's parser refuses
//! (undeclared prefixes, duplicate attributes, unknown entities) and shares no reading mistake
//! with the relay.

/// One element: its local name, attributes (by their local name), text and children.
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
pub struct XmlError(String);

/// Reads one document (a request body) into its root element, refusing whatever is not
/// well-formed XML 1.0 with its namespaces declared, as Finesse's own XML parser would.
pub fn parse(text: &str) -> Result<Element, XmlError> {
    let document = roxmltree::Document::parse(text).map_err(|e| XmlError(e.to_string()))?;
    Ok(element(document.root_element()))
}

/// Reads one stanza cut out of the XMPP stream. Its `stream:` prefix (on `<stream:features>`,
/// `<stream:error>`) was declared by the stream's opening tag, so it is declared again around
/// the stanza for it to be read on its own.
pub fn parse_stanza(text: &str) -> Result<Element, XmlError> {
    let wrapped = format!("<stanza xmlns:stream='{STREAMS_NS}'>{text}</stanza>");
    let document = roxmltree::Document::parse(&wrapped).map_err(|e| XmlError(e.to_string()))?;
    document
        .root_element()
        .children()
        .find(roxmltree::Node::is_element)
        .map(element)
        .ok_or_else(|| XmlError("no stanza".into()))
}

const STREAMS_NS: &str = "http://etherx.jabber.org/streams";

fn element(node: roxmltree::Node<'_, '_>) -> Element {
    Element {
        name: node.tag_name().name().to_string(),
        attrs: node
            .attributes()
            .map(|a| (a.name().to_string(), a.value().to_string()))
            .collect(),
        text: node
            .children()
            .filter(roxmltree::Node::is_text)
            .filter_map(|t| t.text())
            .collect(),
        children: node
            .children()
            .filter(roxmltree::Node::is_element)
            .map(element)
            .collect(),
    }
}

/// Text or an attribute value made safe for XML.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
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
    fn a_request_body_is_read_with_its_entities_and_cdata() {
        let body = "<?xml version='1.0' encoding='UTF-8'?>\
            <Dialog><requestedAction>MAKE_CALL</requestedAction>\
            <toAddress>  +41 44 &amp; 1 </toAddress><note><![CDATA[a <b>]]></note></Dialog>";
        let dialog = parse(body).expect("well-formed");
        assert_eq!(dialog.name, "Dialog");
        assert_eq!(dialog.text_of("requestedAction"), "MAKE_CALL");
        assert_eq!(dialog.text_of("toAddress"), "+41 44 & 1");
        assert_eq!(dialog.text_of("note"), "a <b>");
    }

    #[test]
    fn what_a_strict_parser_refuses_is_refused() {
        for body in [
            "",
            "<Dialog>",
            "<a><b></a>",
            "<Dialog a='1' a='2'/>",
            "<x:Dialog/>",
            "<Dialog>&nbsp;</Dialog>",
            "<Dialog/><Dialog/>",
        ] {
            assert!(parse(body).is_err(), "{body:?} taken");
        }
    }

    #[test]
    fn stanzas_are_cut_from_the_stream_and_read_with_the_stream_prefix() {
        let stream = b"<?xml version='1.0'?><stream:stream xmlns='jabber:client' \
            xmlns:stream='http://etherx.jabber.org/streams' id='x'>\
            <stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></stream:features>\
            <iq type='result' id='a&apos;1'><query xmlns='jabber:iq:version'/></iq>";
        let (piece, used) = split(stream).expect("declaration");
        assert_eq!(piece, Piece::Stanza(String::new()));
        let rest = &stream[used..];
        let (piece, used) = split(rest).expect("open");
        assert_eq!(piece, Piece::StreamOpen);
        let rest = &rest[used..];
        let (Piece::Stanza(features), used) = split(rest).expect("features") else {
            panic!("a stanza")
        };
        let features = parse_stanza(&features).expect("the stream prefix is declared");
        assert_eq!(features.name, "features");
        assert!(features.child("bind").is_some());
        let rest = &rest[used..];
        let (Piece::Stanza(iq), _) = split(rest).expect("iq") else {
            panic!("a stanza")
        };
        let iq = parse_stanza(&iq).expect("an iq");
        assert_eq!(
            (iq.attr("type"), iq.attr("id")),
            (Some("result"), Some("a'1"))
        );
        assert!(parse_stanza("<iq><unclosed></iq>").is_err());
    }

    #[test]
    fn escaped_text_reads_back_as_written() {
        let text = "a & b < c > d \"e\" 'f'";
        let element =
            parse(&format!("<t v=\"{}\">{}</t>", escape(text), escape(text))).expect("xml");
        assert_eq!(
            (element.attr("v"), element.text.as_str()),
            (Some(text), text)
        );
    }
}
