//! The targets: each parser of untrusted input, and the HTTP endpoints that sit in front of
//! some of them, with valid sample payloads to start from.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use bytes::BytesMut;
use serde_json::Value;
use tower::ServiceExt as _;

use super::{Runner, Target, outcome};
use crate::adapters::TelephonySettings;
use crate::config::Config;
use crate::state::AppState;

pub(super) const ALL: &[Target] = &[
    Target {
        name: "generic-webhook",
        about: "the generic provider's webhook body (JSON event)",
        seeds: generic_seeds,
        runner: generic_webhook,
    },
    Target {
        name: "generic-http",
        about: "POST /v1/tenants/{t}/telephony/generic through the router, signed",
        seeds: generic_seeds,
        runner: generic_http,
    },
    Target {
        name: "ringcentral-http",
        about: "RingCentral webhook notifications through the router",
        seeds: ringcentral_seeds,
        runner: ringcentral_http,
    },
    Target {
        name: "webex-http",
        about: "Webex Calling telephony_calls webhooks through the router, signed",
        seeds: webex_seeds,
        runner: webex_http,
    },
    Target {
        name: "teams-http",
        about: "Microsoft Graph change notifications and bot callbacks through the router",
        seeds: teams_seeds,
        runner: teams_http,
    },
    Target {
        name: "genesys-frame",
        about: "Genesys Cloud notification WebSocket frames, applied to the call tracker",
        seeds: genesys_seeds,
        runner: genesys_frame,
    },
    Target {
        name: "finesse-xmpp",
        about: "Finesse XMPP stream: stanza splitting, pubsub items, <Update> XML, tracker",
        seeds: finesse_seeds,
        runner: finesse_xmpp,
    },
    Target {
        name: "asterisk-ami",
        about: "Asterisk AMI byte stream: framing, messages, the call tracker",
        seeds: asterisk_seeds,
        runner: asterisk_ami,
    },
    Target {
        name: "freeswitch-esl",
        about: "FreeSWITCH event socket stream: framing, event JSON, channel rows, tracker",
        seeds: freeswitch_seeds,
        runner: freeswitch_esl,
    },
    Target {
        name: "sip-dialog-info",
        about: "SIP dialog-info+xml NOTIFY bodies, applied to the call tracker",
        seeds: dialog_info_seeds,
        runner: sip_dialog_info,
    },
    Target {
        name: "sip-message",
        about: "SIP stream framing and messages (headers the user agent reads, challenges)",
        seeds: sip_message_seeds,
        runner: sip_message,
    },
    Target {
        name: "agent-ws-frame",
        about: "the widget's WebSocket frames (the agent protocol's client messages)",
        seeds: ws_seeds,
        runner: agent_ws_frame,
    },
    Target {
        name: "v2-events",
        about: "V2 change events (CloudEvents and external hooks)",
        seeds: v2_event_seeds,
        runner: v2_events,
    },
    Target {
        name: "v2-events-http",
        about: "POST /v1/tenants/{t}/v2-events through the router, authenticated",
        seeds: v2_event_seeds,
        runner: v2_events_http,
    },
    Target {
        name: "v2-answer",
        about: "V2 API answers: error envelopes, record lists and what is read from records",
        seeds: v2_answer_seeds,
        runner: v2_answer,
    },
    Target {
        name: "phone-number",
        about: "phone number normalisation, in several default regions",
        seeds: phone_seeds,
        runner: phone_number,
    },
];

const NOW: &str = "2026-12-02T10:00:00Z";

fn texts(samples: &[&str]) -> Vec<Vec<u8>> {
    samples.iter().map(|s| s.as_bytes().to_vec()).collect()
}

fn rep_of(user: &str) -> Option<String> {
    (!user.is_empty() && user.len() < 64).then(|| format!("rep-{user}"))
}

// ---- generic -------------------------------------------------------------------------------

fn generic_seeds() -> Vec<Vec<u8>> {
    texts(&[
        r#"{"id":"evt-1","call_id":"call-1","type":"ringing","direction":"inbound","from":"044 123 45 67","to":"+41 44 999 00 00","agent":"alice@example.com","at":"2026-11-24T10:00:00Z"}"#,
        r#"{"id":"evt-2","call_id":"call-1","type":"answered","direction":"inbound","from":"+41441234567","to":"+41449990000","agent":"alice@example.com","at":"2026-11-24T10:00:05Z"}"#,
        r#"{"id":"evt-3","call_id":"call-1","type":"ended","direction":"inbound","from":"+41441234567","to":"+41449990000","agent":"alice@example.com","at":"2026-11-24T10:01:00Z","end_reason":"completed"}"#,
        r#"{"id":"evt-4","call_id":"call-2","type":"ringing","direction":"outbound","from":"+41449990000","to":"0041 79 123 45 67","agent":"bob@example.com","at":"2026-11-24T10:00:00Z"}"#,
    ])
}

fn generic_webhook() -> Runner {
    Box::new(|input| match crate::adapters::generic::parse_event(input) {
        Ok(event) => outcome("ok", &format!("{:?}", event.event_type)),
        Err(e) => outcome("rejected", &e.to_string()),
    })
}

// ---- through the router --------------------------------------------------------------------

/// A router over one tenant of `provider` (its demo settings, V2 and the provider on a port
/// nothing listens on), and a runtime to drive it.
struct Http {
    runtime: tokio::runtime::Runtime,
    router: Router,
    state: Arc<AppState>,
}

