//! One run of the Finesse connector: the notification service's XMPP stream(s), each agent's
//! Dialogs node subscribed, and the dialogs of the gap read back.
//!
//! A run: learn the XMPP domain and pubsub service (the settings, else `GET
//! /finesse/api/SystemInfo`: `xmppDomain`, `xmppPubSubDomain`), each agent's extension (`GET
//! /finesse/api/User/{id}`); log in (one stream per agent with their own accounts, or one for the
//! supervisor), subscribe each agent's `/finesse/api/User/{id}/Dialogs` node (Finesse subscribes
//! agents itself; asking again is harmless, and a supervisor must ask), report up, then catch up:
//! `GET /finesse/api/User/{id}/Dialogs` for every agent, each dialog applied like a notification,
//! and every leg the tracker (or the relay) still holds open that no list has any more is ended.
//! Subscribing before reading means nothing published in between is lost; what arrives twice
//! carries the same event ids and is dropped by the relay. Then the streams are served: pubsub
//! items become events, the server's pings are answered ([`super::xmpp`]); a stream that ends or
//! fails ends the run, and the next run logs in again and catches up.

use std::sync::Arc;

use reqwest::Method;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::mapping::{self, Agent, Dialog, Verb};
use super::xml::Element;
use super::xmpp::{Session, XmppError};
use super::{Login, Shared, segment};
use crate::adapters::connector::Undelivered;
use crate::adapters::{Link, LinkError};
use cti_protocol::event::{Direction, EndReason, EventType, TelephonyEvent};

fn lost(what: impl std::fmt::Display) -> LinkError {
    LinkError(what.to_string())
}

/// What a stream's reader hands the run.
#[derive(Debug)]
enum Heard {
    /// A pubsub item's `<Update>` text, and the node it came on.
    Item {
        node: String,
        update: String,
    },
    Ended(String),
}

/// Stops the stream readers with the run.
struct Readers(Vec<JoinHandle<()>>);

impl Drop for Readers {
    fn drop(&mut self) {
        for reader in &self.0 {
            reader.abort();
        }
    }
}

pub(super) async fn run(shared: Arc<Shared>, link: Link) -> Result<(), LinkError> {
    let mut readers = Readers(Vec::new());
    let result = session(&shared, &link, &mut readers).await;
    link.down();
    drop(readers);
    if let Err(err) = &result {
        link.error(&format!("Finesse: {err}"));
    }
    result
}

async fn session(shared: &Shared, link: &Link, readers: &mut Readers) -> Result<(), LinkError> {
    let settings = &shared.settings;
    let users: Vec<String> = settings.finesse_agents.keys().cloned().collect();
    let first = users
        .first()
        .cloned()
        .ok_or_else(|| lost("no agents are configured"))?;
    let (domain, pubsub) = settings
        .xmpp_domains(&shared.context.http, &first)
        .await
        .map_err(lost)?;
    for user in &users {
        shared
            .extension_of(user)
            .await
            .map_err(|e| lost(format!("reading agent {user}: {e}")))?;
    }
    // Who logs in, for which nodes.
    let logins: Vec<(String, Vec<String>)> = match settings.finesse_login {
        Login::Agent => users.iter().map(|u| (u.clone(), vec![u.clone()])).collect(),
        Login::Supervisor => vec![(first.clone(), users.clone())],
    };
    let (heard, mut inbox) = mpsc::channel(256);
    for (user, nodes) in logins {
        let account = settings
            .xmpp_account(&user, &domain)
            .ok_or_else(|| lost(format!("no credentials for {user}")))?;
        let mut session = Session::connect(&account)
            .await
            .map_err(|e| lost(format!("logging in to the notification service: {e}")))?;
        for node in &nodes {
            session
                .subscribe(&pubsub, &format!("/finesse/api/User/{node}/Dialogs"))
                .await
                .map_err(|e| lost(format!("subscribing to agent {node}'s dialogs: {e}")))?;
        }
        let heard = heard.clone();
        readers
            .0
            .push(tokio::spawn(serve(session, domain.clone(), heard)));
    }
    drop(heard);
    link.up();
    tracing::info!(tenant = %shared.tenant, agents = users.len(), "Finesse notifications connected");
    catch_up(shared, link, &users).await?;
    loop {
        match inbox.recv().await {
            Some(Heard::Item { node, update }) => {
                let Some(user) = mapping::user_of_node(&node) else {
                    continue;
                };
                match mapping::update(&update) {
                    Ok(update) => {
                        for dialog in &update.dialogs {
                            apply(shared, link, &user, update.verb, dialog).await?;
                        }
                    }
                    Err(e) => link.error(&format!("Finesse: an unreadable update: {e}")),
                }
            }
            Some(Heard::Ended(why)) => return Err(lost(why)),
            None => return Err(lost("the notification streams stopped")),
        }
    }
}

