//! The relay's side of SIP: the wire (UDP, TCP or TLS to the presence server), the requests
//! it sends (SUBSCRIBE), the answers it gives (to NOTIFY), and digest authentication, with
//! messages parsed and headers read by `rsip`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rsip::headers::ToTypedHeader;
use rsip::prelude::{HasHeaders, HeadersExt, UntypedHeader};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

use super::Transport;
use crate::secret::Secret;

/// Largest SIP message the relay reads: dialog-info documents of a busy rep stay far below.
const MAX_MESSAGE: usize = 256 * 1024;

/// Why the wire failed.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("TLS: {0}")]
    Tls(String),
    #[error("the SIP server closed the connection")]
    Closed,
    #[error("a message larger than {MAX_MESSAGE} bytes")]
    TooLarge,
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// One connection to the SIP server: a connected UDP socket, or a TCP (TLS) stream whose
/// messages are framed by their `Content-Length`.
pub struct Wire {
    kind: Kind,
    /// The relay's own address on this connection (for Via and Contact).
    pub local: SocketAddr,
    pub transport: Transport,
}

enum Kind {
    Udp(UdpSocket),
    Stream { io: Box<dyn Io>, buffer: Vec<u8> },
}

impl std::fmt::Debug for Wire {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Wire")
            .field("local", &self.local)
            .field("transport", &self.transport)
            .finish()
    }
}

impl Wire {
    /// Connects to `host:port` over `transport`; TLS checks the certificate for `host` against
    /// the web's roots and `ca_pem`.
    pub async fn connect(
        host: &str,
        port: u16,
        transport: Transport,
        ca_pem: Option<&str>,
    ) -> Result<Wire, WireError> {
        let target = (host.trim_matches(['[', ']']), port);
        match transport {
            Transport::Udp => {
                let server = tokio::net::lookup_host(target)
                    .await?
                    .next()
                    .ok_or_else(|| std::io::Error::other(format!("{host} has no address")))?;
                let any: SocketAddr = if server.is_ipv4() {
                    "0.0.0.0:0".parse().map_err(std::io::Error::other)?
                } else {
                    "[::]:0".parse().map_err(std::io::Error::other)?
                };
                let socket = UdpSocket::bind(any).await?;
                socket.connect(server).await?;
                let local = socket.local_addr()?;
                Ok(Wire {
                    kind: Kind::Udp(socket),
                    local,
                    transport,
                })
            }
            Transport::Tcp | Transport::Tls => {
                let stream = TcpStream::connect(target).await?;
                let local = stream.local_addr()?;
                let io: Box<dyn Io> = if transport == Transport::Tls {
                    tls(stream, host, ca_pem).await?
                } else {
                    Box::new(stream)
                };
                Ok(Wire {
                    kind: Kind::Stream {
                        io,
                        buffer: Vec::new(),
                    },
                    local,
                    transport,
                })
            }
        }
    }

    pub async fn send(&mut self, message: &[u8]) -> Result<(), WireError> {
        match &mut self.kind {
            Kind::Udp(socket) => {
                socket.send(message).await?;
            }
            Kind::Stream { io, .. } => {
                io.write_all(message).await?;
                io.flush().await?;
            }
        }
        Ok(())
    }

    /// The next message's bytes. Cancel-safe: what a cancelled read got stays buffered.
    pub async fn recv(&mut self) -> Result<Vec<u8>, WireError> {
        match &mut self.kind {
            Kind::Udp(socket) => {
                let mut datagram = vec![0u8; 65_535];
                let n = socket.recv(&mut datagram).await?;
                datagram.truncate(n);
                Ok(datagram)
            }
            Kind::Stream { io, buffer } => loop {
                if let Some(message) = frame(buffer)? {
                    return Ok(message);
                }
                let mut chunk = [0u8; 16 * 1024];
                let n = io.read(&mut chunk).await?;
                if n == 0 {
                    return Err(WireError::Closed);
                }
                buffer.extend_from_slice(&chunk[..n]);
            },
        }
    }
}

