//! The simulated Asterisk's manager interface: one task per TCP connection.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::broadcast::error::RecvError;

use super::{Asterisk, BANNER, render};

/// Serves AMI on `listener` until the process ends.
pub(crate) async fn serve(listener: TcpListener, asterisk: Arc<Asterisk>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        if asterisk.refusing.load(Ordering::SeqCst) {
            // Down: the connection goes at once.
            drop(stream);
            continue;
        }
        tokio::spawn(session(stream, asterisk.clone()));
    }
}

/// Stops the connection's reader with the connection.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Reads one message: its lines, keys lower-cased (AMI keys are case-insensitive). None at the
/// end of the stream; an empty map for a block without any `Key: Value` line.
async fn read_message(
    reader: &mut BufReader<tokio::net::tcp::OwnedReadHalf>,
) -> Option<BTreeMap<String, String>> {
    let mut message = BTreeMap::new();
    let mut line = String::new();
    let mut lines = 0;
    loop {
        line.clear();
        match reader.read_line(&mut line).await {
            Ok(0) | Err(_) => return None,
            Ok(_) => {}
        }
        let text = line.trim_end_matches(['\r', '\n']);
        if text.is_empty() {
            if lines == 0 {
                continue;
            }
            return Some(message);
        }
        lines += 1;
        if let Some((k, v)) = text.split_once(':') {
            message
                .entry(k.trim().to_ascii_lowercase())
                .or_insert_with(|| v.trim().to_string());
        }
    }
}

fn response(status: &str, id: Option<&String>, fields: &[(&str, &str)]) -> String {
    let mut lines = vec![("Response".to_string(), status.to_string())];
    if let Some(id) = id {
        lines.push(("ActionID".into(), id.clone()));
    }
    lines.extend(
        fields
            .iter()
            .map(|(k, v)| ((*k).to_string(), (*v).to_string())),
    );
    render(&lines)
}

fn wants_events(mask: &str) -> bool {
    let mask = mask.trim().to_ascii_lowercase();
    mask.is_empty() || mask == "on" || mask.split(',').any(|c| matches!(c.trim(), "call" | "all"))
}

async fn session(stream: TcpStream, asterisk: Arc<Asterisk>) {
    let _ = stream.set_nodelay(true);
    let (read, mut write) = stream.into_split();
    // Reading a message is not cancel-safe: a task of its own reads them whole.
    let (messages, mut inbox) = tokio::sync::mpsc::channel(16);
    let reader = tokio::spawn(async move {
        let mut reader = BufReader::new(read);
        while let Some(message) = read_message(&mut reader).await {
            if messages.send(message).await.is_err() {
                return;
            }
        }
    });
    let _reader = AbortOnDrop(reader);
    let mut events = asterisk.events.subscribe();
    let mut drops = asterisk.drops.subscribe();
    let mut authenticated = false;
    let mut listening = false;
    if write
        .write_all(format!("{BANNER}\r\n").as_bytes())
        .await
        .is_err()
    {
        return;
    }
    loop {
        let out: String = tokio::select! {
            _ = drops.changed() => return,
            event = events.recv() => match event {
                Ok(block) if listening => block,
                Ok(_) => continue,
                Err(RecvError::Lagged(n)) => {
                    tracing::warn!(missed = n, "simulated AMI: a slow connection missed events");
                    continue;
                }
                Err(RecvError::Closed) => return,
            },
            message = inbox.recv() => {
                let Some(message) = message else { return };
                let id = message.get("actionid");
                let action = message.get("action").map(|a| a.to_ascii_lowercase());
                let Some(action) = action else {
                    let text = response("Error", id, &[("Message", "Missing action in request")]);
                    if write.write_all(text.as_bytes()).await.is_err() { return; }
                    continue;
                };
                if !authenticated && !matches!(action.as_str(), "login" | "logoff" | "challenge") {
                    let text = response("Error", id, &[("Message", "Permission denied")]);
                    if write.write_all(text.as_bytes()).await.is_err() { return; }
                    continue;
                }
                match action.as_str() {
                    "login" => {
                        let user = message.get("username").map(String::as_str).unwrap_or("");
                        let secret = message.get("secret").map(String::as_str).unwrap_or("");
                        if user != asterisk.username || secret != asterisk.secret {
                            let text = response("Error", id, &[("Message", "Authentication failed")]);
                            let _ = write.write_all(text.as_bytes()).await;
                            // Asterisk closes the session after a failed login.
                            return;
                        }
                        authenticated = true;
                        listening = wants_events(message.get("events").map(String::as_str).unwrap_or(""));
                        asterisk.logged_in();
                        response("Success", id, &[("Message", "Authentication accepted")])
                    }
                    "logoff" => {
                        let text = response("Goodbye", id, &[("Message", "Thanks for all the fish.")]);
                        let _ = write.write_all(text.as_bytes()).await;
                        return;
                    }
                    "ping" => {
                        let now = time::OffsetDateTime::now_utc();
                        let stamp = format!("{}.{:06}", now.unix_timestamp(), now.microsecond());
                        response("Success", id, &[("Ping", "Pong"), ("Timestamp", &stamp)])
                    }
                    "coreshowchannels" => {
                        let mut text = response(
                            "Success",
                            id,
                            &[("EventList", "start"), ("Message", "Channels will follow")],
                        );
                        let listing = asterisk.listing();
                        let count = listing.len();
                        for mut event in listing {
                            if let Some(id) = id {
                                event.insert(2, ("ActionID".into(), id.clone()));
                            }
                            text.push_str(&render(&event));
                        }
                        let mut done = vec![("Event".to_string(), "CoreShowChannelsComplete".to_string())];
                        if let Some(id) = id {
                            done.push(("ActionID".into(), id.clone()));
                        }
                        done.push(("EventList".into(), "Complete".into()));
                        done.push(("ListItems".into(), count.to_string()));
                        text.push_str(&render(&done));
                        text
                    }
                    other => {
                        let get = |k: &str| message.get(k).map(String::as_str).unwrap_or("");
                        let outcome = match other {
                            "originate" => asterisk.originate(&message),
                            "hangup" => {
                                let cause = get("cause").parse().unwrap_or(16);
                                if get("channel").is_empty() {
                                    Err("No channel specified")
                                } else {
                                    asterisk.hangup_action(get("channel"), cause)
                                }
                            }
                            "blindtransfer" => asterisk.transfer(get("channel"), get("exten"), get("context"), false),
                            "redirect" => asterisk.transfer(get("channel"), get("exten"), get("context"), true),
                            "atxfer" => asterisk.atxfer(get("channel"), get("exten"), get("context")),
                            _ => {
                                let name = message.get("action").cloned().unwrap_or_default();
                                let text = format!(
                                    "Invalid/unknown command: {name}. Use Action: ListCommands to show available commands."
                                );
                                let text = response("Error", id, &[("Message", &text)]);
                                if write.write_all(text.as_bytes()).await.is_err() { return; }
                                continue;
                            }
                        };
                        match outcome {
                            Ok(message) => response("Success", id, &[("Message", message)]),
                            Err(message) => response("Error", id, &[("Message", message)]),
                        }
                    }
                }
            }
        };
        if write.write_all(out.as_bytes()).await.is_err() {
            return;
        }
    }
}
