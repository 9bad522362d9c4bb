//! The simulated Finesse's side of its notification service: an XMPP client that publishes each
//! `<Update>` into the user's Dialogs node, XML-escaped inside `<notification>`, as Finesse's
//! Openfire carries it (reference 4.2). Plain SASL over loopback: it only ever talks to the
//! tests' (or the demo's) Prosody.

use std::time::Duration;

use base64::Engine;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

use super::xml::{self, Element, Piece};

/// One notification to publish.
#[derive(Debug)]
pub(crate) struct Publish {
    pub(crate) node: String,
    pub(crate) update: String,
}

/// Where the notification service is and who publishes.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub(crate) addr: String,
    pub(crate) domain: String,
    pub(crate) user: String,
    pub(crate) password: String,
}

struct Client {
    tcp: TcpStream,
    buffer: Vec<u8>,
    next_id: u64,
}

impl Client {
    async fn connect(target: &Target) -> anyhow::Result<Client> {
        let tcp = TcpStream::connect(&target.addr).await?;
        let mut client = Client {
            tcp,
            buffer: Vec::new(),
            next_id: 0,
        };
        client.open(&target.domain).await?;
        let token = base64::engine::general_purpose::STANDARD
            .encode(format!("\0{}\0{}", target.user, target.password));
        client
            .send(&format!(
                "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>{token}</auth>"
            ))
            .await?;
        let answer = client.read().await?;
        anyhow::ensure!(answer.name == "success", "login refused: <{}>", answer.name);
        client.open(&target.domain).await?;
        client
            .iq(
                None,
                "<bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>finesse-notification</resource></bind>",
            )
            .await?;
        client
            .send("<presence><priority>0</priority></presence>")
            .await?;
        Ok(client)
    }

    async fn open(&mut self, domain: &str) -> anyhow::Result<()> {
        self.send(&format!(
            "<?xml version='1.0'?><stream:stream to='{}' version='1.0' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>",
            xml::escape(domain)
        ))
        .await?;
        let features = self.read().await?;
        anyhow::ensure!(features.name == "features", "no stream features");
        Ok(())
    }

    async fn iq(&mut self, to: Option<&str>, body: &str) -> anyhow::Result<Element> {
        self.next_id += 1;
        let id = format!("sim{}", self.next_id);
        let to = to
            .map(|to| format!(" to='{}'", xml::escape(to)))
            .unwrap_or_default();
        self.send(&format!("<iq type='set' id='{id}'{to}>{body}</iq>"))
            .await?;
        loop {
            let stanza = self.read().await?;
            if stanza.name == "iq" && stanza.attr("id") == Some(id.as_str()) {
                anyhow::ensure!(
                    stanza.attr("type") == Some("result"),
                    "the server refused: {:?}",
                    stanza
                        .child("error")
                        .and_then(|e| e.children.first())
                        .map(|c| c.name.clone())
                );
                return Ok(stanza);
            }
            if stanza.name == "iq" && stanza.attr("type") == Some("get") {
                let id = xml::escape(stanza.attr("id").unwrap_or(""));
                self.send(&format!("<iq type='result' id='{id}'/>")).await?;
            }
        }
    }

    async fn send(&mut self, raw: &str) -> anyhow::Result<()> {
        self.tcp.write_all(raw.as_bytes()).await?;
        Ok(())
    }

    async fn read(&mut self) -> anyhow::Result<Element> {
        loop {
            while let Some((piece, used)) = xml::split(&self.buffer) {
                self.buffer.drain(..used);
                match piece {
                    Piece::StreamOpen => {}
                    Piece::StreamClose => anyhow::bail!("the stream closed"),
                    Piece::Stanza(text) if text.is_empty() => {}
                    Piece::Stanza(text) => return Ok(xml::parse_stanza(&text)?),
                }
            }
            let mut chunk = [0u8; 8192];
            let read =
                tokio::time::timeout(Duration::from_secs(10), self.tcp.read(&mut chunk)).await??;
            anyhow::ensure!(read > 0, "the connection closed");
            self.buffer.extend_from_slice(&chunk[..read]);
        }
    }
}

/// Publishes what comes, in order, reconnecting when the service was away. A notification that
/// cannot be published is dropped, as Finesse's would be for a subscriber who is not there.
pub(crate) async fn publisher(target: Target, mut outbox: mpsc::UnboundedReceiver<Publish>) {
    let service = format!("pubsub.{}", target.domain);
    let mut client: Option<Client> = None;
    while let Some(publish) = outbox.recv().await {
        let body = format!(
            "<pubsub xmlns='http://jabber.org/protocol/pubsub'><publish node='{}'><item><notification xmlns='http://jabber.org/protocol/pubsub'>{}</notification></item></publish></pubsub>",
            xml::escape(&publish.node),
            xml::escape(&publish.update)
        );
        for attempt in 0..2 {
            if client.is_none() {
                match Client::connect(&target).await {
                    Ok(c) => client = Some(c),
                    Err(e) => {
                        tracing::warn!("simulated Finesse: the notification service is away: {e}");
                        break;
                    }
                }
            }
            let Some(c) = client.as_mut() else { break };
            match c.iq(Some(&service), &body).await {
                Ok(_) => break,
                Err(e) => {
                    tracing::warn!(attempt, "simulated Finesse: publishing failed: {e}");
                    client = None;
                }
            }
        }
    }
}