/// Cuts one message off the front of a stream's buffer (keep-alive CRLFs skipped), once its
/// head and `Content-Length` bytes of body are there.
pub(crate) fn frame(buffer: &mut Vec<u8>) -> Result<Option<Vec<u8>>, WireError> {
    let blank = buffer
        .iter()
        .take_while(|b| **b == b'\r' || **b == b'\n')
        .count();
    buffer.drain(..blank);
    let Some(head_end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") else {
        if buffer.len() > MAX_MESSAGE {
            return Err(WireError::TooLarge);
        }
        return Ok(None);
    };
    let head_len = head_end + 4;
    // The head alone, parsed by rsip, tells the body's length (none: no body on a stream).
    let length = rsip::SipMessage::try_from(&buffer[..head_len])
        .ok()
        .and_then(|m| {
            m.headers().iter().find_map(|h| match h {
                rsip::Header::ContentLength(l) => l.length().ok(),
                _ => None,
            })
        })
        .unwrap_or(0) as usize;
    if head_len + length > MAX_MESSAGE {
        return Err(WireError::TooLarge);
    }
    if buffer.len() < head_len + length {
        return Ok(None);
    }
    Ok(Some(buffer.drain(..head_len + length).collect()))
}

async fn tls(
    stream: TcpStream,
    host: &str,
    ca_pem: Option<&str>,
) -> Result<Box<dyn Io>, WireError> {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(pem) = ca_pem {
        for cert in rustls::pki_types::CertificateDer::pem_slice_iter(pem.as_bytes()) {
            let cert = cert.map_err(|e| WireError::Tls(format!("the CA PEM: {e}")))?;
            roots
                .add(cert)
                .map_err(|e| WireError::Tls(format!("the CA PEM: {e}")))?;
        }
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| WireError::Tls(e.to_string()))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from(host.trim_matches(['[', ']']).to_string())
        .map_err(|e| WireError::Tls(format!("{host:?}: {e}")))?;
    let stream = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, stream)
        .await?;
    Ok(Box::new(stream))
}

/// A random token for tags, branches and Call-IDs.
pub fn token() -> String {
    use rand::Rng;
    let mut rng = rand::thread_rng();
    (0..16)
        .map(|_| char::from(b"abcdefghijklmnopqrstuvwxyz0123456789"[rng.gen_range(0..36)]))
        .collect()
}

/// The server's challenge of a 401 (`WWW-Authenticate`) or 407 (`Proxy-Authenticate`).
#[derive(Debug, Clone)]
pub struct Challenge {
    proxy: bool,
    realm: String,
    nonce: String,
    opaque: Option<String>,
    algorithm: Option<rsip::headers::auth::Algorithm>,
    qop: bool,
    pub stale: bool,
}

impl Challenge {
    /// The challenge a 401/407 answer carries, if it is one the relay can answer.
    pub fn of(response: &rsip::Response) -> Option<Challenge> {
        for header in response.headers().iter() {
            match header {
                rsip::Header::WwwAuthenticate(h) => {
                    let h = h.typed().ok()?;
                    return Some(Challenge::from_parts(
                        false,
                        h.realm,
                        h.nonce,
                        h.opaque,
                        h.algorithm,
                        h.qop,
                        h.stale,
                    ));
                }
                rsip::Header::ProxyAuthenticate(h) => {
                    let h = h.typed().ok()?;
                    return Some(Challenge::from_parts(
                        true,
                        h.0.realm,
                        h.0.nonce,
                        h.0.opaque,
                        h.0.algorithm,
                        h.0.qop,
                        h.0.stale,
                    ));
                }
                _ => {}
            }
        }
        None
    }