/// Silence after which the relay pings the server itself: Finesse pings its clients every 10 s,
/// so a minute without a byte means a connection that died without closing.
const SILENCE: std::time::Duration = std::time::Duration::from_secs(60);

/// Reads one stream until it ends, handing on its pubsub items (pings are answered inside).
async fn serve(mut session: Session, domain: String, heard: mpsc::Sender<Heard>) {
    let why = loop {
        let stanza = match tokio::time::timeout(SILENCE, session.next()).await {
            Ok(stanza) => stanza,
            Err(_) => {
                // XEP-0199 to the server; what arrives meanwhile is kept for `next`.
                match session
                    .request("get", Some(&domain), "<ping xmlns='urn:xmpp:ping'/>")
                    .await
                {
                    // Any answer, even a refusal, shows the stream lives.
                    Ok(_) | Err(XmppError::Refused(_)) => continue,
                    Err(e) => break format!("the notification stream went silent: {e}"),
                }
            }
        };
        match stanza {
            Ok(stanza) => {
                for (node, update) in items(&stanza) {
                    if heard.send(Heard::Item { node, update }).await.is_err() {
                        return;
                    }
                }
            }
            Err(e) => break format!("the notification stream ended: {e}"),
        }
    };
    let _ = heard.send(Heard::Ended(why)).await;
}

/// The `<Update>` texts of a pubsub event message, with their node: `<message><event
/// xmlns='http://jabber.org/protocol/pubsub#event'><items node='…'><item><notification>`
/// holding the update XML-escaped (reference 4.2).
pub(crate) fn items(stanza: &Element) -> Vec<(String, String)> {
    if stanza.name != "message" {
        return Vec::new();
    }
    let mut out = Vec::new();
    for event in stanza.children_named("event") {
        for items in event.children_named("items") {
            let node = items.attr("node").unwrap_or("").to_string();
            for item in items.children_named("item") {
                for payload in &item.children {
                    let text = payload.text.trim();
                    if !text.is_empty() {
                        out.push((node.clone(), text.to_string()));
                    }
                }
            }
        }
    }
    out
}

/// Applies one dialog of an agent's node and hands its events to the relay, in order. A
/// failure forgets the leg, so the next run's catch-up derives its events again.
async fn apply(
    shared: &Shared,
    link: &Link,
    user: &str,
    verb: Verb,
    dialog: &Dialog,
) -> Result<(), LinkError> {
    let (Some(rep), Ok(extension)) = (shared.rep_of(user), shared.extension_of(user).await) else {
        return Ok(());
    };
    super::call_facts::before_update(shared, dialog).await;
    let now = shared.now();
    let mut events = shared.tracker().apply(
        Agent {
            user,
            extension: &extension,
            rep: &rep,
        },
        verb,
        dialog,
        &now,
    );
    super::call_facts::after_update(shared, user, dialog).await;
    // A transfer made on the desktop names the target's extension: a colleague's is their rep;
    // a number (or an extension of no rep) is outside, and the hand-over ends the call.
    super::mapping::settle_transfers(
        &mut events,
        |address| shared.rep_of_extension(address),
        |target| shared.is_rep(target),
    );
    deliver(shared, link, user, events).await
}