const NOWHERE: &str = "http://127.0.0.1:9";

/// 2026-11-24T10:01:00Z: the generic seeds' last event time.
const SEEDS_NOW_MS: u64 = 1_795_514_460_000;

impl Http {
    fn new(provider: &str) -> Http {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        let mut config = Config::demo(NOWHERE);
        let tenant = &mut config.tenants[0];
        tenant.id = format!("fuzz-{provider}");
        tenant.telephony =
            TelephonySettings::demo(provider, NOWHERE, "http://127.0.0.1:8080", &tenant.id)
                .expect("a simulated provider");
        let state = {
            let _entered = runtime.enter();
            // The generic webhook refuses events older than its replay window: its clock stands
            // just after the seeds' times, so they stay events rather than stale refusals.
            let clock: crate::clock::SharedClock = match provider {
                "generic" => Arc::new(crate::clock::ManualClock::new(SEEDS_NOW_MS)),
                _ => Arc::new(crate::clock::SystemClock),
            };
            let stores = crate::state::Stores::memory(clock.clone());
            AppState::with_parts(config, stores, clock).expect("state")
        };
        let router = crate::api::router(state.clone());
        Http {
            runtime,
            router,
            state,
        }
    }

    /// Sends one request; every answer must be a 2xx, or a 4xx saying why. Its outcome is the
    /// status and the error code.
    fn send(&self, request: Request<Body>) -> String {
        self.runtime.block_on(async {
            let response = self
                .router
                .clone()
                .oneshot(request)
                .await
                .expect("routers are infallible");
            let status = response.status();
            let body = axum::body::to_bytes(response.into_body(), 1 << 20)
                .await
                .expect("a readable answer");
            assert!(
                status.is_success() || status.is_client_error(),
                "answered {status}: {}",
                String::from_utf8_lossy(&body)
            );
            if status.is_success() {
                return outcome("ok", status.as_str());
            }
            assert!(
                status == StatusCode::METHOD_NOT_ALLOWED || !body.trim_ascii().is_empty(),
                "answered {status} without a reason"
            );
            // The reason names the field or the parser's complaint: distinct reasons are
            // distinct paths through the parser.
            let error = serde_json::from_slice::<Value>(&body).ok();
            let field = |name: &str| {
                error
                    .as_ref()
                    .and_then(|v| v.pointer(&format!("/error/{name}")))
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string()
            };
            outcome(
                "rejected",
                &format!("{status} {} {}", field("code"), field("message")),
            )
        })
    }

    fn tenant(&self) -> std::sync::Arc<crate::state::Tenant> {
        let id = &self.state.config.tenants[0].id;
        self.state.tenant(id).expect("the tenant")
    }
}

fn post(path: &str) -> axum::http::request::Builder {
    Request::post(path).header("content-type", "application/json")
}

fn generic_http() -> Runner {
    let http = Http::new("generic");
    let secret = match &http.tenant().config.telephony {
        TelephonySettings::Generic(s) => s.webhook_secret.expose().to_string(),
        _ => unreachable!("a generic tenant"),
    };
    Box::new(move |input| {
        let now = http.state.clock.now_ms() / 1000;
        let request = post("/v1/tenants/fuzz-generic/telephony/generic")
            .header(
                cti_protocol::signature::HEADER,
                cti_protocol::signature::sign(&secret, now, input),
            )
            .header(cti_protocol::signature::TIMESTAMP_HEADER, now.to_string())
            .body(Body::from(input.to_vec()))
            .expect("a request");
        http.send(request)
    })
}

fn ringcentral_seeds() -> Vec<Vec<u8>> {
    texts(&[
        r#"{"uuid":"n-1","event":"/restapi/v1.0/account/~/telephony/sessions","timestamp":"2026-12-02T10:00:00Z","subscriptionId":"s-1","ownerId":"1","body":{"sequence":1,"sessionId":"s-100","telephonySessionId":"t-100","serverId":"srv","eventTime":"2026-12-02T10:00:00Z","parties":[{"accountId":"1","extensionId":"101","id":"p-1","direction":"Inbound","to":{"phoneNumber":"+41449990000","name":"Alice","extensionId":"101"},"from":{"phoneNumber":"+41441234567","name":"Caller"},"status":{"code":"Proceeding","rcc":false},"missedCall":false,"standAlone":false,"muted":false}],"origin":{"type":"Call"}}}"#,
        r#"{"uuid":"n-2","event":"/restapi/v1.0/account/~/telephony/sessions","body":{"sequence":2,"telephonySessionId":"t-100","eventTime":"2026-12-02T10:00:05Z","parties":[{"extensionId":"101","id":"p-1","direction":"Inbound","to":{"phoneNumber":"+41449990000","extensionId":"101"},"from":{"phoneNumber":"+41441234567"},"status":{"code":"Answered"}}]}}"#,
        r#"{"uuid":"n-3","event":"/restapi/v1.0/account/~/telephony/sessions","body":{"sequence":3,"telephonySessionId":"t-100","eventTime":"2026-12-02T10:01:00Z","parties":[{"extensionId":"101","id":"p-1","direction":"Inbound","to":{"phoneNumber":"+41449990000","extensionId":"101"},"from":{"phoneNumber":"+41441234567"},"status":{"code":"Disconnected","reason":"Pickup"}}]}}"#,
    ])
}

