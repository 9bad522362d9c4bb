//! FreeSWITCH's event socket (mod_event_socket) wire format, apart from any connection
//! (reference 5.5): a block of `Key: Value` lines ended by a blank line, then, when the block
//! has a `Content-Length`, a body of that many bytes. [`EslCodec`] frames a byte stream into
//! [`Frame`]s; a block it cannot read comes out as [`Frame::Malformed`] and reading goes on.

use bytes::{Buf, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

/// The largest block or body read (a channel's JSON event is a few KiB).
const MAX_FRAME: usize = 1024 * 1024;

/// One frame: its headers (in order) and body.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Message {
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Message {
    pub fn get(&self, key: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.as_str())
    }

    pub fn content_type(&self) -> &str {
        self.get("Content-Type").unwrap_or("")
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    Message(Message),
    Malformed { reason: String, bytes: usize },
}

/// Why a command could not be written.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    #[error("an ESL command may not hold a line break")]
    LineBreak,
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

#[derive(Debug, Default)]
pub struct EslCodec {
    /// The headers of a frame whose body has not all arrived.
    waiting: Option<(Vec<(String, String)>, usize)>,
}

fn block_end(buf: &[u8]) -> Option<(usize, usize)> {
    let mut i = 0;
    while i < buf.len() {
        if buf[i] == b'\n' {
            let rest = &buf[i + 1..];
            if rest.starts_with(b"\n") {
                return Some((i + 1, i + 2));
            }
            if rest.starts_with(b"\r\n") {
                return Some((i + 1, i + 3));
            }
        }
        i += 1;
    }
    None
}

fn headers(block: &[u8]) -> Result<Vec<(String, String)>, String> {
    let text = std::str::from_utf8(block).map_err(|_| "not UTF-8".to_string())?;
    let mut out = Vec::new();
    for line in text.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.is_empty() {
            continue;
        }
        let Some((k, v)) = line.split_once(':') else {
            let shown: String = line.chars().take(40).collect();
            return Err(format!("a line without `Key: Value`: {shown:?}"));
        };
        if k.trim().is_empty() || k.contains(' ') {
            let shown: String = line.chars().take(40).collect();
            return Err(format!("a line without a key: {shown:?}"));
        }
        out.push((k.trim().to_string(), v.trim().to_string()));
    }
    if out.is_empty() {
        return Err("an empty block".into());
    }
    Ok(out)
}

impl Decoder for EslCodec {
    type Item = Frame;
    type Error = std::io::Error;

    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Frame>, std::io::Error> {
        if let Some((_, length)) = &self.waiting {
            if buf.len() < *length {
                return Ok(None);
            }
            let length = *length;
            let Some((headers, _)) = self.waiting.take() else {
                return Ok(None);
            };
            let body = buf.split_to(length);
            return Ok(Some(match String::from_utf8(body.to_vec()) {
                Ok(body) => Frame::Message(Message { headers, body }),
                Err(_) => Frame::Malformed {
                    reason: "a body that is not UTF-8".into(),
                    bytes: length,
                },
            }));
        }
        while buf.starts_with(b"\n") || buf.starts_with(b"\r\n") {
            let n = if buf.starts_with(b"\n") { 1 } else { 2 };
            buf.advance(n);
        }
        let Some((content, end)) = block_end(buf) else {
            if buf.len() > MAX_FRAME {
                let bytes = buf.len();
                buf.clear();
                return Ok(Some(Frame::Malformed {
                    reason: format!("a header block longer than {MAX_FRAME} bytes"),
                    bytes,
                }));
            }
            return Ok(None);
        };
        let block = buf.split_to(end);
        let headers = match headers(&block[..content]) {
            Ok(h) => h,
            Err(reason) => return Ok(Some(Frame::Malformed { reason, bytes: end })),
        };
        let length = headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("Content-Length"))
            .map(|(_, v)| v.parse::<usize>());
        match length {
            None => Ok(Some(Frame::Message(Message {
                headers,
                body: String::new(),
            }))),
            Some(Ok(0)) => Ok(Some(Frame::Message(Message {
                headers,
                body: String::new(),
            }))),
            Some(Ok(n)) if n <= MAX_FRAME => {
                self.waiting = Some((headers, n));
                self.decode(buf)
            }
            Some(_) => Ok(Some(Frame::Malformed {
                reason: "a Content-Length that is no size this relay reads".into(),
                bytes: end,
            })),
        }
    }
}

/// A command line (`auth …`, `event json …`, `api …`, `bgapi …`), ended by a blank line.
impl Encoder<&str> for EslCodec {
    type Error = CodecError;

    fn encode(&mut self, command: &str, out: &mut BytesMut) -> Result<(), CodecError> {
        if command.contains(['\r', '\n']) {
            return Err(CodecError::LineBreak);
        }
        out.extend_from_slice(command.as_bytes());
        out.extend_from_slice(b"\n\n");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_and_content_length_bodies_are_framed_across_reads() {
        let body = r#"{"Event-Name":"CHANNEL_CREATE","Channel-Call-UUID":"a"}"#;
        let wire = format!(
            "Content-Type: auth/request\n\nContent-Type: command/reply\nReply-Text: +OK accepted\n\nContent-Length: {}\nContent-Type: text/event-json\n\n{body}",
            body.len()
        );
        let mut codec = EslCodec::default();
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        for b in wire.as_bytes() {
            buf.extend_from_slice(&[*b]);
            while let Some(f) = codec.decode(&mut buf).expect("decodes") {
                out.push(f);
            }
        }
        assert_eq!(out.len(), 3);
        let Frame::Message(event) = &out[2] else {
            panic!("a message")
        };
        assert_eq!(event.content_type(), "text/event-json");
        assert_eq!(event.body, body);
        let Frame::Message(reply) = &out[1] else {
            panic!("a message")
        };
        assert_eq!(reply.get("reply-text"), Some("+OK accepted"));
    }

    #[test]
    fn malformed_blocks_are_reported_and_reading_goes_on() {
        let mut codec = EslCodec::default();
        let mut buf = BytesMut::from(
            &b"garbage without colon\n\nContent-Length: lots\n\nContent-Type: api/response\nContent-Length: 3\n\n+OK"[..],
        );
        let mut out = Vec::new();
        while let Some(f) = codec.decode(&mut buf).expect("decodes") {
            out.push(f);
        }
        assert_eq!(out.len(), 3, "{out:?}");
        assert!(matches!(out[0], Frame::Malformed { .. }));
        assert!(matches!(out[1], Frame::Malformed { .. }));
        assert!(matches!(&out[2], Frame::Message(m) if m.body == "+OK"));
        let mut written = BytesMut::new();
        codec.encode("api status", &mut written).expect("encodes");
        assert_eq!(&written[..], b"api status\n\n");
        assert!(codec.encode("api status\n\nexit", &mut written).is_err());
    }
}