    fn from_parts(
        proxy: bool,
        realm: String,
        nonce: String,
        opaque: Option<String>,
        algorithm: Option<rsip::headers::auth::Algorithm>,
        qop: Option<rsip::headers::auth::Qop>,
        stale: Option<String>,
    ) -> Challenge {
        Challenge {
            proxy,
            realm,
            nonce,
            opaque,
            algorithm,
            qop: qop.is_some(),
            stale: stale.is_some_and(|s| s.eq_ignore_ascii_case("true")),
        }
    }

    pub fn nonce(&self) -> &str {
        &self.nonce
    }

    /// The `Authorization` (or `Proxy-Authorization`) header line answering this challenge for
    /// `method` on `uri` (RFC 2617 digest, `qop=auth` when offered, a fresh cnonce each time).
    pub fn answer(
        &self,
        user: &str,
        password: &Secret,
        method: rsip::Method,
        uri: &rsip::Uri,
    ) -> String {
        use rsip::headers::auth::{Algorithm, AuthQop, Scheme};
        let qop = self.qop.then(|| AuthQop::Auth {
            cnonce: token(),
            nc: 1,
        });
        let response = rsip::services::DigestGenerator {
            username: user,
            password: password.expose(),
            nonce: &self.nonce,
            uri,
            realm: &self.realm,
            method: &method,
            qop: qop.as_ref(),
            algorithm: self.algorithm.unwrap_or(Algorithm::Md5),
        }
        .compute();
        let authorization = rsip::typed::Authorization {
            scheme: Scheme::Digest,
            username: user.to_string(),
            realm: self.realm.clone(),
            nonce: self.nonce.clone(),
            uri: uri.clone(),
            response,
            algorithm: self.algorithm,
            opaque: self.opaque.clone(),
            qop,
        };
        let name = if self.proxy {
            "Proxy-Authorization"
        } else {
            "Authorization"
        };
        format!("{name}: {authorization}")
    }
}

/// What a SUBSCRIBE needs besides its dialog's state.
#[derive(Debug, Clone)]
pub struct Subscribe<'a> {
    /// The request URI: the AoR, or the notifier's Contact within the dialog.
    pub target: &'a str,
    pub aor: &'a str,
    pub from: &'a str,
    pub from_tag: &'a str,
    pub to_tag: Option<&'a str>,
    pub call_id: &'a str,
    pub cseq: u32,
    pub expires: u32,
    pub branch: &'a str,
    pub authorization: Option<&'a str>,
}

/// `Via`'s transport token and the Contact's `transport` parameter.
fn names(transport: Transport) -> (&'static str, &'static str) {
    match transport {
        Transport::Udp => ("UDP", "udp"),
        Transport::Tcp => ("TCP", "tcp"),
        Transport::Tls => ("TLS", "tls"),
    }
}

fn host_port(addr: SocketAddr) -> String {
    match addr {
        SocketAddr::V4(a) => a.to_string(),
        SocketAddr::V6(a) => format!("[{}]:{}", a.ip(), a.port()),
    }
}

/// A SUBSCRIBE for the dialog event package (RFC 4235 section 3).
pub fn subscribe(wire: &Wire, s: &Subscribe<'_>) -> String {
    let (via, param) = names(wire.transport);
    let local = host_port(wire.local);
    let scheme = if wire.transport == Transport::Tls {
        "sips"
    } else {
        "sip"
    };
    let to_tag = s.to_tag.map(|t| format!(";tag={t}")).unwrap_or_default();
    let authorization = s
        .authorization
        .map(|a| format!("{a}\r\n"))
        .unwrap_or_default();
    format!(
        "SUBSCRIBE {target} SIP/2.0\r\n\
         Via: SIP/2.0/{via} {local};branch=z9hG4bK{branch};rport\r\n\
         Max-Forwards: 70\r\n\
         From: <{from}>;tag={from_tag}\r\n\
         To: <{aor}>{to_tag}\r\n\
         Call-ID: {call_id}\r\n\
         CSeq: {cseq} SUBSCRIBE\r\n\
         Contact: <{scheme}:cti-relay@{local};transport={param}>\r\n\
         Event: dialog\r\n\
         Accept: application/dialog-info+xml\r\n\
         Expires: {expires}\r\n\
         {authorization}\
         User-Agent: cti-relay\r\n\
         Content-Length: 0\r\n\r\n",
        target = s.target,
        branch = s.branch,
        from = s.from,
        from_tag = s.from_tag,
        aor = s.aor,
        call_id = s.call_id,
        cseq = s.cseq,
        expires = s.expires,
    )
}