fn ringcentral_http() -> Runner {
    let http = Http::new("ringcentral");
    let token = match &http.tenant().config.telephony {
        TelephonySettings::RingCentral(s) => s.ringcentral_verification_token.expose().to_string(),
        _ => unreachable!("a RingCentral tenant"),
    };
    Box::new(move |input| {
        let request = post("/v1/tenants/fuzz-ringcentral/telephony/ringcentral")
            .header("verification-token", &token)
            .body(Body::from(input.to_vec()))
            .expect("a request");
        http.send(request)
    })
}

fn webex_seeds() -> Vec<Vec<u8>> {
    texts(&[
        r#"{"id":"w-1","name":"CTI relay telephony_calls","resource":"telephony_calls","event":"updated","orgId":"org-1","createdBy":"u","appId":"a","ownerId":"o","status":"active","actorId":"person-1","created":"2026-12-02T10:00:00Z","data":{"eventType":"received","eventTimestamp":"2026-12-02T10:00:00.000Z","callId":"call-1","callSessionId":"sess-1","personality":"terminator","state":"alerting","remoteParty":{"name":"Caller","number":"+41441234567","personId":null,"privacyEnabled":false,"callType":"external"},"created":"2026-12-02T10:00:00.000Z","personId":"person-1"}}"#,
        r#"{"id":"w-2","resource":"telephony_calls","event":"updated","actorId":"person-1","data":{"eventType":"connected","eventTimestamp":"2026-12-02T10:00:05.000Z","callId":"call-1","callSessionId":"sess-1","personality":"terminator","state":"connected","remoteParty":{"number":"+41441234567","callType":"external"},"personId":"person-1"}}"#,
        r#"{"id":"w-3","resource":"telephony_calls","event":"deleted","actorId":"person-1","data":{"eventType":"disconnected","eventTimestamp":"2026-12-02T10:01:00.000Z","callId":"call-1","callSessionId":"sess-1","personality":"originator","state":"disconnected","remoteParty":{"number":"0441234567","callType":"external"},"personId":"person-1"}}"#,
    ])
}

fn webex_http() -> Runner {
    use hmac::{Hmac, Mac};
    let http = Http::new("webex");
    let secret = match &http.tenant().config.telephony {
        TelephonySettings::Webex(s) => s.webex_webhook_secret.expose().to_string(),
        _ => unreachable!("a Webex tenant"),
    };
    Box::new(move |input| {
        let mut mac = Hmac::<sha1::Sha1>::new_from_slice(secret.as_bytes()).expect("any key");
        mac.update(input);
        let signature = hex::encode(mac.finalize().into_bytes());
        let request = post("/v1/tenants/fuzz-webex/telephony/webex")
            .header("x-spark-signature", signature)
            .body(Body::from(input.to_vec()))
            .expect("a request");
        http.send(request)
    })
}

fn teams_seeds() -> Vec<Vec<u8>> {
    texts(&[
        r##"{"value":[{"subscriptionId":"sub-1","clientState":"demo-teams-client-state","changeType":"updated","resource":"communications/presences/user-1","tenantId":"6f1c2d3e-4b5a-4c7d-8e9f-0a1b2c3d4e5f","resourceData":{"@odata.type":"#Microsoft.Graph.presence","@odata.id":"communications/presences/user-1","id":"user-1","activity":"InACall","availability":"Busy"}}]}"##,
        r##"{"value":[{"subscriptionId":"sub-1","clientState":"demo-teams-client-state","changeType":"created","resource":"communications/callRecords/rec-1","resourceData":{"@odata.type":"#microsoft.graph.callrecords.callRecord","id":"rec-1"}}]}"##,
        r##"{"value":[{"subscriptionId":"sub-1","clientState":"demo-teams-client-state","lifecycleEvent":"reauthorizationRequired","resource":"communications/presences","tenantId":"t"}]}"##,
        r##"{"@odata.type":"#microsoft.graph.commsNotifications","value":[{"@odata.type":"#microsoft.graph.commsNotification","changeType":"created","resource":"/app/calls/call-1","resourceUrl":"/communications/calls/call-1","resourceData":{"@odata.type":"#microsoft.graph.call","state":"incoming","direction":"incoming","callChainId":"chain-1","source":{"identity":{"phone":{"id":"+41441234567"}}},"targets":[{"identity":{"user":{"id":"user-1","displayName":"Alice"}}}]}}]}"##,
    ])
}

fn teams_http() -> Runner {
    let http = Http::new("teams");
    Box::new(move |input| {
        let request = post("/v1/tenants/fuzz-teams/telephony/teams")
            .body(Body::from(input.to_vec()))
            .expect("a request");
        http.send(request)
    })
}

// ---- held connections ----------------------------------------------------------------------

fn genesys_seeds() -> Vec<Vec<u8>> {
    texts(&[
        r#"{"topicName":"v2.users.u-1.conversations.calls","version":"2","eventBody":{"id":"conv-1","participants":[{"id":"p-1","purpose":"customer","state":"alerting","direction":"inbound","ani":"tel:+41441234567","dnis":"tel:+41449990000","held":false},{"id":"p-2","purpose":"agent","user":{"id":"u-1"},"state":"alerting","direction":"inbound","ani":"tel:+41441234567","held":false}]}}"#,
        r#"{"topicName":"v2.users.u-1.conversations.calls","eventBody":{"id":"conv-1","participants":[{"id":"p-1","purpose":"customer","state":"connected","direction":"inbound","ani":"tel:+41441234567"},{"id":"p-2","purpose":"agent","user":{"id":"u-1"},"state":"connected","held":true,"connectedTime":"2026-12-02T10:00:05.000Z"}]}}"#,
        r#"{"topicName":"v2.users.u-1.conversations.calls","eventBody":{"id":"conv-1","participants":[{"id":"p-1","purpose":"customer","state":"terminated"},{"id":"p-2","purpose":"agent","user":{"id":"u-1"},"state":"terminated","disconnectType":"client","endTime":"2026-12-02T10:01:00.000Z"}]}}"#,
        r#"{"topicName":"v2.system.socket_closing","eventBody":{"message":"closing"}}"#,
        r#"{"topicName":"channel.metadata","eventBody":{"message":"WebSocket Heartbeat"}}"#,
    ])
}

