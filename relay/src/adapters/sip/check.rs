//! The admin page's connection test for a SIP PBX: one fetch of the first rep's dialog state
//! (a SUBSCRIBE with `Expires: 0`, RFC 6665 section 4.4.3), authenticated as the connector
//! authenticates. It proves in one transaction what the connector needs: the server is
//! reachable over the tenant's transport, takes the relay's digest credentials and offers the
//! dialog event package for the rep's address of record, and it leaves no subscription behind.

use std::time::Duration;

use tokio::time::Instant;

use super::Settings;
use super::ua::{self, Challenge, Subscribe, Wire};

/// How long the whole transaction may take: the connector's transaction timeout would keep an
/// administrator waiting half a minute, and a server that answers at all answers in far less.
const LIMIT: Duration = Duration::from_secs(8);

/// What the server said in the end: its final answer's code and reason.
fn status_of(response: &rsip::Response) -> (u16, String) {
    let code = response.status_code().code();
    (code, response.status_code().to_string())
}

/// Runs the fetch; the answer describes what worked, the error what did not (never the
/// password).
pub(crate) async fn connection(settings: &Settings) -> Result<String, String> {
    let (rep, aor) = settings
        .sip_reps
        .iter()
        .next()
        .map(|(rep, aor)| (rep.clone(), aor.trim().to_string()))
        .ok_or("no reps are configured")?;
    let uri = rsip::Uri::try_from(aor.as_str())
        .map_err(|e| format!("{aor:?} (the address of {rep}) is not a SIP URI: {e}"))?;
    let (host, port) = settings.server();
    let mut wire = settings.connect().await?;
    let from = settings.identity();
    let (call_id, from_tag) = (format!("{}@cti-relay", ua::token()), ua::token());
    let mut cseq = 1;
    let mut challenge: Option<Challenge> = None;
    let deadline = Instant::now() + LIMIT;
    loop {
        let authorization = challenge.as_ref().map(|c| {
            c.answer(
                &settings.sip_username,
                &settings.sip_password,
                rsip::Method::Subscribe,
                &uri,
            )
        });
        let branch = ua::token();
        let request = ua::subscribe(
            &wire,
            &Subscribe {
                target: &aor,
                aor: &aor,
                from: &from,
                from_tag: &from_tag,
                to_tag: None,
                call_id: &call_id,
                cseq,
                expires: 0,
                branch: &branch,
                authorization: authorization.as_deref(),
            },
        );
        let response = transaction(&mut wire, request.as_bytes(), &call_id, cseq, deadline)
            .await
            .map_err(|e| format!("{host}:{port}: {e}"))?;
        let (code, reason) = status_of(&response);
        match code {
            200..=299 => {
                return Ok(format!(
                    "the SIP server at {host}:{port} accepted the account {:?} and a dialog \
                     subscription for {aor} ({rep})",
                    settings.sip_username
                ));
            }
            401 | 407 if challenge.is_none() => {
                challenge = Some(Challenge::of(&response).ok_or_else(|| {
                    format!("{host}:{port} answered {code} without a digest challenge")
                })?);
                cseq += 1;
            }
            401 | 407 => {
                return Err(format!(
                    "the SIP server at {host}:{port} refused the digest credentials of {:?}",
                    settings.sip_username
                ));
            }
            489 => {
                return Err(format!(
                    "the SIP server at {host}:{port} does not offer the dialog event package \
                     ({reason}): it needs a presence module that serves Event: dialog"
                ));
            }
            _ => {
                return Err(format!(
                    "the SIP server at {host}:{port} refused a dialog subscription for {aor} \
                     as {:?}: {reason}",
                    settings.sip_username
                ));
            }
        }
    }
}

/// Sends `request` (again over UDP until answered, as RFC 3261's timer A asks) and returns its
/// final answer. NOTIFYs the fetch brings are answered 200 and passed over.
async fn transaction(
    wire: &mut Wire,
    request: &[u8],
    call_id: &str,
    cseq: u32,
    deadline: Instant,
) -> Result<rsip::Response, String> {
    let mut attempts = 0;
    wire.send(request)
        .await
        .map_err(|e| format!("sending: {e}"))?;
    let mut resend = Instant::now() + ua::retransmit_after(0);
    loop {
        let wake = if wire.transport == super::Transport::Udp {
            resend.min(deadline)
        } else {
            deadline
        };
        let bytes = tokio::select! {
            received = wire.recv() => received.map_err(|e| format!("the connection: {e}"))?,
            () = tokio::time::sleep_until(wake) => {
                if Instant::now() >= deadline {
                    return Err(format!("no answer within {} s", LIMIT.as_secs()));
                }
                attempts += 1;
                resend = Instant::now() + ua::retransmit_after(attempts);
                wire.send(request).await.map_err(|e| format!("sending: {e}"))?;
                continue;
            }
        };
        match rsip::SipMessage::try_from(bytes.as_slice()) {
            Ok(rsip::SipMessage::Response(response)) => {
                let ours = ua::call_id(&response).as_deref() == Some(call_id)
                    && ua::cseq(&response) == Some(cseq);
                if ours && response.status_code().code() >= 200 {
                    return Ok(response);
                }
            }
            Ok(rsip::SipMessage::Request(notify)) => {
                let answer = if notify.method == rsip::Method::Notify
                    && ua::call_id(&notify).as_deref() == Some(call_id)
                {
                    ua::answer(&notify, 200, "OK")
                } else {
                    ua::answer(&notify, 481, "Call/Transaction Does Not Exist")
                };
                wire.send(answer.as_bytes())
                    .await
                    .map_err(|e| format!("sending: {e}"))?;
            }
            // Something unreadable on the way: the answer may still come.
            Err(_) => {}
        }
    }
}