/// The answer to a request the relay received (`200` to a NOTIFY, `481` to one of no
/// subscription): its Via, From, To, Call-ID and CSeq copied, as RFC 3261 section 8.2.6 asks.
pub fn answer(request: &rsip::Request, code: u16, reason: &str) -> String {
    let mut out = format!("SIP/2.0 {code} {reason}\r\n");
    for header in request.headers().iter() {
        let keep = matches!(
            header,
            rsip::Header::Via(_)
                | rsip::Header::From(_)
                | rsip::Header::To(_)
                | rsip::Header::CallId(_)
                | rsip::Header::CSeq(_)
        );
        if keep {
            out.push_str(&header.to_string());
            out.push_str("\r\n");
        }
    }
    out.push_str("Content-Length: 0\r\n\r\n");
    out
}

/// The Call-ID of a message.
pub fn call_id(message: &impl HeadersExt) -> Option<String> {
    message.call_id_header().ok().map(|c| c.value().to_string())
}

/// The CSeq number of a message.
pub fn cseq(message: &impl HeadersExt) -> Option<u32> {
    message
        .cseq_header()
        .ok()
        .and_then(|c| c.typed().ok())
        .map(|c| c.seq)
}

/// The tag of the To header (of a response: the notifier's side of the dialog).
pub fn to_tag(message: &impl HeadersExt) -> Option<String> {
    message
        .to_header()
        .ok()
        .and_then(|t| t.tag().ok().flatten())
        .map(|t| t.value().to_string())
}

/// The tag of the From header (of a NOTIFY: the notifier's side).
pub fn from_tag(message: &impl HeadersExt) -> Option<String> {
    message
        .from_header()
        .ok()
        .and_then(|t| t.tag().ok().flatten())
        .map(|t| t.value().to_string())
}

/// The URI of the first Contact (the notifier's target for requests within the dialog).
pub fn contact_uri(message: &impl HeadersExt) -> Option<String> {
    message
        .contact_header()
        .ok()
        .and_then(|c| c.typed().ok())
        .map(|c| c.uri.to_string())
}

/// A header's value by name, for the headers rsip keeps untyped or as `Other`.
pub fn header(message: &impl HasHeaders, name: &str) -> Option<String> {
    message.headers().iter().find_map(|h| {
        let line = h.to_string();
        let (n, v) = line.split_once(':')?;
        n.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().to_string())
    })
}

/// `Subscription-State: active;expires=600` / `terminated;reason=timeout`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionState {
    pub terminated: bool,
    pub expires: Option<u32>,
    pub reason: Option<String>,
}

impl SubscriptionState {
    pub fn parse(value: &str) -> SubscriptionState {
        let mut parts = value.split(';').map(str::trim);
        let state = parts.next().unwrap_or("").to_ascii_lowercase();
        let mut expires = None;
        let mut reason = None;
        for part in parts {
            if let Some((k, v)) = part.split_once('=') {
                match k.trim().to_ascii_lowercase().as_str() {
                    "expires" => expires = v.trim().parse().ok(),
                    "reason" => reason = Some(v.trim().to_ascii_lowercase()),
                    _ => {}
                }
            }
        }
        SubscriptionState {
            terminated: state == "terminated",
            expires,
            reason,
        }
    }
}

/// How long an unanswered request over UDP waits before it is sent again: RFC 3261's T1
/// doubled per attempt, at most T2.
pub fn retransmit_after(attempt: u32) -> Duration {
    let ms = 500u64.saturating_mul(1 << attempt.min(3));
    Duration::from_millis(ms.min(4_000))
}