fn genesys_frame() -> Runner {
    use crate::adapters::genesys::connector::{Notification, read};
    let mut tracker = crate::adapters::genesys::mapping::Tracker::default();
    Box::new(move |input| {
        // The socket hands over text frames only: tungstenite refuses what is not UTF-8.
        let Ok(text) = std::str::from_utf8(input) else {
            return outcome("rejected", "not UTF-8");
        };
        match read(text) {
            Notification::Snapshot(snapshot) => {
                let events = tracker.apply(*snapshot, rep_of, NOW);
                outcome("ok", &format!("{} events", events.len().min(3)))
            }
            Notification::Unreadable(e) => outcome("rejected", &e),
            other => outcome("ok", &format!("{other:?}")),
        }
    })
}

fn finesse_seeds() -> Vec<Vec<u8>> {
    let update = r#"<Update><data><dialogs><Dialog><associatedDialogUri></associatedDialogUri><fromAddress>0441234567</fromAddress><id>140953817</id><mediaProperties><DNIS>7053</DNIS><callType>PREROUTE_ACD_IN</callType><dialedNumber>813636</dialedNumber></mediaProperties><mediaType>Voice</mediaType><participants><Participant><actions><action>DROP</action></actions><mediaAddress>0441234567</mediaAddress><mediaAddressType></mediaAddressType><startTime>2020-05-08T01:22:42.009Z</startTime><state>INITIATED</state><stateCause></stateCause></Participant><Participant><actions><action>ANSWER</action></actions><mediaAddress>7053</mediaAddress><mediaAddressType>AGENT_DEVICE</mediaAddressType><startTime>2020-05-08T01:22:42.010Z</startTime><state>ALERTING</state><stateCause></stateCause></Participant></participants><state>ALERTING</state><toAddress>7053</toAddress><uri>/finesse/api/Dialog/140953817</uri></Dialog></dialogs></data><event>POST</event><requestId></requestId><source>/finesse/api/User/1001/Dialogs</source></Update>"#;
    let escaped = crate::adapters::finesse::xml::escape(update);
    let message = |body: &str| {
        format!(
            "<message from='pubsub.finesse.test' to='cti@finesse.test' id='m1'><event xmlns='http://jabber.org/protocol/pubsub#event'><items node='/finesse/api/User/1001/Dialogs'><item id='i1'><notification xmlns='http://jabber.org/protocol/pubsub'>{body}</notification></item></items></event></message>"
        )
    };
    let active = escaped.replace("ALERTING", "ACTIVE").replace("POST", "PUT");
    let dropped = escaped
        .replace("ALERTING", "DROPPED")
        .replace("POST", "DELETE");
    vec![
        message(&escaped).into_bytes(),
        format!(
            "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' id='s1' from='finesse.test' version='1.0'>{}{}</stream:stream>",
            message(&active),
            message(&dropped)
        )
        .into_bytes(),
        b"<iq type='result' id='bind_1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><jid>cti@finesse.test/relay</jid></bind></iq>".to_vec(),
    ]
}

fn finesse_xmpp() -> Runner {
    use crate::adapters::finesse::mapping::{self, Agent, Tracker};
    use crate::adapters::finesse::xml::{self, Piece};
    let mut tracker = Tracker::default();
    Box::new(move |input| {
        let mut at = 0;
        let mut last = outcome("ok", "nothing");
        while let Some((piece, used)) = xml::split(&input[at..]) {
            assert!(used > 0, "a piece of no bytes would loop for ever");
            at += used;
            let Piece::Stanza(text) = piece else {
                continue;
            };
            if text.is_empty() {
                continue;
            }
            let stanza = match xml::parse(&text) {
                Ok(stanza) => stanza,
                Err(e) => {
                    last = outcome("rejected", &e.to_string());
                    continue;
                }
            };
            for (node, update) in crate::adapters::finesse::connector::items(&stanza) {
                let user = mapping::user_of_node(&node).unwrap_or_default();
                match mapping::update(&update) {
                    Ok(update) => {
                        let agent = Agent {
                            user: &user,
                            extension: "7053",
                            rep: "rep-1001",
                        };
                        let mut events = 0;
                        for dialog in &update.dialogs {
                            events += tracker.apply(agent, update.verb, dialog, NOW).len();
                        }
                        last = outcome("ok", &format!("{:?} {}", update.verb, events.min(3)));
                    }
                    Err(e) => last = outcome("rejected", &e.to_string()),
                }
            }
        }
        last
    })
}