async fn deliver(
    shared: &Shared,
    link: &Link,
    user: &str,
    events: Vec<TelephonyEvent>,
) -> Result<(), LinkError> {
    for event in events {
        let call = event.call_id.clone();
        match link.deliver(event).await {
            Ok(()) => {}
            Err(Undelivered::Closed) => return Err(lost("the relay is stopping")),
            Err(Undelivered::Failed(e)) => {
                shared.tracker().forget(&call, user);
                return Err(lost(format!("the relay could not apply a call event: {e}")));
            }
        }
    }
    Ok(())
}

/// Reads back every agent's dialogs; ends the legs that are gone.
async fn catch_up(shared: &Shared, link: &Link, users: &[String]) -> Result<(), LinkError> {
    let mut seen = std::collections::BTreeSet::new();
    for user in users {
        let body = shared
            .rest(
                Method::GET,
                &format!("/finesse/api/User/{}/Dialogs", segment(user)),
                user,
                None,
            )
            .await
            .map_err(|e| lost(format!("catching up on agent {user}: {e}")))?;
        let mut dialogs = mapping::dialogs(&body)
            .map_err(|e| lost(format!("catching up on agent {user}: {e}")))?;
        // A call's first dialog before its consults, so the consulting leg stays the first's.
        dialogs.sort_by_key(|d| d.associated.is_some());
        for dialog in &dialogs {
            seen.insert((dialog.call().to_string(), user.clone()));
            apply(shared, link, user, Verb::Put, dialog).await?;
        }
    }
    // Legs the tracker holds open whose dialog no agent has any more ended in the gap.
    let open = shared.tracker().open();
    for (call, user, dialog) in open {
        if seen.contains(&(call.clone(), user.clone())) {
            continue;
        }
        let gone = Dialog {
            associated: (call != dialog).then(|| call.clone()),
            id: dialog,
            ..Dialog::default()
        };
        apply(shared, link, &user, Verb::Delete, &gone).await?;
    }
    // Calls the relay still holds live (this instance may never have seen them) that are gone.
    let reps: Vec<String> = users.iter().filter_map(|u| shared.rep_of(u)).collect();
    for (call, rep) in link.live_calls(&reps).await {
        let Some(user) = shared.user_of(&rep) else {
            continue;
        };
        if seen.contains(&(call.clone(), user.clone()))
            || shared.tracker().dialog_of(&call, &user).is_some()
        {
            continue;
        }
        let event = TelephonyEvent {
            id: format!("finesse:{call}:{user}:ended"),
            call_id: call.clone(),
            event_type: EventType::Ended,
            direction: Direction::Inbound,
            from: String::new(),
            to: String::new(),
            agent: rep,
            at: shared.now(),
            transfer_to: None,
            reason: Some(EndReason::Completed),
            recording_url: None,
        };
        deliver(shared, link, &user, vec![event]).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::finesse::xml;

    #[test]
    fn updates_are_read_out_of_pubsub_event_messages() {
        let stanza = xml::parse(
            "<message from='pubsub.finesse.example.com' to='1001@finesse.example.com'><event xmlns='http://jabber.org/protocol/pubsub#event'><items node='/finesse/api/User/1001/Dialogs'><item id='a1'><notification xmlns='http://jabber.org/protocol/pubsub'>&lt;Update&gt;&lt;event&gt;PUT&lt;/event&gt;&lt;/Update&gt;</notification></item></items></event></message>",
        )
        .expect("parses");
        let found = items(&stanza);
        assert_eq!(
            found,
            [(
                "/finesse/api/User/1001/Dialogs".to_string(),
                "<Update><event>PUT</event></Update>".to_string()
            )]
        );
        assert!(items(&xml::parse("<presence/>").expect("parses")).is_empty());
    }
}