/// How long a request may wait for its final answer (RFC 3261's 64*T1).
pub const TRANSACTION_TIMEOUT: Duration = Duration::from_secs(32);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_messages_are_framed_by_content_length() {
        let mut buffer = b"\r\n\r\nNOTIFY sip:a@b SIP/2.0\r\nCall-ID: x\r\nContent-Length: 4\r\n\r\nabcdSIP/2.0 200 OK\r\nContent-Length: 0\r\n\r\nSIP/2.0".to_vec();
        let first = frame(&mut buffer).expect("ok").expect("one");
        assert!(first.ends_with(b"\r\n\r\nabcd"));
        let second = frame(&mut buffer).expect("ok").expect("two");
        assert!(second.starts_with(b"SIP/2.0 200 OK"));
        assert_eq!(frame(&mut buffer).expect("ok"), None);
        assert_eq!(buffer, b"SIP/2.0");
    }

    #[test]
    fn subscription_states_are_read() {
        assert_eq!(
            SubscriptionState::parse("active;expires=108"),
            SubscriptionState {
                terminated: false,
                expires: Some(108),
                reason: None
            }
        );
        let s = SubscriptionState::parse("terminated;reason=timeout");
        assert!(s.terminated);
        assert_eq!(s.reason.as_deref(), Some("timeout"));
    }

    #[test]
    fn a_notify_is_answered_with_its_own_headers() {
        let notify = rsip::Request::try_from(
            "NOTIFY sip:cti-relay@127.0.0.1:40000 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKabc\r\nFrom: <sip:1001@127.0.0.1>;tag=n1\r\nTo: <sip:cti-relay@127.0.0.1>;tag=s1\r\nCall-ID: c1\r\nCSeq: 2 NOTIFY\r\nEvent: dialog\r\nSubscription-State: active;expires=600\r\nContent-Length: 0\r\n\r\n",
        )
        .expect("parses");
        let ok = answer(&notify, 200, "OK");
        assert!(ok.starts_with("SIP/2.0 200 OK\r\n"));
        assert!(ok.contains("Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKabc\r\n"));
        assert!(ok.contains("CSeq: 2 NOTIFY\r\n"));
        assert_eq!(call_id(&notify).as_deref(), Some("c1"));
        assert_eq!(from_tag(&notify).as_deref(), Some("n1"));
        assert_eq!(
            header(&notify, "subscription-state").as_deref(),
            Some("active;expires=600")
        );
    }

    #[test]
    fn a_challenge_is_answered_with_a_digest() {
        let response = rsip::Response::try_from(
            "SIP/2.0 401 Unauthorized\r\nVia: SIP/2.0/UDP 127.0.0.1:40000;branch=z9hG4bKx\r\nFrom: <sip:cti-relay@127.0.0.1>;tag=a\r\nTo: <sip:1001@127.0.0.1>;tag=b\r\nCall-ID: c1\r\nCSeq: 1 SUBSCRIBE\r\nWWW-Authenticate: Digest realm=\"127.0.0.1\", nonce=\"abc123\", qop=\"auth\"\r\nContent-Length: 0\r\n\r\n",
        )
        .expect("parses");
        let challenge = Challenge::of(&response).expect("a challenge");
        let uri = rsip::Uri::try_from("sip:1001@127.0.0.1").expect("uri");
        let line = challenge.answer(
            "cti-relay",
            &Secret::new("pw"),
            rsip::Method::Subscribe,
            &uri,
        );
        assert!(line.starts_with("Authorization: Digest username=\"cti-relay\", realm=\"127.0.0.1\", nonce=\"abc123\", uri=\"sip:1001@127.0.0.1\", response=\""), "{line}");
        assert!(
            line.contains("qop=\"auth\", nc=00000001, cnonce=\""),
            "{line}"
        );
    }
}