/// Feeds `input` to a stream decoder in chunks (a socket's reads), then to the end.
fn decode_all<D: tokio_util::codec::Decoder>(
    codec: &mut D,
    input: &[u8],
    mut each: impl FnMut(D::Item),
) -> Result<(), D::Error> {
    let mut buf = BytesMut::new();
    for chunk in input.chunks(97) {
        buf.extend_from_slice(chunk);
        while let Some(item) = codec.decode(&mut buf)? {
            each(item);
        }
    }
    while let Some(item) = codec.decode_eof(&mut buf)? {
        each(item);
    }
    Ok(())
}

fn asterisk_seeds() -> Vec<Vec<u8>> {
    texts(&[
        "Asterisk Call Manager/7.0.3\r\nEvent: Newchannel\r\nPrivilege: call,all\r\nChannel: PJSIP/21-0000001b\r\nChannelState: 4\r\nChannelStateDesc: Ring\r\nCallerIDNum: 0441234567\r\nCallerIDName: Kitchen\r\nConnectedLineNum: <unknown>\r\nContext: from-internal\r\nExten: 1986\r\nPriority: 1\r\nUniqueid: 1770888534.43\r\nLinkedid: 1770888534.43\r\n\r\nEvent: Newchannel\r\nChannel: PJSIP/1986-0000001c\r\nChannelState: 0\r\nChannelStateDesc: Down\r\nCallerIDNum: 1986\r\nUniqueid: 1770888534.44\r\nLinkedid: 1770888534.43\r\n\r\nEvent: DialBegin\r\nChannel: PJSIP/21-0000001b\r\nUniqueid: 1770888534.43\r\nLinkedid: 1770888534.43\r\nDestChannel: PJSIP/1986-0000001c\r\nDestChannelState: 0\r\nDestUniqueid: 1770888534.44\r\nDestLinkedid: 1770888534.43\r\n\r\nEvent: Newstate\r\nChannel: PJSIP/1986-0000001c\r\nChannelState: 5\r\nChannelStateDesc: Ringing\r\nUniqueid: 1770888534.44\r\nLinkedid: 1770888534.43\r\nConnectedLineNum: 0441234567\r\n\r\n",
        "Asterisk Call Manager/7.0.3\r\nEvent: Newstate\r\nChannel: PJSIP/1986-0000001c\r\nChannelState: 6\r\nChannelStateDesc: Up\r\nUniqueid: 1770888534.44\r\nLinkedid: 1770888534.43\r\n\r\nEvent: Hold\r\nChannel: PJSIP/1986-0000001c\r\nUniqueid: 1770888534.44\r\n\r\nEvent: Hangup\r\nChannel: PJSIP/1986-0000001c\r\nUniqueid: 1770888534.44\r\nLinkedid: 1770888534.43\r\nCause: 16\r\n\r\n",
        "Asterisk Call Manager/7.0.3\r\nEvent: CoreShowChannel\r\nActionID: a1\r\nChannel: PJSIP/1986-0000001c\r\nChannelState: 6\r\nUniqueid: 1770888534.44\r\nLinkedid: 1770888534.43\r\nCallerIDNum: 1986\r\nConnectedLineNum: 0441234567\r\n\r\nResponse: Success\r\nActionID: a2\r\nMessage: Authentication accepted\r\n\r\n",
    ])
}

fn asterisk_ami() -> Runner {
    use crate::adapters::asterisk::ami::{AmiCodec, Frame};
    use crate::adapters::asterisk::mapping::{Listed, Tracker};
    let mut tracker = Tracker::default();
    Box::new(move |input| {
        let mut codec = AmiCodec::default();
        let (mut messages, mut malformed, mut events) = (0, 0, 0);
        // The last event's name and effect: distinct ones are distinct paths in the tracker.
        let mut last = String::new();
        let result = decode_all(&mut codec, input, |frame| match frame {
            Frame::Banner(_) => {}
            Frame::Message(message) => {
                messages += 1;
                last = format!(
                    "{} {}",
                    message.event().unwrap_or("-"),
                    tracker.open_calls().len().min(3)
                );
                let _ = Listed::from_event(&message);
                events += tracker.apply(&message, &rep_of, NOW).len();
            }
            Frame::Malformed { .. } => malformed += 1,
        });
        match result {
            Ok(()) => outcome(
                "ok",
                &format!(
                    "{} messages {} malformed {} events, last {last}",
                    messages.min(2),
                    malformed.min(2),
                    events.min(2)
                ),
            ),
            Err(e) => outcome("rejected", &e.to_string()),
        }
    })
}

fn freeswitch_seeds() -> Vec<Vec<u8>> {
    let event = |name: &str, state: &str| {
        let body = format!(
            r#"{{"Event-Name":"{name}","Unique-ID":"uuid-1","Channel-Name":"sofia/internal/1001@127.0.0.1","Channel-Call-State":"{state}","Call-Direction":"outbound","Caller-Caller-ID-Number":"0441234567","Caller-Destination-Number":"1001","Other-Leg-Unique-ID":"uuid-0","Event-Date-Timestamp":"1764669600000000"}}"#
        );
        format!(
            "Content-Length: {}\nContent-Type: text/event-json\n\n{body}",
            body.len()
        )
    };
    let rows = r#"{"row_count":1,"rows":[{"uuid":"uuid-1","direction":"outbound","name":"sofia/internal/1001@127.0.0.1","callstate":"ACTIVE","cid_num":"0441234567","dest":"1001","call_uuid":"uuid-0"}]}"#;
    vec![
        format!(
            "Content-Type: auth/request\n\nContent-Type: command/reply\nReply-Text: +OK accepted\n\n{}{}{}",
            event("CHANNEL_CREATE", "RINGING"),
            event("CHANNEL_ANSWER", "ACTIVE"),
            event("CHANNEL_HANGUP_COMPLETE", "HANGUP")
        )
        .into_bytes(),
        format!(
            "Content-Type: api/response\nContent-Length: {}\n\n{rows}",
            rows.len()
        )
        .into_bytes(),
    ]
}

