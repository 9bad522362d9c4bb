//! What an anonymous client can hold of a relay, over real sockets: an oversized frame before
//! `hello`, a request whose headers never finish, connections waiting to sign in, and open
//! connections in all (security review F3).

use std::time::Duration;

use anyhow::{Context, Result};
use cti_tests::{Stack, WsClient, eventually};
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

/// How long a test waits for the relay to act before it fails (never how long anything takes).
const BOUND: Duration = Duration::from_secs(30);

/// A TCP connection that has completed the WebSocket handshake, for writing frames by hand.
async fn raw_websocket(stack: &Stack) -> Result<TcpStream> {
    let mut stream = TcpStream::connect(stack.relay.addr).await?;
    let request = format!(
        "GET /v1/agent/ws HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        stack.relay.addr
    );
    stream.write_all(request.as_bytes()).await?;
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        stream.read_exact(&mut byte).await?;
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head);
    anyhow::ensure!(head.starts_with("HTTP/1.1 101"), "no upgrade: {head}");
    Ok(stream)
}

#[tokio::test]
async fn a_frame_announcing_a_mebibyte_before_hello_is_refused_from_its_header() -> Result<()> {
    // A long hello window: a close within it can only be the frame limit's.
    let stack = Stack::start_with(|config| config.hello_timeout = Duration::from_secs(300)).await?;
    let mut stream = raw_websocket(&stack).await?;
    // FIN + text, masked, 64-bit length of 1 MiB, a mask key; the payload never follows.
    let mut header = vec![0x81, 0x80 | 127];
    header.extend_from_slice(&(1u64 << 20).to_be_bytes());
    header.extend_from_slice(&[1, 2, 3, 4]);
    stream.write_all(&header).await?;

    let mut answer = Vec::new();
    tokio::time::timeout(BOUND, stream.read_to_end(&mut answer))
        .await
        .context("the relay waited for the payload")??;
    assert!(answer.len() >= 4, "a close frame: {answer:?}");
    assert_eq!(answer[0], 0x88, "a close frame: {answer:?}");
    let code = u16::from_be_bytes([answer[2], answer[3]]);
    assert_eq!(code, 1009, "message too big");
    Ok(())
}

#[tokio::test]
async fn a_request_whose_headers_never_finish_is_cut_off() -> Result<()> {
    let stack = Stack::start_with(|config| {
        config.limits.header_read_timeout = Duration::from_secs(1);
    })
    .await?;
    let mut stream = TcpStream::connect(stack.relay.addr).await?;
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: rel")
        .await?;
    let mut answer = Vec::new();
    let read = tokio::time::timeout(BOUND, stream.read_to_end(&mut answer))
        .await
        .context("the relay kept the half request open")?;
    // Closed (possibly after a 408): either way the socket is free again.
    match read {
        Ok(_) => assert!(
            answer.is_empty() || String::from_utf8_lossy(&answer).starts_with("HTTP/1.1 408"),
            "{}",
            String::from_utf8_lossy(&answer)
        ),
        Err(err) => assert_eq!(err.kind(), std::io::ErrorKind::ConnectionReset, "{err}"),
    }
    Ok(())
}

#[tokio::test]
async fn connections_waiting_to_sign_in_are_capped_per_client() -> Result<()> {
    let stack = Stack::start_with(|config| {
        config.limits.pending_hellos_per_client = 2;
        config.hello_timeout = Duration::from_secs(300);
    })
    .await?;
    let url = stack.ws_url();
    let (first, _) = tokio_tungstenite::connect_async(&url).await?;
    let (_second, _) = tokio_tungstenite::connect_async(&url).await?;
    let refused = tokio_tungstenite::connect_async(&url)
        .await
        .expect_err("a third anonymous connection from this client");
    let tokio_tungstenite::tungstenite::Error::Http(response) = refused else {
        panic!("an HTTP refusal: {refused}");
    };
    assert_eq!(response.status(), 503);
    assert_eq!(
        response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()),
        Some("1")
    );

    // Another client behind the same (trusted, loopback) proxy has its own share.
    let mut request = url.as_str().into_client_request()?;
    request
        .headers_mut()
        .insert("x-forwarded-for", "203.0.113.7".parse()?);
    tokio_tungstenite::connect_async(request).await?;

    // Signing in gives the place back.
    let mut first = first;
    first
        .send(tokio_tungstenite::tungstenite::Message::text(
            serde_json::json!({"type": "hello", "token": stack.token("alice@example.com"), "last_seq": null})
                .to_string(),
        ))
        .await?;
    let welcome = first.next().await.context("welcome")??;
    assert!(welcome.to_text()?.contains("welcome"), "{welcome:?}");
    eventually("a place for one more anonymous connection", || async {
        tokio_tungstenite::connect_async(&url)
            .await
            .ok()
            .map(|_| ())
    })
    .await?;
    let metrics = stack.metrics().await?;
    assert!(
        metrics.contains("cti_refused_total{reason=\"pending_hellos_per_client\"} "),
        "{metrics}"
    );
    // A signed-in rep is not held to the anonymous limits.
    WsClient::signed_in(&stack, "bob@example.com", None).await?;
    Ok(())
}

#[tokio::test]
async fn open_connections_are_capped_and_the_rest_closed_on_accept() -> Result<()> {
    const CAP: usize = 4;
    let stack = Stack::start_with(|config| config.limits.max_connections = CAP).await?;
    let served = |mut stream: TcpStream| async move {
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: relay\r\n\r\n")
            .await
            .ok()?;
        let mut buf = [0u8; 12];
        tokio::time::timeout(BOUND, stream.read_exact(&mut buf))
            .await
            .ok()?
            .ok()?;
        buf.starts_with(b"HTTP/1.1 200").then_some(stream)
    };
    // Keep-alive connections, each served once and held open. The harness's own client may hold
    // a place too, so the refusal comes at the cap or before it, never after.
    let mut held = Vec::new();
    let mut refused = false;
    for _ in 0..=CAP {
        let stream = TcpStream::connect(stack.relay.addr).await?;
        match served(stream).await {
            Some(stream) => held.push(stream),
            None => {
                refused = true;
                break;
            }
        }
    }
    assert!(refused, "{} connections were all served", held.len());
    assert!(!held.is_empty() && held.len() <= CAP, "{} held", held.len());

    drop(held);
    eventually("a place once the held connections closed", || async {
        let stream = TcpStream::connect(stack.relay.addr).await.ok()?;
        served(stream).await.map(|_| ())
    })
    .await?;
    let metrics = eventually("the metrics", || async { stack.metrics().await.ok() }).await?;
    assert!(
        metrics.contains("cti_refused_total{reason=\"max_connections\"} "),
        "{metrics}"
    );
    Ok(())
}
