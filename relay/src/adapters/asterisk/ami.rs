//! The Asterisk Manager Interface's wire format, apart from any connection (reference 5.3).
//!
//! AMI is text over TCP: the server greets with one line (`Asterisk Call Manager/9.0.0`), then
//! both sides exchange messages of CRLF-terminated `Key: Value` lines, a blank line ending each.
//! A client sends actions (`Action: Login`); the server answers each with a response
//! (`Response: Success|Error|Goodbye`) carrying the action's `ActionID`, and sends events
//! (`Event: Newchannel`) whenever something happens. [`AmiCodec`] frames a byte stream into
//! [`Frame`]s and writes [`Message`]s; a message it cannot read is handed on as
//! [`Frame::Malformed`] rather than an error, so one bad block never costs the connection.

use bytes::{Buf, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

/// The longest message read: Asterisk's largest events (a channel's variables) stay far below.
const MAX_MESSAGE: usize = 64 * 1024;

/// One AMI message: its lines in order (keys may repeat, e.g. `Variable`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Message {
    pub headers: Vec<(String, String)>,
}

impl Message {
    /// An action: `Action: <name>` first, then `fields`.
    pub fn action(name: &str, fields: &[(&str, &str)]) -> Message {
        let mut headers = vec![("Action".to_string(), name.to_string())];
        headers.extend(
            fields
                .iter()
                .map(|(k, v)| ((*k).to_string(), (*v).to_string())),
        );
        Message { headers }
    }

    /// The first value of `key` (compared without case, as Asterisk does).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.as_str())
    }

    /// The value of `key`, or "".
    pub fn text(&self, key: &str) -> &str {
        self.get(key).unwrap_or("")
    }

    /// Sets (or adds) `key`.
    pub fn set(&mut self, key: &str, value: &str) {
        match self
            .headers
            .iter_mut()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
        {
            Some((_, v)) => *v = value.to_string(),
            None => self.headers.push((key.to_string(), value.to_string())),
        }
    }

    /// The event's name, for an event.
    pub fn event(&self) -> Option<&str> {
        self.get("Event")
    }

    /// The response's status (`Success`, `Error`, `Goodbye`, `Follows`), for a response.
    pub fn response(&self) -> Option<&str> {
        self.get("Response")
    }
}

/// What the server sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// The greeting line, first on every connection.
    Banner(String),
    Message(Message),
    /// A block that is not AMI (a line without `: `, not UTF-8, or too long): why, and how
    /// many bytes were skipped. Reading goes on at the next message.
    Malformed {
        reason: String,
        bytes: usize,
    },
}

/// Why a message could not be written.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    #[error("an AMI value may not hold a line break ({key})")]
    LineBreak { key: String },
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// Frames AMI in both directions. Reads CRLF (and, leniently, bare LF) line ends.
#[derive(Debug, Default)]
pub struct AmiCodec {
    greeted: bool,
    /// Bytes of an over-long message being skipped until its blank line.
    skipping: Option<usize>,
}

impl AmiCodec {
    /// A codec for a connection whose banner was already read (or that has none: a server).
    pub fn greeted() -> Self {
        AmiCodec {
            greeted: true,
            skipping: None,
        }
    }
}

/// Where the first blank line ends in `buf`: (end of the block's content, end of the blank line).
fn block_end(buf: &[u8]) -> Option<(usize, usize)> {
    let mut i = 0;
    while i < buf.len() {
        if buf[i] == b'\n' {
            // A line ended at i; is the next line empty?
            let rest = &buf[i + 1..];
            if rest.starts_with(b"\r\n") {
                return Some((i + 1, i + 3));
            }
            if rest.starts_with(b"\n") {
                return Some((i + 1, i + 2));
            }
        }
        i += 1;
    }
    None
}

fn parse_block(block: &[u8]) -> Result<Message, String> {
    let text = std::str::from_utf8(block).map_err(|_| "not UTF-8".to_string())?;
    let mut headers = Vec::new();
    for line in text.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.is_empty() {
            continue;
        }
        let Some((key, value)) = line.split_once(':') else {
            let shown: String = line.chars().take(40).collect();
            return Err(format!("a line without `Key: Value`: {shown:?}"));
        };
        let key = key.trim();
        if key.is_empty() || key.contains(' ') {
            let shown: String = line.chars().take(40).collect();
            return Err(format!("a line without a key: {shown:?}"));
        }
        headers.push((key.to_string(), value.trim().to_string()));
    }
    if headers.is_empty() {
        return Err("an empty message".into());
    }
    Ok(Message { headers })
}