fn freeswitch_esl() -> Runner {
    use crate::adapters::freeswitch::esl::{EslCodec, Frame};
    use crate::adapters::freeswitch::mapping::{Listed, Tracker};
    let mut tracker = Tracker::default();
    Box::new(move |input| {
        let mut codec = EslCodec::default();
        let mut last = outcome("ok", "nothing");
        let result = decode_all(&mut codec, input, |frame| match frame {
            Frame::Message(message) => match message.content_type() {
                "text/event-json" => match serde_json::from_str::<Value>(&message.body) {
                    Ok(event) => {
                        let events = tracker.apply(&event, &rep_of, NOW);
                        last = outcome("ok", &format!("event {}", events.len().min(3)));
                    }
                    Err(e) => last = outcome("rejected", &e.to_string()),
                },
                "api/response" => match Listed::rows(&message.body) {
                    Ok(rows) => {
                        for row in &rows {
                            let _ = tracker.uuid_of(&row.uuid, "rep");
                        }
                        last = outcome("ok", &format!("rows {}", rows.len().min(3)));
                    }
                    Err(e) => last = outcome("rejected", &e),
                },
                other => last = outcome("ok", other),
            },
            Frame::Malformed { reason, .. } => last = outcome("malformed", &reason),
        });
        match result {
            Ok(()) => last,
            Err(e) => outcome("rejected", &e.to_string()),
        }
    })
}

fn dialog_info_seeds() -> Vec<Vec<u8>> {
    texts(&[
        r#"<?xml version="1.0"?>
<dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info" version="1" state="full" entity="sip:1001@127.0.0.1">
  <dialog id="d-1" call-id="abc@127.0.0.1" local-tag="lt" remote-tag="rt" direction="recipient">
    <state>early</state>
    <remote><identity display="Caller">sip:+41441234567@127.0.0.1</identity><target uri="sip:+41441234567@127.0.0.1"/></remote>
    <local><identity>sip:1001@127.0.0.1</identity><target uri="sip:1001@127.0.0.1:5070"><param pname="+sip.rendering" pvalue="yes"/></target></local>
  </dialog>
</dialog-info>"#,
        r#"<dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info" version="2" state="partial" entity="sip:1001@127.0.0.1">
  <dialog id="d-1" call-id="abc@127.0.0.1" local-tag="lt" remote-tag="rt" direction="recipient"><state>confirmed</state>
    <remote><identity>sip:0441234567@127.0.0.1</identity></remote><local><identity>sip:1001@127.0.0.1</identity><target uri="sip:1001@127.0.0.1"><param pname="+sip.rendering" pvalue="no"/></target></local>
    <replaces call-id="old@127.0.0.1" local-tag="a" remote-tag="b"/><referred-by>sip:1002@127.0.0.1</referred-by>
  </dialog>
</dialog-info>"#,
        r#"<dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info" version="3" state="full" entity="sip:1001@127.0.0.1"><dialog id="d-1" call-id="abc@127.0.0.1" direction="recipient"><state event="cancelled" code="487">terminated</state></dialog></dialog-info>"#,
    ])
}

fn sip_dialog_info() -> Runner {
    use crate::adapters::sip::dialog_info;
    use crate::adapters::sip::mapping::Tracker;
    let mut tracker = Tracker::new(true);
    Box::new(move |input| {
        // A NOTIFY's body is read as text; bytes that are not UTF-8 are refused before.
        let Ok(text) = std::str::from_utf8(input) else {
            return outcome("rejected", "not UTF-8");
        };
        match dialog_info::parse(text) {
            Ok(info) => {
                let events = tracker.apply("rep-1001", &info, NOW);
                for dialog in &info.dialogs {
                    let _ = dialog.call();
                }
                outcome("ok", &format!("{} events", events.len().min(3)))
            }
            Err(e) => outcome("rejected", &e.to_string()),
        }
    })
}

