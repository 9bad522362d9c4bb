//! An AMI connection: TCP (or TLS, AMI's `tlsenable`), the banner, `Login`, and actions matched
//! to their responses by `ActionID`. The framing is [`super::ami`]'s.

use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_util::codec::Framed;

use super::ami::{AmiCodec, CodecError, Frame, Message};
use crate::secret::Secret;

/// How long connecting, the banner and each answer may take.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// Where and how to reach the manager interface.
#[derive(Debug, Clone)]
pub struct Account {
    pub host: String,
    pub port: u16,
    pub tls: bool,
    /// PEM certificates trusted for the server's TLS certificate besides the web's roots.
    pub ca_pem: Option<String>,
    pub username: String,
    pub secret: Secret,
}

/// Why talking to the manager interface failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum AmiError {
    #[error("Asterisk is unreachable: {0}")]
    Unreachable(String),
    /// The login was answered `Response: Error` (its `Message`, e.g. `Authentication failed`).
    #[error("Asterisk refused the login of {user:?}: {message}")]
    LoginRefused { user: String, message: String },
    #[error("AMI: {0}")]
    Protocol(String),
    #[error("the AMI connection closed")]
    Closed,
}

trait Io: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Io for T {}

/// A framed AMI connection.
pub struct Connection {
    framed: Framed<Box<dyn Io>, AmiCodec>,
    /// The server's greeting (`Asterisk Call Manager/9.0.0`).
    pub banner: String,
    next_id: u64,
    prefix: String,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("banner", &self.banner)
            .finish()
    }
}

impl From<CodecError> for AmiError {
    fn from(e: CodecError) -> Self {
        match e {
            CodecError::Io(e) => AmiError::Unreachable(e.to_string()),
            other => AmiError::Protocol(other.to_string()),
        }
    }
}

impl Connection {
    /// Connects, reads the banner and logs in; `events` is the Login's `Events` (`off`, or the
    /// classes wanted, `call`).
    pub async fn open(account: &Account, events: &str) -> Result<Connection, AmiError> {
        let addr = format!("{}:{}", account.host.trim_matches(['[', ']']), account.port);
        let tcp = tokio::time::timeout(TIMEOUT, TcpStream::connect(&addr))
            .await
            .map_err(|_| AmiError::Unreachable(format!("connecting to {addr} timed out")))?
            .map_err(|e| AmiError::Unreachable(format!("{addr}: {e}")))?;
        let _ = tcp.set_nodelay(true);
        let io: Box<dyn Io> = if account.tls {
            tls(tcp, account).await?
        } else {
            Box::new(tcp)
        };
        let mut framed = Framed::new(io, AmiCodec::default());
        let banner = match tokio::time::timeout(TIMEOUT, framed.next()).await {
            Err(_) => return Err(AmiError::Protocol("no banner in time".into())),
            Ok(None) => return Err(AmiError::Closed),
            Ok(Some(Err(e))) => return Err(AmiError::Unreachable(e.to_string())),
            Ok(Some(Ok(Frame::Banner(banner)))) => banner,
            Ok(Some(Ok(other))) => {
                return Err(AmiError::Protocol(format!(
                    "expected a banner, got {other:?}"
                )));
            }
        };
        if !banner.starts_with("Asterisk Call Manager/") {
            let shown: String = banner.chars().take(60).collect();
            return Err(AmiError::Protocol(format!(
                "not an Asterisk manager interface (banner {shown:?})"
            )));
        }
        let mut connection = Connection {
            framed,
            banner,
            next_id: 0,
            prefix: format!("cti-{:08x}", rand::random::<u32>()),
        };
        let login = Message::action(
            "Login",
            &[
                ("Username", &account.username),
                ("Secret", account.secret.expose()),
                ("Events", events),
            ],
        );
        let answer = connection.request(login).await?;
        if answer.response() != Some("Success") {
            return Err(AmiError::LoginRefused {
                user: account.username.clone(),
                message: answer.text("Message").to_string(),
            });
        }
        Ok(connection)
    }

    /// A fresh `ActionID`, unique on this connection and unlike another client's.
    pub fn action_id(&mut self) -> String {
        self.next_id += 1;
        format!("{}-{}", self.prefix, self.next_id)
    }

    /// Writes one message.
    pub async fn send(&mut self, message: &Message) -> Result<(), AmiError> {
        self.framed.send(message).await.map_err(AmiError::from)
    }

    /// The next frame; None once the server closed.
    pub async fn next(&mut self) -> Option<Result<Frame, AmiError>> {
        self.framed
            .next()
            .await
            .map(|r| r.map_err(|e| AmiError::Unreachable(e.to_string())))
    }

    /// Sends an action and waits for its response, passing over events and other frames (for
    /// a connection that serves one request at a time).
    pub async fn request(&mut self, mut action: Message) -> Result<Message, AmiError> {
        let id = self.action_id();
        action.set("ActionID", &id);
        self.send(&action).await?;
        let wait = async {
            loop {
                match self.next().await {
                    None => return Err(AmiError::Closed),
                    Some(Err(e)) => return Err(e),
                    Some(Ok(Frame::Message(m)))
                        if m.response().is_some() && m.get("ActionID") == Some(id.as_str()) =>
                    {
                        return Ok(m);
                    }
                    Some(Ok(_)) => continue,
                }
            }
        };
        tokio::time::timeout(TIMEOUT, wait)
            .await
            .map_err(|_| AmiError::Protocol("no response in time".into()))?
    }

    /// Says goodbye (`Logoff`); errors do not matter any more.
    pub async fn close(mut self) {
        let _ = self.request(Message::action("Logoff", &[])).await;
    }
}

/// TLS over the TCP connection, the server's certificate checked against the web's roots and
/// the tenant's CA.
async fn tls(tcp: TcpStream, account: &Account) -> Result<Box<dyn Io>, AmiError> {
    use rustls::pki_types::pem::PemObject;
    let bad = |what: String| AmiError::Protocol(format!("TLS: {what}"));
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(pem) = &account.ca_pem {
        for cert in rustls::pki_types::CertificateDer::pem_slice_iter(pem.as_bytes()) {
            let cert = cert.map_err(|e| bad(format!("the CA PEM: {e}")))?;
            roots
                .add(cert)
                .map_err(|e| bad(format!("the CA PEM: {e}")))?;
        }
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| bad(e.to_string()))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    let host = account.host.trim_matches(['[', ']']).to_string();
    let name = rustls::pki_types::ServerName::try_from(host.clone())
        .map_err(|e| bad(format!("{host:?}: {e}")))?;
    let stream = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .map_err(|e| AmiError::Unreachable(format!("TLS: {e}")))?;
    Ok(Box::new(stream))
}