impl Decoder for AmiCodec {
    type Item = Frame;
    type Error = std::io::Error;

    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Frame>, std::io::Error> {
        if let Some(skipped) = self.skipping {
            return Ok(match block_end(buf) {
                Some((_, end)) => {
                    buf.advance(end);
                    self.skipping = None;
                    Some(Frame::Malformed {
                        reason: format!("a message longer than {MAX_MESSAGE} bytes"),
                        bytes: skipped + end,
                    })
                }
                None => {
                    // Keep the last bytes: the blank line may straddle two reads.
                    let keep = buf.len().min(3);
                    let drop = buf.len() - keep;
                    buf.advance(drop);
                    self.skipping = Some(skipped + drop);
                    None
                }
            });
        }
        if !self.greeted {
            let Some(end) = buf.iter().position(|b| *b == b'\n') else {
                if buf.len() > MAX_MESSAGE {
                    self.greeted = true;
                    self.skipping = Some(0);
                }
                return Ok(None);
            };
            let line = buf.split_to(end + 1);
            self.greeted = true;
            let text = String::from_utf8_lossy(&line).trim().to_string();
            return Ok(Some(Frame::Banner(text)));
        }
        // Blank lines between messages are no messages.
        while buf.starts_with(b"\r\n") || buf.starts_with(b"\n") {
            let n = if buf.starts_with(b"\r\n") { 2 } else { 1 };
            buf.advance(n);
        }
        let Some((content, end)) = block_end(buf) else {
            if buf.len() > MAX_MESSAGE {
                self.skipping = Some(0);
                return self.decode(buf);
            }
            return Ok(None);
        };
        let block = buf.split_to(end);
        if end > MAX_MESSAGE {
            return Ok(Some(Frame::Malformed {
                reason: format!("a message longer than {MAX_MESSAGE} bytes"),
                bytes: end,
            }));
        }
        Ok(Some(match parse_block(&block[..content]) {
            Ok(message) => Frame::Message(message),
            Err(reason) => Frame::Malformed { reason, bytes: end },
        }))
    }
}

impl Encoder<&Message> for AmiCodec {
    type Error = CodecError;

    fn encode(&mut self, message: &Message, out: &mut BytesMut) -> Result<(), CodecError> {
        for (key, value) in &message.headers {
            if key.contains(['\r', '\n', ':']) || value.contains(['\r', '\n']) {
                return Err(CodecError::LineBreak { key: key.clone() });
            }
        }
        for (key, value) in &message.headers {
            out.extend_from_slice(key.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(value.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"\r\n");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(codec: &mut AmiCodec, bytes: &[u8]) -> Vec<Frame> {
        let mut buf = BytesMut::from(bytes);
        let mut out = Vec::new();
        while let Some(frame) = codec.decode(&mut buf).expect("decodes") {
            out.push(frame);
        }
        out
    }

    #[test]
    fn the_banner_then_messages_are_framed_across_reads() {
        let mut codec = AmiCodec::default();
        let wire = b"Asterisk Call Manager/9.0.0\r\nResponse: Success\r\nActionID: 1\r\nMessage: Authentication accepted\r\n\r\nEvent: Newchannel\r\nChannel: PJSIP/21-0000001b\r\nCallerIDNum: <unknown>\r\n\r\n";
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        // One byte at a time: no frame depends on how TCP cut the stream.
        for b in wire.iter() {
            buf.extend_from_slice(&[*b]);
            while let Some(frame) = codec.decode(&mut buf).expect("decodes") {
                out.push(frame);
            }
        }
        assert_eq!(out.len(), 3);
        assert_eq!(out[0], Frame::Banner("Asterisk Call Manager/9.0.0".into()));
        let Frame::Message(login) = &out[1] else {
            panic!("a message")
        };
        assert_eq!(login.response(), Some("Success"));
        assert_eq!(login.get("actionid"), Some("1"));
        let Frame::Message(event) = &out[2] else {
            panic!("a message")
        };
        assert_eq!(event.event(), Some("Newchannel"));
        assert_eq!(event.text("CallerIDNum"), "<unknown>");
    }

    #[test]
    fn a_malformed_block_is_reported_and_reading_goes_on() {
        let mut codec = AmiCodec::greeted();
        let out = frames(
            &mut codec,
            b"Event: Hold\r\nthis is no header\r\n\r\n\xff\xfe: x\r\n\r\nEvent: Unhold\r\nChannel: PJSIP/21-1\r\n\r\n",
        );
        assert_eq!(out.len(), 3);
        assert!(
            matches!(&out[0], Frame::Malformed { reason, .. } if reason.contains("Key: Value"))
        );
        assert!(matches!(&out[1], Frame::Malformed { reason, .. } if reason.contains("UTF-8")));
        assert!(matches!(&out[2], Frame::Message(m) if m.event() == Some("Unhold")));
    }

    #[test]
    fn an_endless_message_is_skipped_to_its_end() {
        let mut codec = AmiCodec::greeted();
        let mut wire = b"Event: Big\r\nData: ".to_vec();
        wire.extend(std::iter::repeat_n(b'x', MAX_MESSAGE + 10));
        wire.extend_from_slice(b"\r\n\r\nEvent: Hangup\r\nCause: 16\r\n\r\n");
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        for chunk in wire.chunks(4096) {
            buf.extend_from_slice(chunk);
            while let Some(frame) = codec.decode(&mut buf).expect("decodes") {
                out.push(frame);
            }
        }
        assert_eq!(out.len(), 2, "{out:?}");
        assert!(
            matches!(&out[0], Frame::Malformed { bytes, .. } if *bytes > MAX_MESSAGE),
            "{:?}",
            out[0]
        );
        assert!(matches!(&out[1], Frame::Message(m) if m.text("Cause") == "16"));
    }

    #[test]
    fn actions_are_written_as_crlf_lines_and_line_breaks_refused() {
        let mut codec = AmiCodec::greeted();
        let mut out = BytesMut::new();
        let login = Message::action("Login", &[("Username", "cti"), ("Secret", "s")]);
        codec.encode(&login, &mut out).expect("encodes");
        assert_eq!(
            &out[..],
            b"Action: Login\r\nUsername: cti\r\nSecret: s\r\n\r\n"
        );
        let injected = Message::action("Hangup", &[("Channel", "x\r\nAction: Originate")]);
        assert!(codec.encode(&injected, &mut out).is_err());
    }
}