fn sip_message_seeds() -> Vec<Vec<u8>> {
    let body = String::from_utf8(dialog_info_seeds().remove(0)).expect("text");
    vec![
        format!(
            "NOTIFY sip:cti-relay@127.0.0.1:40000 SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:5060;branch=z9hG4bKn1\r\nFrom: <sip:1001@pbx.test>;tag=nt\r\nTo: <sip:cti-relay@pbx.test>;tag=ft\r\nCall-ID: c1\r\nCSeq: 2 NOTIFY\r\nEvent: dialog\r\nSubscription-State: active;expires=600\r\nContact: <sip:127.0.0.1:5060>\r\nContent-Type: application/dialog-info+xml\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .into_bytes(),
        b"SIP/2.0 401 Unauthorized\r\nVia: SIP/2.0/TCP 127.0.0.1:40000;branch=z9hG4bKs1\r\nFrom: <sip:cti-relay@pbx.test>;tag=ft\r\nTo: <sip:1001@pbx.test>\r\nCall-ID: c1\r\nCSeq: 1 SUBSCRIBE\r\nWWW-Authenticate: Digest realm=\"pbx.test\", nonce=\"abc123\", algorithm=MD5, qop=\"auth\"\r\nContent-Length: 0\r\n\r\n".to_vec(),
        b"\r\n\r\nSIP/2.0 200 OK\r\nVia: SIP/2.0/TCP 127.0.0.1:40000;branch=z9hG4bKs2\r\nFrom: <sip:cti-relay@pbx.test>;tag=ft\r\nTo: <sip:1001@pbx.test>;tag=nt\r\nCall-ID: c1\r\nCSeq: 2 SUBSCRIBE\r\nExpires: 600\r\nContact: <sip:1001@127.0.0.1:5060>\r\nContent-Length: 0\r\n\r\nNOTIFY sip:a@b SIP/2.0\r\nCall-ID: x\r\nSubscription-State: terminated;reason=timeout\r\nContent-Length: 4\r\n\r\nabcd".to_vec(),
    ]
}

fn sip_message() -> Runner {
    use crate::adapters::sip::ua;
    Box::new(|input| {
        let mut buffer = input.to_vec();
        let mut last = outcome("ok", "nothing");
        loop {
            let before = buffer.len();
            let message = match ua::frame(&mut buffer) {
                Ok(Some(message)) => message,
                Ok(None) => break,
                Err(e) => return outcome("rejected", &e.to_string()),
            };
            assert!(
                buffer.len() < before,
                "a frame of no bytes would loop for ever"
            );
            last = match rsip::SipMessage::try_from(message.as_slice()) {
                Ok(rsip::SipMessage::Request(request)) => {
                    let _ = (
                        ua::call_id(&request),
                        ua::cseq(&request),
                        ua::to_tag(&request),
                    );
                    let _ = (ua::from_tag(&request), ua::contact_uri(&request));
                    let state = ua::header(&request, "Subscription-State")
                        .map(|s| ua::SubscriptionState::parse(&s));
                    let _ = ua::answer(&request, 200, "OK");
                    outcome("ok", &format!("request {}", state.is_some()))
                }
                Ok(rsip::SipMessage::Response(response)) => {
                    let _ = (
                        ua::call_id(&response),
                        ua::cseq(&response),
                        ua::to_tag(&response),
                    );
                    let challenge = ua::Challenge::of(&response);
                    outcome("ok", &format!("response {}", challenge.is_some()))
                }
                Err(e) => outcome("rejected", &e.to_string()),
            };
        }
        last
    })
}

// ---- the widget, V2 ------------------------------------------------------------------------

fn ws_seeds() -> Vec<Vec<u8>> {
    texts(&[
        r#"{"type":"hello","token":"eyJhbGciOiJSUzI1NiJ9.e30.c2ln","last_seq":null}"#,
        r#"{"type":"hello","token":"t","last_seq":42}"#,
        r#"{"type":"command","call_id":"call-1","action":"hold"}"#,
        r#"{"type":"command","call_id":"call-1","action":"transfer","target":"+41449990001"}"#,
        r#"{"type":"dial","number":"044 123 45 67"}"#,
        r#"{"type":"choose_match","call_id":"call-1","record_id":"r-1"}"#,
        r#"{"type":"save_wrap_up","call_id":"call-1","notes":"called back","disposition":"done"}"#,
        r#"{"type":"retry_activity","call_id":"call-1"}"#,
        r#"{"type":"confirm_consent","call_id":"call-1"}"#,
    ])
}

fn agent_ws_frame() -> Runner {
    use crate::agent::session::{Inbound, parse};
    Box::new(|input| {
        // Text frames are UTF-8 by the WebSocket protocol: tungstenite closes on others.
        let frame = match std::str::from_utf8(input) {
            Ok(text) => Inbound::Text(text.to_string()),
            Err(_) => Inbound::Binary,
        };
        match parse(&frame) {
            Ok(message) => {
                let name = format!("{message:?}");
                outcome("ok", name.split([' ', '{', '(']).next().unwrap_or(""))
            }
            Err((code, reason)) => {
                assert!(!reason.is_empty(), "a close without a reason");
                outcome(&format!("close {code}"), &reason)
            }
        }
    })
}

fn v2_event_seeds() -> Vec<Vec<u8>> {
    texts(&[
        r#"{"id":"ec7e11d8","specversion":"0.2","type":"sap.crm.custom.event.updateAccount","source":"https://my1.crm.cloud.sap","subject":"11ed-acc-1","time":"2026-12-02T10:00:00Z","datacontenttype":"application/json","data":{"currentImage":{"id":"11ed-acc-1","formattedName":"Acme"}}}"#,
        r#"[{"specversion":"0.2","id":"e-2","type":"sap.crm.contactpersonservice.event.updateContactPerson","subject":"c-1","data":{"beforeImage":{"id":"c-1"}}},{"specversion":"0.2","id":"e-3","type":"x.deleteIndividualCustomer","subject":"ic-1"}]"#,
        r#"[{"entity":"sap.ssc.contactpersonservice.entity.contactPerson","operation":"update","id":"c-1","data":{"id":"c-1"}}]"#,
        r#"{"specversion":"0.2","id":"e-4","type":"x.updateOpportunity","subject":"o"}"#,
    ])
}

fn v2_events() -> Runner {
    use crate::api::v2_events::parse;
    Box::new(|input| match parse(input) {
        Ok(parsed) => outcome(
            "ok",
            &format!("{:?}", parsed.first().map(std::mem::discriminant)),
        ),
        Err(e) => {
            assert!(!e.to_string().is_empty(), "a rejection without a reason");
            outcome("rejected", &e.to_string())
        }
    })
}

fn v2_events_http() -> Runner {
    use base64::Engine as _;
    let http = Http::new("generic");
    let credentials =
        base64::engine::general_purpose::STANDARD.encode("v2-events:demo-v2-events-secret");
    Box::new(move |input| {
        let request = post("/v1/tenants/fuzz-generic/v2-events")
            .header("authorization", format!("Basic {credentials}"))
            .body(Body::from(input.to_vec()))
            .expect("a request");
        http.send(request)
    })
}

fn v2_answer_seeds() -> Vec<Vec<u8>> {
    texts(&[
        r#"{"value":[{"id":"11ed-acc-1","displayId":"1001","formattedName":"Acme AG","phoneNumber":{"formattedNumberDescription":"+41 44 123 45 67","normalisedNumberDescription":"+41441234567","countryCode":"CH"},"mobileNumber":{"formattedNumberDescription":"079 123 45 67"},"ownerId":"e-1","adminData":{"updatedOn":"2026-12-01T10:00:00Z"}}],"count":1}"#,
        r#"{"value":[{"id":"c-1","displayId":"2001","formattedName":"Anna Muster","accountId":"11ed-acc-1","accountDisplayId":"1001","accountFormattedName":"Acme AG","businessPhoneNumber":{"formattedNumberDescription":"+41 44 123 45 68"},"mobilePhoneNumber":{"formattedNumberDescription":"+41791234568","countryCode":"CH"},"adminData":{"updatedOn":"2026-12-01T10:00:00Z"}}]}"#,
        r#"{"value":[{"id":"o-1","displayId":"3001","name":"Big deal","account":{"id":"11ed-acc-1"},"lifeCycleStatus":"OPEN","expectedRevenueAmount":{"content":1000,"currencyCode":"CHF"},"closeDate":"2026-12-31"}]}"#,
        r#"{"value":[{"id":"e-1","emails":[{"emailAddress":"alice@example.com"}],"employeeDisplayId":"E1"}]}"#,
        r#"{"value":[{"id":"pc-1","account":{"id":"11ed-acc-1"},"startDateTime":"2026-12-01T10:00:00Z","subject":"Call"}]}"#,
        r#"{"error":{"code":"VALIDATION_FAILED","message":"the filter is not valid"}}"#,
    ])
}

fn v2_answer() -> Runner {
    use crate::v2::client::{Versioned, error_envelope};
    use crate::v2::records;
    use cti_protocol::ws::RecordKind;
    Box::new(|input| {
        // An error answer's envelope (or raw text) is always read.
        let (code, _message) = error_envelope(input);
        let Ok(answer) = serde_json::from_slice::<Value>(input) else {
            return outcome("rejected", "not JSON");
        };
        let items: Vec<&Value> = match answer.get("value") {
            Some(Value::Array(items)) => items.iter().collect(),
            Some(one) => vec![one],
            None => vec![&answer],
        };
        let mut found = 0;
        for item in items {
            let _ = Versioned::from_record(item.clone());
            for kind in [
                RecordKind::Account,
                RecordKind::Contact,
                RecordKind::IndividualCustomer,
            ] {
                found += records::phone_fields(kind, item).len();
                if records::caller_record(kind, item).is_some() {
                    found += 1;
                }
            }
            let _ = records::owner_id(item);
            let _ = records::employee_email_and_id(item);
            let _ = records::opportunity_account(item);
            let _ = records::call_account_and_start(item);
            let _ = records::opportunity(item);
            let _ = records::interaction(item);
        }
        outcome("ok", &format!("{code} {}", found.min(3)))
    })
}

fn phone_seeds() -> Vec<Vec<u8>> {
    texts(&[
        "+41 44 123 45 67",
        "044 123 45 67",
        "0041441234567",
        "+1 (650) 253-0000 ext. 123",
        "079 123 45 67",
        "tel:+41-44-123-45-67",
        "+49 30 1234567",
        "(020) 7946 0958",
    ])
}

fn phone_number() -> Runner {
    use crate::numbers::normalize::{DefaultRegion, looks_like_e164, normalize, to_e164};
    let regions: Vec<DefaultRegion> = ["CH", "US", "DE", "GB", "IN"]
        .iter()
        .map(|r| DefaultRegion::parse(r).expect("a region"))
        .collect();
    Box::new(move |input| {
        // Numbers reach the relay as text (JSON strings, headers, XML): never as raw bytes.
        let text = String::from_utf8_lossy(input);
        let mut last = outcome("rejected", "");
        for region in &regions {
            match normalize(&text, region) {
                Ok(normalized) => {
                    assert!(
                        looks_like_e164(&normalized.e164),
                        "{:?} normalised to {:?}",
                        text,
                        normalized.e164
                    );
                    // The key is a fixed point: normalising it again gives itself.
                    let again = to_e164(&normalized.e164, region);
                    assert_eq!(
                        again.as_deref(),
                        Ok(normalized.e164.as_str()),
                        "{text:?} in {region:?}"
                    );
                    last = outcome("ok", normalized.region.as_deref().unwrap_or("-"));
                }
                Err(e) => {
                    assert!(!e.to_string().is_empty(), "a rejection without a reason");
                    last = outcome("rejected", e.code());
                }
            }
        }
        last
    })
}
