//! A small XMPP client, enough for Finesse's notification service (reference 4.2): one stream to
//! the server, STARTTLS where the server offers it (required unless the tenant allows plain on
//! loopback), SASL PLAIN, a bound resource of our own (never `desktop`, which the Finesse desktop
//! uses), presence with priority 0, pubsub subscriptions, and answers to the server's XEP-0199
//! pings (Finesse pings every 10 s and logs out an agent who does not answer).
//!
//! Written here rather than taken from an XMPP crate: the relay needs six stanzas of XMPP, and
//! the whole of it sits on quick-xml (see [`super::xml`]), which the adapter needs anyway for
//! Finesse's REST payloads.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use super::xml::{self, Element, Piece};
use crate::secret::Secret;

/// The longest a stanza may grow before the stream is dropped as broken.
const MAX_STANZA: usize = 1 << 20;
/// How long each step of the login may take.
const STEP: Duration = Duration::from_secs(15);

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// Where and as whom to log in.
#[derive(Debug, Clone)]
pub struct Account {
    pub host: String,
    pub port: u16,
    /// The XMPP domain (Finesse's `xmppDomain`).
    pub domain: String,
    /// The local part of the JID: the Finesse user id.
    pub user: String,
    /// The password, or a Finesse in SSO mode's access token in its place.
    pub password: Secret,
    pub resource: String,
    /// Whether STARTTLS is required (false: plain, for a server on loopback only).
    pub tls: bool,
    /// PEM certificates trusted besides the web's roots: the CA (or the self-signed
    /// certificate) of an on-premises Finesse.
    pub ca_pem: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum XmppError {
    #[error("XMPP connection: {0}")]
    Io(#[from] std::io::Error),
    #[error("the XMPP server sent malformed XML: {0}")]
    Xml(#[from] xml::XmlError),
    #[error("the XMPP server closed the stream")]
    Closed,
    #[error("the XMPP server did not answer in time ({0})")]
    Timeout(&'static str),
    #[error("the XMPP server refused the login of {user}: {condition}")]
    AuthFailed { user: String, condition: String },
    /// The server answered an iq with an error (its condition).
    #[error("the XMPP server refused: {0}")]
    Refused(String),
    #[error("XMPP: {0}")]
    Protocol(String),
}

/// A logged-in XMPP stream.
pub struct Session {
    io: Box<dyn Io>,
    buffer: Vec<u8>,
    /// Stanzas that came while a request waited for its answer.
    queued: VecDeque<Element>,
    pub jid: String,
    next_id: u64,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session").field("jid", &self.jid).finish()
    }
}

impl Session {
    /// Connects, secures, authenticates, binds, and sends presence with priority 0.
    pub async fn connect(account: &Account) -> Result<Session, XmppError> {
        let tcp = tokio::time::timeout(
            STEP,
            TcpStream::connect((account.host.as_str(), account.port)),
        )
        .await
        .map_err(|_| XmppError::Timeout("connect"))??;
        tcp.set_nodelay(true)?;
        let mut session = Session {
            io: Box::new(tcp),
            buffer: Vec::new(),
            queued: VecDeque::new(),
            jid: String::new(),
            next_id: 0,
        };
        let mut features = session.open(&account.domain).await?;
        if features.child("starttls").is_some() && account.tls {
            session
                .send("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
                .await?;
            let answer = session.read_timed("starttls").await?;
            if answer.name != "proceed" {
                return Err(XmppError::Protocol("the server refused STARTTLS".into()));
            }
            session.io = tls(session.io, account).await?;
            session.buffer.clear();
            features = session.open(&account.domain).await?;
        } else if account.tls {
            return Err(XmppError::Protocol(
                "the server offers no STARTTLS and the settings require TLS".into(),
            ));
        }
        let plain = features.child("mechanisms").is_some_and(|m| {
            m.children_named("mechanism")
                .any(|c| c.text.trim() == "PLAIN")
        });
        if !plain {
            return Err(XmppError::Protocol(
                "the server does not offer SASL PLAIN".into(),
            ));
        }
        let token = base64::engine::general_purpose::STANDARD.encode(format!(
            "\0{}\0{}",
            account.user,
            account.password.expose()
        ));
        session
            .send(&format!(
                "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>{token}</auth>"
            ))
            .await?;
        let answer = session.read_timed("authentication").await?;
        if answer.name != "success" {
            let condition = answer
                .children
                .first()
                .map_or_else(|| answer.name.clone(), |c| c.name.clone());
            return Err(XmppError::AuthFailed {
                user: account.user.clone(),
                condition,
            });
        }
        let features = session.open(&account.domain).await?;
        let bind = format!(
            "<bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>{}</resource></bind>",
            xml::escape(&account.resource)
        );
        let bound = session.request("set", None, &bind).await?;
        session.jid = bound
            .path(&["bind", "jid"])
            .map(|j| j.text.trim().to_string())
            .filter(|j| !j.is_empty())
            .ok_or_else(|| XmppError::Protocol("the bind result has no JID".into()))?;
        if features
            .child("session")
            .is_some_and(|s| s.child("optional").is_none())
        {
            session
                .request(
                    "set",
                    None,
                    "<session xmlns='urn:ietf:params:xml:ns:xmpp-session'/>",
                )
                .await?;
        }
        session
            .send("<presence><priority>0</priority></presence>")
            .await?;
        Ok(session)
    }

    /// The JID without its resource.
    pub fn bare_jid(&self) -> &str {
        self.jid.split('/').next().unwrap_or(&self.jid)
    }

    /// Subscribes our bare JID to a pubsub node (XEP-0060 6.1).
    pub async fn subscribe(&mut self, service: &str, node: &str) -> Result<(), XmppError> {
        let body = format!(
            "<pubsub xmlns='http://jabber.org/protocol/pubsub'><subscribe node='{}' jid='{}'/></pubsub>",
            xml::escape(node),
            xml::escape(self.bare_jid())
        );
        self.request("set", Some(service), &body).await.map(drop)
    }

    /// Sends an iq and waits for its result; other stanzas that come meanwhile are kept for
    /// [`Session::next`] (pings answered at once).
    pub async fn request(
        &mut self,
        kind: &str,
        to: Option<&str>,
        body: &str,
    ) -> Result<Element, XmppError> {
        self.next_id += 1;
        let id = format!("cti{}", self.next_id);
        let to = to
            .map(|to| format!(" to='{}'", xml::escape(to)))
            .unwrap_or_default();
        self.send(&format!("<iq type='{kind}' id='{id}'{to}>{body}</iq>"))
            .await?;
        let deadline = tokio::time::Instant::now() + STEP;
        loop {
            let stanza = tokio::time::timeout_at(deadline, self.read())
                .await
                .map_err(|_| XmppError::Timeout("an iq answer"))??;
            if stanza.name == "iq" && stanza.attr("id") == Some(id.as_str()) {
                if stanza.attr("type") == Some("error") {
                    let condition = stanza
                        .child("error")
                        .and_then(|e| e.children.first())
                        .map_or_else(|| "error".to_string(), |c| c.name.clone());
                    return Err(XmppError::Refused(condition));
                }
                return Ok(stanza);
            }
            if !self.answer_ping(&stanza).await? {
                self.queued.push_back(stanza);
            }
        }
    }

    /// The next stanza that is not a ping (pings are answered here). Cancel-safe.
    pub async fn next(&mut self) -> Result<Element, XmppError> {
        if let Some(stanza) = self.queued.pop_front() {
            return Ok(stanza);
        }
        loop {
            let stanza = self.read().await?;
            if !self.answer_ping(&stanza).await? {
                return Ok(stanza);
            }
        }
    }

    /// Answers a XEP-0199 ping (and any other get we do not serve, with an error, as RFC 6120
    /// requires). True when the stanza was such a request.
    async fn answer_ping(&mut self, stanza: &Element) -> Result<bool, XmppError> {
        if stanza.name != "iq" || !matches!(stanza.attr("type"), Some("get" | "set")) {
            return Ok(false);
        }
        let id = xml::escape(stanza.attr("id").unwrap_or(""));
        let to = stanza
            .attr("from")
            .map(|f| format!(" to='{}'", xml::escape(f)))
            .unwrap_or_default();
        if stanza.child("ping").is_some() {
            self.send(&format!("<iq type='result' id='{id}'{to}/>"))
                .await?;
        } else {
            self.send(&format!(
                "<iq type='error' id='{id}'{to}><error type='cancel'><service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>"
            ))
            .await?;
        }
        Ok(true)
    }

    /// Sends raw XML.
    pub async fn send(&mut self, raw: &str) -> Result<(), XmppError> {
        self.io.write_all(raw.as_bytes()).await?;
        self.io.flush().await?;
        Ok(())
    }

    /// Ends the stream politely.
    pub async fn close(mut self) {
        let _ = self.send("</stream:stream>").await;
    }

    /// Opens (or restarts) the stream; the server's features.
    async fn open(&mut self, domain: &str) -> Result<Element, XmppError> {
        self.send(&format!(
            "<?xml version='1.0'?><stream:stream to='{}' version='1.0' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>",
            xml::escape(domain)
        ))
        .await?;
        let features = self.read_timed("stream features").await?;
        if features.name != "features" {
            return Err(XmppError::Protocol(format!(
                "expected stream features, got <{}>",
                features.name
            )));
        }
        Ok(features)
    }

    async fn read_timed(&mut self, what: &'static str) -> Result<Element, XmppError> {
        tokio::time::timeout(STEP, self.read())
            .await
            .map_err(|_| XmppError::Timeout(what))?
    }

    /// The next top-level stanza. Cancel-safe: bytes read are kept in the buffer.
    async fn read(&mut self) -> Result<Element, XmppError> {
        loop {
            while let Some((piece, used)) = xml::split(&self.buffer) {
                self.buffer.drain(..used);
                match piece {
                    Piece::StreamOpen => {}
                    Piece::StreamClose => return Err(XmppError::Closed),
                    Piece::Stanza(text) if text.is_empty() => {}
                    Piece::Stanza(text) => {
                        let stanza = xml::parse(&text)?;
                        if stanza.name == "error" {
                            let condition = stanza
                                .children
                                .first()
                                .map_or_else(|| "error".to_string(), |c| c.name.clone());
                            return Err(XmppError::Protocol(format!("stream error: {condition}")));
                        }
                        return Ok(stanza);
                    }
                }
            }
            if self.buffer.len() > MAX_STANZA {
                return Err(XmppError::Protocol("a stanza too large".into()));
            }
            let mut chunk = [0u8; 8192];
            let read = self.io.read(&mut chunk).await?;
            if read == 0 {
                return Err(XmppError::Closed);
            }
            self.buffer.extend_from_slice(&chunk[..read]);
        }
    }
}

/// Wraps the stream in TLS after `<proceed/>`, checking the server's certificate against the
/// web's roots.
async fn tls(io: Box<dyn Io>, account: &Account) -> Result<Box<dyn Io>, XmppError> {
    use rustls::pki_types::pem::PemObject;
    let host = &account.host;
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(pem) = &account.ca_pem {
        for cert in rustls::pki_types::CertificateDer::pem_slice_iter(pem.as_bytes()) {
            let cert = cert.map_err(|e| XmppError::Protocol(format!("TLS: the CA PEM: {e}")))?;
            roots
                .add(cert)
                .map_err(|e| XmppError::Protocol(format!("TLS: the CA PEM: {e}")))?;
        }
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| XmppError::Protocol(format!("TLS: {e}")))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from(host.to_string())
        .map_err(|e| XmppError::Protocol(format!("TLS: {host:?}: {e}")))?;
    let stream = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, io)
        .await?;
    Ok(Box::new(stream))
}
