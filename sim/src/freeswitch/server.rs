//! The simulated FreeSWITCH's event socket: one task per TCP connection.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::broadcast::error::RecvError;

use super::Freeswitch;

pub(crate) async fn serve(listener: TcpListener, freeswitch: Arc<Freeswitch>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        if freeswitch.refusing.load(Ordering::SeqCst) {
            drop(stream);
            continue;
        }
        tokio::spawn(session(stream, freeswitch.clone()));
    }
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn reply(text: &str) -> String {
    format!("Content-Type: command/reply\nReply-Text: {text}\n\n")
}

fn api_response(body: &str) -> String {
    format!(
        "Content-Type: api/response\nContent-Length: {}\n\n{body}",
        body.len()
    )
}

const GOODBYE: &str = "Disconnected, goodbye.\nSee you at ClueCon! http://www.cluecon.com/\n";

async fn session(stream: TcpStream, freeswitch: Arc<Freeswitch>) {
    let _ = stream.set_nodelay(true);
    let (read, mut write) = stream.into_split();
    // Commands are read whole by a task of their own (reading a line is not cancel-safe).
    let (commands, mut inbox) = tokio::sync::mpsc::channel::<String>(16);
    let _reader = AbortOnDrop(tokio::spawn(async move {
        let mut reader = BufReader::new(read);
        let mut line = String::new();
        let mut command = String::new();
        loop {
            line.clear();
            match reader.read_line(&mut line).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            let text = line.trim_end_matches(['\r', '\n']);
            if text.is_empty() {
                if !command.is_empty() && commands.send(std::mem::take(&mut command)).await.is_err()
                {
                    return;
                }
                continue;
            }
            // The first line is the command; header lines after it are not used here.
            if command.is_empty() {
                command = text.to_string();
            }
        }
    }));
    let mut events = freeswitch.events.subscribe();
    let mut drops = freeswitch.drops.subscribe();
    let mut authenticated = false;
    let mut wanted: BTreeSet<String> = BTreeSet::new();
    if write
        .write_all(b"Content-Type: auth/request\n\n")
        .await
        .is_err()
    {
        return;
    }
    loop {
        let out = tokio::select! {
            _ = drops.changed() => return,
            event = events.recv() => match event {
                Ok((name, frame)) if authenticated && (name == "*" || wanted.contains(&name) || wanted.contains("ALL")) => frame,
                Ok(_) => continue,
                Err(RecvError::Lagged(_)) => continue,
                Err(RecvError::Closed) => return,
            },
            command = inbox.recv() => {
                let Some(command) = command else { return };
                let (verb, rest) = command.split_once(' ').unwrap_or((command.as_str(), ""));
                if !authenticated {
                    if verb != "auth" {
                        reply("-ERR command not found")
                    } else if rest.trim() == freeswitch.password {
                        authenticated = true;
                        freeswitch.logged_in();
                        reply("+OK accepted")
                    } else {
                        let text = format!(
                            "{}Content-Type: text/disconnect-notice\nContent-Length: {}\n\n{GOODBYE}",
                            reply("-ERR invalid"),
                            GOODBYE.len()
                        );
                        let _ = write.write_all(text.as_bytes()).await;
                        return;
                    }
                } else {
                    match verb {
                        "event" => {
                            let mut words = rest.split_whitespace();
                            match words.next() {
                                Some(format @ ("json" | "plain" | "xml")) => {
                                    wanted.extend(words.map(str::to_string));
                                    reply(&format!("+OK event listener enabled {format}"))
                                }
                                _ => reply("-ERR invalid event format"),
                            }
                        }
                        "api" => api_response(&freeswitch.api(rest)),
                        "bgapi" => {
                            let job = uuid::Uuid::new_v4();
                            let _ = freeswitch.api(rest);
                            format!("Content-Type: command/reply\nReply-Text: +OK Job-UUID: {job}\nJob-UUID: {job}\n\n")
                        }
                        "exit" => {
                            let text = format!(
                                "{}Content-Type: text/disconnect-notice\nContent-Length: {}\n\n{GOODBYE}",
                                reply("+OK bye"),
                                GOODBYE.len()
                            );
                            let _ = write.write_all(text.as_bytes()).await;
                            return;
                        }
                        _ => reply("-ERR command not found"),
                    }
                }
            }
        };
        if write.write_all(out.as_bytes()).await.is_err() {
            return;
        }
    }
}
