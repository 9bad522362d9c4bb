//! The tenant's HTTP face under `/sim/teams`: Entra ID's token endpoint, Graph v1.0 as the relay
//! calls it (a valid bearer token on every request; errors in Graph's shape
//! `{"error":{"code","message","innerError"}}`), the Bot Framework's OpenID documents, and the
//! simulator's controls.

// A refusal is the finished Graph answer, returned as is; boxing it buys nothing on this path.
#![allow(clippy::result_large_err)]

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use tokio::sync::oneshot;

use super::{
    BOT_ISSUER, Call, GRAPH_SCOPE, MAX_SUBSCRIPTION_MINUTES, Outgoing, Subscription, TENANT_ID,
    Teams, new_call_id, now_rfc3339,
};
use crate::Sim;

/// Graph waits this long for a validation answer (reference 3.2).
const VALIDATION_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a control waits for the relay to take a notification.
const ACK_TIMEOUT: Duration = Duration::from_secs(15);

fn teams(sim: &Sim) -> &Teams {
    &sim.teams
}

/// A refusal in Graph's error shape.
fn graph_error(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        Json(json!({"error": {"code": code, "message": message,
            "innerError": {"date": now_rfc3339(),
                           "request-id": uuid::Uuid::new_v4().to_string()}}})),
    )
        .into_response()
}

fn not_found(what: &str) -> Response {
    graph_error(
        StatusCode::NOT_FOUND,
        "itemNotFound",
        &format!("{what} not found"),
    )
}

fn bad_request(message: &str) -> Response {
    graph_error(StatusCode::BAD_REQUEST, "BadRequest", message)
}

pub fn routes() -> Router<Arc<Sim>> {
    let graph = Router::new()
        .route("/users/{id}", get(user))
        .route("/communications/calls", post(create_call))
        .route(
            "/communications/calls/{id}",
            get(get_call).delete(delete_call),
        )
        .route("/communications/calls/{id}/answer", post(answer))
        .route("/communications/calls/{id}/reject", post(reject))
        .route("/communications/calls/{id}/redirect", post(redirect))
        .route("/communications/calls/{id}/transfer", post(transfer))
        .route("/communications/callRecords/{id}", get(call_record))
        .route("/communications/presences/{id}", get(presence))
        .route(
            "/communications/getPresencesByUserId",
            post(presences_by_user_id),
        )
        .route(
            "/subscriptions",
            post(create_subscription).get(list_subscriptions),
        )
        .route(
            "/subscriptions/{id}",
            get(get_subscription)
                .patch(renew_subscription)
                .delete(delete_subscription),
        )
        .route("/subscriptions/{id}/reauthorize", post(reauthorize));
    Router::new()
        .nest("/sim/teams/graph/v1.0", graph)
        .route("/sim/teams/{tenant}/oauth2/v2.0/token", post(token))
        .route(
            "/sim/teams/botframework/.well-known/openidconfiguration",
            get(openid),
        )
        .route("/sim/teams/botframework/keys", get(keys))
        .route("/sim/teams/calls", post(ring).get(list_calls))
        .route("/sim/teams/calls/{id}/hangup", post(hangup_control))
        .route("/sim/teams/calls/{id}/answer", post(answer_control))
        .route("/sim/teams/calls/{id}/transfer", post(transfer_control))
        .route("/sim/teams/subscriptions", get(list_subscriptions_control))
        .route("/sim/teams/users/{mail}/policy", post(policy_control))
        .route("/sim/teams/faults", post(faults))
}

/// `POST /{tenant}/oauth2/v2.0/token`: client credentials with a secret, Entra ID's errors.
async fn token(
    State(sim): State<Arc<Sim>>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let t = teams(&sim);
    if !tenant.eq_ignore_ascii_case(TENANT_ID) {
        return aad(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            90002,
            &format!("Tenant '{tenant}' not found."),
        );
    }
    let form_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !form_type.starts_with("application/x-www-form-urlencoded") {
        return aad(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            900144,
            "The request body must contain the following parameter: 'grant_type'.",
        );
    }
    let text = String::from_utf8_lossy(&body);
    let Ok(url) = reqwest::Url::parse(&format!("http://form/?{text}")) else {
        return aad(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            900144,
            "Malformed form.",
        );
    };
    let field = |name: &str| {
        url.query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    };
    let grant = field("grant_type").unwrap_or_default();
    if !matches!(grant.as_str(), "client_credentials" | "refresh_token") {
        return aad(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            70003,
            "The app requested an unsupported grant type.",
        );
    }
    if field("client_id").as_deref() != Some(t.client_id.as_str()) {
        return aad(
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            700016,
            "Application was not found in the directory.",
        );
    }
    // A confidential client authenticates on every grant: a secret or a certificate's assertion.
    let endpoint = format!(
        "{}/sim/teams/{tenant}/oauth2/v2.0/token",
        base_url(&headers)
    );
    if let Err(refused) = client_authenticated(t, &endpoint, &field) {
        return refused;
    }
    if grant == "refresh_token" {
        let scope = field("scope").unwrap_or_default();
        if !scope.split(' ').any(|s| {
            s.eq_ignore_ascii_case("https://graph.microsoft.com/Presence.Read.All")
                || s.eq_ignore_ascii_case("Presence.Read.All")
        }) {
            return aad(
                StatusCode::BAD_REQUEST,
                "invalid_scope",
                70011,
                "The provided request must include a 'scope' input parameter.",
            );
        }
        let Some(next) = field("refresh_token").and_then(|r| t.rotate_refresh(&r)) else {
            return aad(
                StatusCode::BAD_REQUEST,
                "invalid_grant",
                9002313,
                "Invalid request. Request is malformed or invalid.",
            );
        };
        return Json(
            json!({"token_type": "Bearer", "scope": scope, "expires_in": 3599,
            "ext_expires_in": 3599, "access_token": t.issue(Some(super::DEMO_SERVICE_USER)),
            "refresh_token": next}),
        )
        .into_response();
    }
    if field("scope").as_deref() != Some(GRAPH_SCOPE) {
        return aad(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            1002012,
            "The provided value for scope is not valid. Client credential flows must have a \
             scope value with /.default suffixed to the resource identifier.",
        );
    }
    Json(
        json!({"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599,
                "access_token": t.issue_token()}),
    )
    .into_response()
}

/// Entra ID's error body: `{"error","error_description":"AADSTS{code}: ...","error_codes"}`.
pub(crate) fn aad(status: StatusCode, error: &str, code: u32, description: &str) -> Response {
    (
        status,
        Json(json!({"error": error,
            "error_description": format!("AADSTS{code}: {description}"),
            "error_codes": [code], "timestamp": now_rfc3339()})),
    )
        .into_response()
}

/// The client-assertion type of a certificate credential.
const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// The client's own authentication at the token endpoint: its secret, or a JWT signed with a
/// certificate uploaded to the app registration (Microsoft identity platform "certificate
/// credentials": header `x5t`, claims `aud` = this endpoint, `iss` = `sub` = the client id,
/// `jti`, `nbf`, `exp`). Refusals in Entra ID's shape; the codes AADSTS700027 (signature, unknown
/// key) and 700024 (time range) are Entra's, the others' numbers are inferred.
fn client_authenticated(
    t: &Teams,
    endpoint: &str,
    field: &dyn Fn(&str) -> Option<String>,
) -> Result<(), Response> {
    let invalid = |code: u32, description: &str| {
        Err(aad(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            code,
            description,
        ))
    };
    if let Some(kind) = field("client_assertion_type") {
        if kind != JWT_BEARER {
            return Err(aad(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                50027,
                "Invalid client_assertion_type.",
            ));
        }
        let assertion = field("client_assertion").unwrap_or_default();
        let Ok(header) = jsonwebtoken::decode_header(&assertion) else {
            return invalid(50027, "JWT token is invalid or malformed.");
        };
        if header.alg != jsonwebtoken::Algorithm::RS256 {
            return invalid(50027, "JWT token is invalid or malformed.");
        }
        let x5t = header.x5t.unwrap_or_default();
        let Some(key) = t.certificate(&x5t) else {
            return invalid(
                700027,
                &format!(
                    "Client assertion contains an invalid signature. [Reason - The key was not \
                     found., Thumbprint of key used by client: '{x5t}']"
                ),
            );
        };
        let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
        validation.leeway = 0;
        validation.validate_nbf = true;
        validation.validate_aud = false;
        validation.set_required_spec_claims(&["exp", "nbf", "aud", "iss", "sub"]);
        let claims = match jsonwebtoken::decode::<Value>(&assertion, &key, &validation) {
            Ok(data) => data.claims,
            Err(err) => {
                return match err.kind() {
                    jsonwebtoken::errors::ErrorKind::ExpiredSignature
                    | jsonwebtoken::errors::ErrorKind::ImmatureSignature => invalid(
                        700024,
                        "Client assertion is not within its valid time range.",
                    ),
                    jsonwebtoken::errors::ErrorKind::InvalidSignature => invalid(
                        700027,
                        "Client assertion contains an invalid signature. [Reason - The provided \
                         signature value did not match the expected signature value.]",
                    ),
                    _ => invalid(50027, "JWT token is invalid or malformed."),
                };
            }
        };
        if claims["aud"].as_str() != Some(endpoint) {
            return invalid(
                700016,
                &format!("The audience of the client assertion is not '{endpoint}'."),
            );
        }
        let client = t.client_id.as_str();
        if claims["iss"].as_str() != Some(client) || claims["sub"].as_str() != Some(client) {
            return invalid(
                700021,
                "Client assertion application identifier doesn't match 'client_id' parameter.",
            );
        }
        if claims["jti"].as_str().is_none_or(str::is_empty) {
            return invalid(50027, "JWT token is invalid or malformed: no jti.");
        }
        if field("client_secret").is_some() {
            return Err(aad(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                50027,
                "Only one client authentication method may be used.",
            ));
        }
        return Ok(());
    }
    if field("client_secret").as_deref() != Some(t.client_secret.as_str()) {
        return Err(aad(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            7000215,
            "Invalid client secret provided.",
        ));
    }
    Ok(())
}

/// Whether the request carries a Graph token the tenant issued; else Graph's 401.
fn authorized(t: &Teams, headers: &HeaderMap) -> Result<(), Response> {
    issued(t, headers).map(|_| ())
}

/// The request's Graph token as the tenant issued it; else Graph's 401.
fn issued(t: &Teams, headers: &HeaderMap) -> Result<super::Issued, Response> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match token {
        Some(token) if t.token_valid(token) => t.token(token).ok_or_else(|| {
            graph_error(
                StatusCode::UNAUTHORIZED,
                "InvalidAuthenticationToken",
                "Lifetime validation failed, the token is expired.",
            )
        }),
        Some(_) => Err(graph_error(
            StatusCode::UNAUTHORIZED,
            "InvalidAuthenticationToken",
            "Access token validation failure. Invalid audience.",
        )),
        None => Err(graph_error(
            StatusCode::UNAUTHORIZED,
            "InvalidAuthenticationToken",
            "Access token is empty.",
        )),
    }
}

fn base_url(headers: &HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("127.0.0.1");
    format!("http://{host}")
}

async fn openid(headers: HeaderMap) -> Response {
    let base = base_url(&headers);
    Json(json!({
        "issuer": BOT_ISSUER,
        "authorization_endpoint": "https://invalid.botframework.com",
        "jwks_uri": format!("{base}/sim/teams/botframework/keys"),
        "id_token_signing_alg_values_supported": ["RS256"],
        "token_endpoint_auth_methods_supported": ["private_key_jwt"],
    }))
    .into_response()
}

async fn keys() -> Response {
    match super::jwks().await {
        Ok(keys) => Json(keys).into_response(),
        Err(err) => graph_error(StatusCode::INTERNAL_SERVER_ERROR, "KeyUnavailable", &err),
    }
}

async fn user(State(sim): State<Arc<Sim>>, Path(id): Path<String>, headers: HeaderMap) -> Response {
    let t = teams(&sim);
    if let Err(refused) = authorized(t, &headers) {
        return refused;
    }
    let found = t.user_by_id(&id).or_else(|| t.user_by_mail(&id));
    match found {
        Some(u) => Json(json!({
            "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#users/$entity",
            "id": u.id, "userPrincipalName": u.upn, "mail": u.mail,
            "displayName": u.display_name,
        }))
        .into_response(),
        None => graph_error(
            StatusCode::NOT_FOUND,
            "Request_ResourceNotFound",
            &format!(
                "Resource '{id}' does not exist or one of its queried reference-property objects are not present."
            ),
        ),
    }
}

fn json_body(body: &Bytes) -> Result<Value, Response> {
    serde_json::from_slice(body).map_err(|e| bad_request(&format!("Invalid request body: {e}")))
}

/// The identity of an `invitationParticipantInfo` / transfer target: a known user or a phone.
fn identity_of(t: &Teams, identity: &Value) -> Result<Value, Response> {
    if let Some(id) = identity.pointer("/user/id").and_then(Value::as_str) {
        let user = t
            .user_by_id(id)
            .ok_or_else(|| bad_request(&format!("Unknown target user {id}")))?;
        return Ok(json!({"user": {"id": user.id, "displayName": user.display_name}}));
    }
    if let Some(phone) = identity.pointer("/phone/id").and_then(Value::as_str)
        && phone.starts_with('+')
        && phone.len() > 4
        && phone[1..].chars().all(|c| c.is_ascii_digit())
    {
        return Ok(json!({"phone": {"id": phone}}));
    }
    Err(bad_request(
        "The target must be identity.user.id or identity.phone.id (E.164)",
    ))
}

/// Sends a notification about a leg and waits (within reason) until the relay took it.
async fn notify_and_wait(t: &Teams, call: &Call, change: &str) -> Result<(), String> {
    let (tx, rx) = oneshot::channel();
    t.notify_call(call, change, Some(tx));
    match tokio::time::timeout(ACK_TIMEOUT, rx).await {
        Ok(Ok(result)) => result,
        _ => Err("no answer from the relay".into()),
    }
}

/// Changes a leg under the lock and notifies the bot of its new state.
fn step(t: &Teams, id: &str, change: &str, apply: impl FnOnce(&mut Call)) -> Option<Call> {
    let call = {
        let mut state = t.lock();
        let call = state.calls.get_mut(id)?;
        apply(call);
        call.clone()
    };
    t.notify_call(&call, change, None);
    t.presence_changed(&call.user);
    Some(call)
}

/// [`step`] of a transfer: notified as Graph's transfer notifications are (the state and the
/// end's reason only, see `Teams::notify_transfer_step`).
fn transfer_step(t: &Teams, id: &str, change: &str, apply: impl FnOnce(&mut Call)) -> Option<Call> {
    let call = {
        let mut state = t.lock();
        let call = state.calls.get_mut(id)?;
        apply(call);
        call.clone()
    };
    t.notify_transfer_step(&call, change);
    t.presence_changed(&call.user);
    Some(call)
}

/// A transfer of leg `id` completed: `transferring`, `transferAccepted`, then the leg ends with
/// `resultInfo` (a blind transfer: code 0, subcode 7015 `GracefulTransferCompleted`) or with
/// `terminationReason` `AppTransferred` alone (a consultative one), as reference 3.3 gives
/// them; `outside` is the number it went to, if it left the tenant's users. Then the chain's
/// record, if it was the last leg.
fn transferred(t: &Teams, id: &str, consultative: bool, outside: Option<Value>) {
    transfer_step(t, id, "updated", |c| c.state = "transferring");
    transfer_step(t, id, "updated", |c| c.state = "transferAccepted");
    let Some(call) = transfer_step(t, id, "deleted", |c| {
        c.state = "terminated";
        if consultative {
            c.result = None;
            c.termination_reason = Some("AppTransferred");
        } else {
            c.result = Some(result(0, 7015, "GracefulTransferCompleted"));
            c.termination_reason = None;
        }
        c.handed_to = outside;
        c.ended_at = Some(now_rfc3339());
    }) else {
        return;
    };
    t.maybe_record(&call.chain);
}

/// Ends a leg with `result`, then writes the chain's record if it was the last.
fn terminate(t: &Teams, id: &str, result: Value, reason: Option<&'static str>) -> Option<Call> {
    let call = step(t, id, "deleted", |c| {
        c.state = "terminated";
        c.result = Some(result);
        c.termination_reason = reason;
        c.ended_at = Some(now_rfc3339());
    })?;
    t.maybe_record(&call.chain);
    Some(call)
}

fn result(code: u32, subcode: u32, message: &str) -> Value {
    json!({"@odata.type": "#microsoft.graph.resultInfo", "code": code, "subcode": subcode,
           "message": message})
}

/// A new incoming leg for `user` in `chain`, from `other`.
fn new_leg(chain: &str, user: &str, other: Value, policy: bool) -> Call {
    Call {
        id: new_call_id(),
        chain: chain.to_string(),
        direction: "incoming",
        user: user.to_string(),
        other,
        state: "incoming",
        answered: false,
        policy,
        result: None,
        termination_reason: None,
        started: now_rfc3339(),
        answered_at: None,
        ended_at: None,
        consult: false,
        recording: policy,
        bot_answered: false,
        bot_dropped: false,
        invited: tokio::time::Instant::now(),
        handed_to: None,
    }
}

/// The window of a recording invitation.
fn window(t: &Teams) -> Duration {
    Duration::from_millis(t.policy_answer_window_ms.load(Ordering::Relaxed))
}

/// Drops the recording invitation of leg `id` once its window passed unanswered.
fn expire_invitation(sim: &Arc<Sim>, id: &str) {
    let (sim, id) = (sim.clone(), id.to_string());
    tokio::spawn(async move {
        tokio::time::sleep(window(teams(&sim))).await;
        if teams(&sim).drop_invitation(&id) {
            tracing::info!(call = %id, "Teams recording invitation dropped unanswered");
        }
    });
}

/// A new leg in the tenant; a recording invitation's window starts.
fn invite(sim: &Arc<Sim>, leg: &Call) {
    teams(sim).lock().calls.insert(leg.id.clone(), leg.clone());
    if leg.recording {
        expire_invitation(sim, &leg.id);
    }
}

fn live_leg(t: &Teams, id: &str) -> Result<Call, Response> {
    match t.lock().calls.get(id) {
        Some(c) if c.state != "terminated" => Ok(c.clone()),
        Some(_) => Err(graph_error(
            StatusCode::BAD_REQUEST,
            "8508",
            "Call already terminated",
        )),
        None => Err(not_found(&format!("Call {id}"))),
    }
}

async fn get_call(
    State(sim): State<Arc<Sim>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let t = teams(&sim);
    if let Err(refused) = authorized(t, &headers) {
        return refused;
    }
    match t.lock().calls.get(&id) {
        Some(c) => Json(c.resource()).into_response(),
        None => not_found(&format!("Call {id}")),
    }
}

/// `POST /communications/calls`: a call the bot places. A user target rings that user (a
/// consultation from `source.identity.user`, inferred: Graph places it as the bot); a phone
/// target is click-to-dial for the rep in `source.identity.user` (inferred likewise).
async fn create_call(State(sim): State<Arc<Sim>>, headers: HeaderMap, body: Bytes) -> Response {
    let t = teams(&sim);
    if let Err(refused) = authorized(t, &headers) {
        return refused;
    }
    let body = match json_body(&body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    for field in [
        "callbackUri",
        "requestedModalities",
        "mediaConfig",
        "targets",
    ] {
        if body.get(field).is_none() {
            return bad_request(&format!("Missing required property '{field}'"));
        }
    }
    let Some(rep) = body
        .pointer("/source/identity/user/id")
        .and_then(Value::as_str)
        .and_then(|id| t.user_by_id(id))
        .cloned()
    else {
        return bad_request("source.identity.user.id must be a user of the tenant");
    };
    let target = match body
        .pointer("/targets/0/identity")
        .map(|i| identity_of(t, i))
    {
        Some(Ok(target)) => target,
        Some(Err(r)) => return r,
        None => return bad_request("targets must name one participant"),
    };
    let chain = uuid::Uuid::new_v4().to_string();
    let call = if let Some(colleague) = target.pointer("/user/id").and_then(Value::as_str) {
        let mut leg = new_leg(
            &chain,
            colleague,
            json!({"user": {"id": rep.id, "displayName": rep.display_name}}),
            true,
        );
        leg.consult = true;
        // The bot's own call: nothing to record, the colleague answers it.
        leg.recording = false;
        leg
    } else {
        let mut leg = new_leg(&chain, &rep.id, target, true);
        leg.recording = false;
        leg.direction = "outgoing";
        leg.state = "establishing";
        leg
    };
    t.lock().calls.insert(call.id.clone(), call.clone());
    t.notify_call(&call, "created", None);
    (StatusCode::CREATED, Json(call.resource())).into_response()
}

async fn answer(
    State(sim): State<Arc<Sim>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let t = teams(&sim);
    if let Err(refused) = authorized(t, &headers) {
        return refused;
    }
    let body = match json_body(&body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    for field in ["callbackUri", "acceptedModalities", "mediaConfig"] {
        if body.get(field).is_none() {
            return bad_request(&format!("Missing required property '{field}'"));
        }
    }
    let call = match live_leg(t, &id) {
        Ok(c) => c,
        Err(r) => return r,
    };
    if call.recording {
        return answer_invitation(t, &call);
    }
    if call.state != "incoming" {
        return bad_request("Call is not in incoming state");
    }
    answer_leg(t, &id);
    StatusCode::ACCEPTED.into_response()
}

/// The bot answers a recording invitation: its own call is established, the rep's is as it
/// was (still ringing, or answered already: the roster then says so). Past the window the
/// invitation is gone.
fn answer_invitation(t: &Teams, call: &Call) -> Response {
    if call.bot_dropped || (!call.bot_answered && call.invited.elapsed() > window(t)) {
        t.drop_invitation(&call.id);
        return not_found(&format!("Call {}", call.id));
    }
    if call.bot_answered {
        return bad_request("Call is not in incoming state");
    }
    let Some(answered) = step(t, &call.id, "updated", |c| c.bot_answered = true) else {
        return not_found(&format!("Call {}", call.id));
    };
    if answered.answered {
        t.notify_participants(&answered);
    }
    StatusCode::ACCEPTED.into_response()
}

/// The rep answers a leg: for a recorded leg the rep joins the bot's roster; for another,
/// `establishing` then `established`.
fn answer_leg(t: &Teams, id: &str) {
    let recorded = t.lock().calls.get(id).is_some_and(|c| c.recording);
    if recorded {
        let call = {
            let mut state = t.lock();
            let Some(call) = state.calls.get_mut(id) else {
                return;
            };
            call.state = "established";
            call.answered = true;
            call.answered_at = Some(now_rfc3339());
            call.clone()
        };
        t.notify_participants(&call);
        t.presence_changed(&call.user);
        return;
    }
    step(t, id, "updated", |c| c.state = "establishing");
    step(t, id, "updated", |c| {
        c.state = "established";
        c.answered = true;
        c.answered_at = Some(now_rfc3339());
    });
}

async fn reject(
    State(sim): State<Arc<Sim>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let t = teams(&sim);
    if let Err(refused) = authorized(t, &headers) {
        return refused;
    }
    if let Err(r) = json_body(&body) {
        return r;
    }
    match live_leg(t, &id) {
        Ok(c) if c.state == "incoming" => {}
        Ok(_) => return bad_request("Call is not in incoming state"),
        Err(r) => return r,
    }
    // Inferred: a rejected call ends with a SIP-like 603 in resultInfo.
    terminate(t, &id, result(603, 0, "Call rejected"), None);
    StatusCode::ACCEPTED.into_response()
}

async fn redirect(
    State(sim): State<Arc<Sim>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let t = teams(&sim);
    if let Err(refused) = authorized(t, &headers) {
        return refused;
    }
    let body = match json_body(&body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let call = match live_leg(t, &id) {
        Ok(c) => c,
        Err(r) => return r,
    };
    if call.state != "incoming" {
        return bad_request("Only an incoming call can be redirected");
    }
    let target = match body
        .pointer("/targets/0/identity")
        .map(|i| identity_of(t, i))
    {
        Some(Ok(target)) => target,
        Some(Err(r)) => return r,
        None => return bad_request("Missing required property 'targets'"),
    };
    // Inferred: a redirected leg ends with 302 in resultInfo.
    terminate(t, &id, result(302, 0, "Redirected"), None);
    if let Some(user) = target.pointer("/user/id").and_then(Value::as_str) {
        let leg = new_leg(&call.chain, user, call.other.clone(), true);
        invite(&sim, &leg);
        t.notify_call(&leg, "created", None);
    }
    StatusCode::ACCEPTED.into_response()
}

/// `POST /transfer`: blind (`transferTarget` only) or consultative (`transferTarget.replacesCallId`
/// names the consultation's call, optionally with `transferee`).
async fn transfer(
    State(sim): State<Arc<Sim>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let t = teams(&sim);
    if let Err(refused) = authorized(t, &headers) {
        return refused;
    }
    let body = match json_body(&body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let call = match live_leg(t, &id) {
        Ok(c) => c,
        Err(r) => return r,
    };
    if call.state != "established" {
        return bad_request("Call must be established to be transferred");
    }
    let Some(target) = body.get("transferTarget") else {
        return bad_request("Missing required property 'transferTarget'");
    };
    let identity = match target.get("identity").map(|i| identity_of(t, i)) {
        Some(Ok(identity)) => identity,
        Some(Err(r)) => return r,
        None => return bad_request("transferTarget.identity is required"),
    };
    let replaces = target
        .get("replacesCallId")
        .and_then(Value::as_str)
        .map(str::to_string);
    // The consultation is with the target: a colleague's leg rung by the bot, or the rep's own
    // call to the number (its far end).
    let with_target = |c: &Call| match identity.pointer("/phone/id").and_then(Value::as_str) {
        Some(phone) => {
            c.direction == "outgoing"
                && c.user == call.user
                && c.other.pointer("/phone/id").and_then(Value::as_str) == Some(phone)
        }
        None => identity.pointer("/user/id").and_then(Value::as_str) == Some(c.user.as_str()),
    };
    let consult = match &replaces {
        Some(b) => match live_leg(t, b) {
            Ok(c) if c.state == "established" && with_target(&c) => Some(c),
            Ok(_) => {
                return bad_request(
                    "replacesCallId must be an established call with the transfer target",
                );
            }
            Err(r) => return r,
        },
        None => None,
    };
    let outside = identity.get("phone").map(|_| identity.clone());
    match consult {
        Some(b) if outside.is_some() => {
            transferred(t, &id, true, outside);
            // The caller now talks with the number consulted; the rep's consultation call is
            // replaced and ends (inferred: as an application's hang-up, code 200).
            terminate(
                t,
                &b.id,
                result(200, 0, "The call was replaced by a transfer"),
                None,
            );
        }
        Some(b) => {
            transferred(t, &id, true, None);
            // The consultation's leg now carries the caller, in the call's chain.
            step(t, &b.id, "updated", |c| {
                c.chain = call.chain.clone();
                c.other = call.other.clone();
                c.consult = false;
            });
            t.maybe_record(&b.chain);
        }
        None => hand_on(&sim, &call, &identity),
    }
    StatusCode::ACCEPTED.into_response()
}

/// A blind transfer of the established `call` to `identity` (a user, or a number outside).
fn hand_on(sim: &Arc<Sim>, call: &Call, identity: &Value) {
    let t = teams(sim);
    let outside = identity.get("phone").map(|_| identity.clone());
    // The colleague's leg is in the call before the transferor's ends: the call (and its
    // record, written once every leg ended) goes on with them.
    let colleague = identity
        .pointer("/user/id")
        .and_then(Value::as_str)
        .map(|user| new_leg(&call.chain, user, call.other.clone(), t.recorded(user)));
    if let Some(leg) = &colleague {
        invite(sim, leg);
    }
    transferred(t, &call.id, false, outside);
    if let Some(leg) = colleague {
        t.notify_call(&leg, "created", None);
    }
}

/// `POST /sim/teams/calls/{id}/transfer {"target"}`: the rep transfers their established leg
/// (`id` the leg or the chain) in the Teams client, blind, to a colleague (`bob@example.com`)
/// or a number (E.164). The bot hears the transfer's notifications, which name no target.
async fn transfer_control(
    State(sim): State<Arc<Sim>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let t = teams(&sim);
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return sim_error(StatusCode::BAD_REQUEST, "body must be JSON {target}");
    };
    let target = body["target"].as_str().unwrap_or_default();
    let identity = if let Some(user) = t.user_by_mail(target) {
        json!({"user": {"id": user.id, "displayName": user.display_name}})
    } else if target.starts_with('+')
        && target.len() > 4
        && target[1..].chars().all(|c| c.is_ascii_digit())
    {
        json!({"phone": {"id": target}})
    } else {
        return sim_error(
            StatusCode::BAD_REQUEST,
            "`target` must be a user's mail or an E.164 number",
        );
    };
    let Some(call) = legs_of(t, &id)
        .into_iter()
        .find(|c| c.state == "established" && c.answered && !c.consult)
    else {
        return sim_error(StatusCode::CONFLICT, "no answered call to transfer");
    };
    hand_on(&sim, &call, &identity);
    StatusCode::NO_CONTENT.into_response()
}

/// `POST /sim/teams/users/{mail}/policy {"recorded":bool}`: the user's calls are recorded by
/// the bot from now on, or not.
async fn policy_control(
    State(sim): State<Arc<Sim>>,
    Path(mail): Path<String>,
    body: Bytes,
) -> Response {
    let t = teams(&sim);
    let Some(recorded) = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|b| b["recorded"].as_bool())
    else {
        return sim_error(
            StatusCode::BAD_REQUEST,
            "body must be JSON {\"recorded\": bool}",
        );
    };
    let Some(user) = t.user_by_mail(&mail) else {
        return sim_error(StatusCode::NOT_FOUND, "no such user");
    };
    t.set_recorded(&user.id, recorded);
    StatusCode::NO_CONTENT.into_response()
}

async fn delete_call(
    State(sim): State<Arc<Sim>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let t = teams(&sim);
    if let Err(refused) = authorized(t, &headers) {
        return refused;
    }
    if let Err(r) = live_leg(t, &id) {
        return r;
    }
    // Inferred: an ordinary end is code 200 in resultInfo.
    terminate(
        t,
        &id,
        result(200, 0, "The call was ended by the application"),
        None,
    );
    StatusCode::NO_CONTENT.into_response()
}

async fn call_record(
    State(sim): State<Arc<Sim>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let t = teams(&sim);
    if let Err(refused) = authorized(t, &headers) {
        return refused;
    }
    match t.record(&id) {
        Some(record) => Json(record).into_response(),
        None => not_found(&format!("callRecord {id}")),
    }
}

/// Graph's validation request to `url`: the token back, URL-decoded, as text/plain, in 10 s.
async fn validate(t: &Teams, url: &str) -> Result<(), String> {
    let token = format!(
        "Validation: Testing client application reachability for subscription Request-Id: {}",
        uuid::Uuid::new_v4()
    );
    let mut target = reqwest::Url::parse(url).map_err(|e| e.to_string())?;
    target
        .query_pairs_mut()
        .append_pair("validationToken", &token);
    let response = t
        .http
        .post(target)
        .header(header::CONTENT_TYPE, "text/plain; charset=utf-8")
        .timeout(VALIDATION_TIMEOUT)
        .send()
        .await
        .map_err(|e| e.without_url().to_string())?;
    let status = response.status();
    let text_plain = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/plain"));
    let body = response.text().await.unwrap_or_default();
    if status != StatusCode::OK || !text_plain || body != token {
        return Err(format!(
            "answered {status}, text/plain {text_plain}, token echoed {}",
            body == token
        ));
    }
    Ok(())
}

fn expiration(
    value: Option<&Value>,
    max_minutes: i64,
) -> Result<(String, time::OffsetDateTime), Response> {
    let text = value
        .and_then(Value::as_str)
        .ok_or_else(|| bad_request("Missing required property 'expirationDateTime'"))?;
    let at = time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .map_err(|_| bad_request("expirationDateTime is not a valid date"))?;
    let now = time::OffsetDateTime::now_utc();
    if at <= now {
        return Err(bad_request(
            "Subscription expiration must be in the future.",
        ));
    }
    if at > now + time::Duration::minutes(max_minutes) {
        return Err(graph_error(
            StatusCode::BAD_REQUEST,
            "ExtensionError",
            &format!("Subscription expiration can only be {max_minutes} minutes in the future."),
        ));
    }
    Ok((text.to_string(), at))
}

/// The expiry granted: as asked, or shorter where a test shortened subscriptions' life (Graph
/// answers with the `expirationDateTime` it granted).
fn granted(t: &Teams, asked: (String, time::OffsetDateTime)) -> (String, time::OffsetDateTime) {
    let cap = t.max_subscription_secs.load(Ordering::Relaxed);
    if cap == 0 {
        return asked;
    }
    let latest = time::OffsetDateTime::now_utc() + time::Duration::seconds(cap as i64);
    if asked.1 <= latest {
        return asked;
    }
    let text = latest
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    (text, latest)
}

async fn create_subscription(
    State(sim): State<Arc<Sim>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let t = teams(&sim);
    if let Err(refused) = authorized(t, &headers) {
        return refused;
    }
    let body = match json_body(&body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let resource = body["resource"].as_str().unwrap_or_default().to_string();
    let change_type = body["changeType"].as_str().unwrap_or_default().to_string();
    let mut users = Vec::new();
    let mut max_minutes = MAX_SUBSCRIPTION_MINUTES;
    if resource.trim_start_matches('/') == "communications/callRecords" {
        if change_type.is_empty()
            || !change_type
                .split(',')
                .all(|c| matches!(c.trim(), "created" | "updated"))
        {
            return bad_request("changeType must be created and/or updated for callRecords");
        }
    } else if let Some(ids) = presence_resource(&resource) {
        // Graph takes presence subscriptions with delegated permission only (its presence
        // notifications page: application permissions "Not supported").
        match issued(t, &headers) {
            Ok(token) if token.user.is_some() => {}
            Ok(_) => {
                return graph_error(
                    StatusCode::FORBIDDEN,
                    "ExtensionError",
                    "Operation: Create; Exception: [Status Code: Forbidden; Reason: \
                     Application permissions are not supported for presence subscriptions]",
                );
            }
            Err(r) => return r,
        }
        if change_type.trim() != "updated" {
            return bad_request("changeType must be 'updated' for presence");
        }
        if ids.is_empty() || ids.len() > super::MAX_PRESENCE_USERS {
            return bad_request("A presence subscription takes 1 to 650 user ids");
        }
        for id in &ids {
            if t.user_by_id(id).is_none() {
                return bad_request(&format!("Invalid user id '{id}' in the resource"));
            }
        }
        if body["includeResourceData"] == true && body.get("encryptionCertificate").is_none() {
            return bad_request(
                "encryptionCertificate and encryptionCertificateId are required when \
                 includeResourceData is true",
            );
        }
        users = ids;
        max_minutes = super::MAX_PRESENCE_SUBSCRIPTION_MINUTES;
    } else {
        return bad_request(&format!("Unsupported resource '{resource}'"));
    }
    let Some(notification_url) = body["notificationUrl"].as_str().map(str::to_string) else {
        return bad_request("Missing required property 'notificationUrl'");
    };
    let lifecycle_url = body["lifecycleNotificationUrl"]
        .as_str()
        .map(str::to_string);
    let client_state = body["clientState"].as_str().map(str::to_string);
    if client_state.as_ref().is_some_and(|s| s.len() > 128) {
        return bad_request("clientState must be at most 128 characters");
    }
    let (expiration, expires_at) = match expiration(body.get("expirationDateTime"), max_minutes) {
        Ok(e) => granted(t, e),
        Err(r) => return r,
    };
    for url in std::iter::once(&notification_url).chain(lifecycle_url.as_ref()) {
        if let Err(why) = validate(t, url).await {
            tracing::warn!(%why, "Teams subscription validation failed");
            return graph_error(
                StatusCode::BAD_REQUEST,
                "ValidationError",
                "Subscription validation request failed. Notification endpoint must respond \
                 with 200 OK to validation request.",
            );
        }
    }
    let sub = Subscription {
        id: uuid::Uuid::new_v4().to_string(),
        resource,
        change_type,
        notification_url,
        lifecycle_url,
        client_state,
        expiration,
        expires_at,
        users,
    };
    t.lock().subscriptions.insert(sub.id.clone(), sub.clone());
    t.created_subscriptions.fetch_add(1, Ordering::Relaxed);
    (StatusCode::CREATED, Json(sub.json())).into_response()
}

/// The user ids of a presence resource: `/communications/presences/{id}` or
/// `/communications/presences?$filter=id in ('a','b')`; None for another resource.
fn presence_resource(resource: &str) -> Option<Vec<String>> {
    let rest = resource
        .trim_start_matches('/')
        .strip_prefix("communications/presences")?;
    if let Some(id) = rest.strip_prefix('/') {
        return (!id.is_empty() && !id.contains(['/', '?'])).then(|| vec![id.to_string()]);
    }
    let filter = rest.strip_prefix("?$filter=")?.trim();
    let list = filter.strip_prefix("id in")?.trim();
    let list = list.strip_prefix('(')?.strip_suffix(')')?;
    Some(
        list.split(',')
            .map(|id| id.trim().trim_matches('\'').to_string())
            .collect(),
    )
}

async fn presence(
    State(sim): State<Arc<Sim>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let t = teams(&sim);
    if let Err(refused) = authorized(t, &headers) {
        return refused;
    }
    match t.user_by_id(&id) {
        Some(u) => Json(super::presence_json(&u.id, t.presence_of(&u.id))).into_response(),
        None => not_found(&format!("Presence of {id}")),
    }
}

/// `POST /communications/getPresencesByUserId {"ids":[...]}` (at most 650 ids).
async fn presences_by_user_id(
    State(sim): State<Arc<Sim>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let t = teams(&sim);
    if let Err(refused) = authorized(t, &headers) {
        return refused;
    }
    let body = match json_body(&body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let Some(ids) = body["ids"].as_array() else {
        return bad_request("Missing required property 'ids'");
    };
    if ids.len() > super::MAX_PRESENCE_USERS {
        return bad_request("At most 650 ids are allowed");
    }
    let value: Vec<Value> = ids
        .iter()
        .filter_map(Value::as_str)
        .filter_map(|id| t.user_by_id(id))
        .map(|u| super::presence_json(&u.id, t.presence_of(&u.id)))
        .collect();
    Json(json!({"value": value})).into_response()
}

async fn list_subscriptions(State(sim): State<Arc<Sim>>, headers: HeaderMap) -> Response {
    let t = teams(&sim);
    if let Err(refused) = authorized(t, &headers) {
        return refused;
    }
    let value: Vec<Value> = t
        .lock()
        .subscriptions
        .values()
        .map(Subscription::json)
        .collect();
    Json(json!({"value": value})).into_response()
}

async fn get_subscription(
    State(sim): State<Arc<Sim>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let t = teams(&sim);
    if let Err(refused) = authorized(t, &headers) {
        return refused;
    }
    match t.lock().subscriptions.get(&id) {
        Some(s) => Json(s.json()).into_response(),
        None => not_found(&format!("Subscription {id}")),
    }
}

async fn renew_subscription(
    State(sim): State<Arc<Sim>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let t = teams(&sim);
    if let Err(refused) = authorized(t, &headers) {
        return refused;
    }
    let body = match json_body(&body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let max_minutes = match t.lock().subscriptions.get(&id) {
        Some(s) if !s.users.is_empty() => super::MAX_PRESENCE_SUBSCRIPTION_MINUTES,
        _ => MAX_SUBSCRIPTION_MINUTES,
    };
    let (expiration, expires_at) = match expiration(body.get("expirationDateTime"), max_minutes) {
        Ok(e) => granted(t, e),
        Err(r) => return r,
    };
    let mut state = t.lock();
    match state.subscriptions.get_mut(&id) {
        Some(s) => {
            s.expiration = expiration;
            s.expires_at = expires_at;
            t.renewed_subscriptions.fetch_add(1, Ordering::Relaxed);
            Json(s.json()).into_response()
        }
        None => not_found(&format!("Subscription {id}")),
    }
}

async fn delete_subscription(
    State(sim): State<Arc<Sim>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let t = teams(&sim);
    if let Err(refused) = authorized(t, &headers) {
        return refused;
    }
    match t.lock().subscriptions.remove(&id) {
        Some(_) => StatusCode::NO_CONTENT.into_response(),
        None => not_found(&format!("Subscription {id}")),
    }
}

async fn reauthorize(
    State(sim): State<Arc<Sim>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let t = teams(&sim);
    if let Err(refused) = authorized(t, &headers) {
        return refused;
    }
    if !t.lock().subscriptions.contains_key(&id) {
        return not_found(&format!("Subscription {id}"));
    }
    t.reauthorized_subscriptions.fetch_add(1, Ordering::Relaxed);
    StatusCode::NO_CONTENT.into_response()
}

fn lifecycle(t: &Teams, sub: &Subscription, event: &str) {
    let Some(url) = sub.lifecycle_url.clone() else {
        return;
    };
    let body = json!({"value": [{"subscriptionId": sub.id,
        "subscriptionExpirationDateTime": sub.expiration, "tenantId": TENANT_ID,
        "clientState": sub.client_state, "lifecycleEvent": event}]});
    t.send(Outgoing {
        url,
        body,
        signed: false,
        ack: None,
        duplicate: false,
        reorder: false,
    });
}

// ---- simulator controls ----

fn sim_error(status: StatusCode, message: &str) -> Response {
    (
        status,
        Json(json!({"error": {"code": "sim", "message": message}})),
    )
        .into_response()
}

/// `POST /sim/teams/calls {"from","agent","policy"?}`: the caller rings the rep.
async fn ring(State(sim): State<Arc<Sim>>, body: Bytes) -> Response {
    let t = teams(&sim);
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return sim_error(StatusCode::BAD_REQUEST, "body must be JSON {from, agent}");
    };
    // Graph names a PSTN caller in E.164; a number as dialled in the demo's region (CH, the
    // seeded V2 data's) is written the way Teams would show it.
    let dialled = body["from"]
        .as_str()
        .unwrap_or_default()
        .replace([' ', '-', '.', '(', ')'], "");
    let from = if let Some(rest) = dialled.strip_prefix("00") {
        format!("+{rest}")
    } else if let Some(rest) = dialled.strip_prefix('0') {
        format!("+41{rest}")
    } else {
        dialled
    };
    if !(from.starts_with('+') && from.len() > 4 && from[1..].chars().all(|c| c.is_ascii_digit())) {
        return sim_error(StatusCode::BAD_REQUEST, "`from` must be an E.164 number");
    }
    let agent = body["agent"].as_str().unwrap_or("alice@example.com");
    let Some(user) = t.user_by_mail(agent).cloned() else {
        return sim_error(StatusCode::NOT_FOUND, "no such rep");
    };
    let policy = body["policy"]
        .as_bool()
        .unwrap_or_else(|| t.recorded(&user.id));
    let chain = uuid::Uuid::new_v4().to_string();
    let leg = new_leg(&chain, &user.id, json!({"phone": {"id": from}}), policy);
    invite(&sim, &leg);
    if let Err(err) = notify_and_wait(t, &leg, "created").await {
        return sim_error(StatusCode::BAD_GATEWAY, &err);
    }
    (
        StatusCode::CREATED,
        Json(json!({"call_id": chain, "graph_call_id": leg.id})),
    )
        .into_response()
}

async fn list_calls(State(sim): State<Arc<Sim>>) -> Response {
    let calls: Vec<Value> = teams(&sim).calls().iter().map(Call::resource).collect();
    Json(json!({"calls": calls})).into_response()
}

/// The legs a control's `id` names: a leg, or every live leg of a chain.
fn legs_of(t: &Teams, id: &str) -> Vec<Call> {
    t.lock()
        .calls
        .values()
        .filter(|c| (c.id == id || c.chain == id) && c.state != "terminated")
        .cloned()
        .collect()
}

/// The far end hangs up: every live leg ends (an unanswered one as cancelled).
async fn hangup_control(State(sim): State<Arc<Sim>>, Path(id): Path<String>) -> Response {
    let t = teams(&sim);
    let legs = legs_of(t, &id);
    if legs.is_empty() {
        return sim_error(StatusCode::NOT_FOUND, "no live call with that id");
    }
    for leg in legs {
        let why = if leg.answered {
            result(200, 0, "The call was ended by the remote party")
        } else {
            // Inferred: the caller giving up while it rings ends it like SIP's 487.
            result(487, 0, "Call cancelled by the caller")
        };
        terminate(t, &leg.id, why, None);
    }
    StatusCode::NO_CONTENT.into_response()
}

/// The far end (of an outbound call) answers; or a rep not under the policy picks up. An
/// outbound call's answer is told to the bot before the control answers (the notifications go
/// out in order, so the relay has heard of the call by then).
async fn answer_control(State(sim): State<Arc<Sim>>, Path(id): Path<String>) -> Response {
    let t = teams(&sim);
    let legs: Vec<Call> = legs_of(t, &id)
        .into_iter()
        .filter(|c| matches!(c.state, "establishing" | "incoming"))
        .collect();
    if legs.is_empty() {
        return sim_error(StatusCode::CONFLICT, "no call waiting to be answered");
    }
    for leg in legs {
        if leg.state == "incoming" {
            answer_leg(t, &leg.id);
        } else {
            let answered = {
                let mut state = t.lock();
                let Some(call) = state.calls.get_mut(&leg.id) else {
                    continue;
                };
                call.state = "established";
                call.answered = true;
                call.answered_at = Some(now_rfc3339());
                call.clone()
            };
            t.presence_changed(&answered.user);
            if let Err(err) = notify_and_wait(t, &answered, "updated").await {
                return sim_error(StatusCode::BAD_GATEWAY, &err);
            }
        }
    }
    StatusCode::NO_CONTENT.into_response()
}

async fn list_subscriptions_control(State(sim): State<Arc<Sim>>) -> Response {
    Json(json!({"subscriptions": teams(&sim).subscriptions()})).into_response()
}

/// Breaks things: see the module's documentation.
async fn faults(State(sim): State<Arc<Sim>>, body: Bytes) -> Response {
    let t = teams(&sim);
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return sim_error(StatusCode::BAD_REQUEST, "body must be JSON");
    };
    let mut answer = json!({});
    if let Some(on) = body["duplicate"].as_bool() {
        t.duplicate.store(on, Ordering::Relaxed);
    }
    if let Some(on) = body["reorder"].as_bool() {
        t.reorder.store(on, Ordering::Relaxed);
    }
    if body["remove_subscriptions"] == true {
        let removed: Vec<Subscription> = t.lock().subscriptions.drain().map(|(_, s)| s).collect();
        for sub in &removed {
            lifecycle(t, sub, "subscriptionRemoved");
        }
        answer["removed"] = removed.len().into();
    }
    if body["reauthorize"] == true {
        let subs: Vec<Subscription> = t.lock().subscriptions.values().cloned().collect();
        for sub in &subs {
            lifecycle(t, sub, "reauthorizationRequired");
        }
    }
    if body["forge_callback"] == true {
        let Some(url) = t.bot_url.clone() else {
            return sim_error(StatusCode::CONFLICT, "no tenant uses Teams");
        };
        let leg = new_leg(
            &uuid::Uuid::new_v4().to_string(),
            &t.users[0].id,
            json!({"phone": {"id": "+15550100999"}}),
            true,
        );
        let body = json!({"@odata.type": "#microsoft.graph.commsNotifications",
            "value": [{"@odata.type": "#microsoft.graph.commsNotification",
                "changeType": "created", "resourceUrl": format!("/communications/calls/{}", leg.id),
                "resourceData": leg.resource()}]});
        let good = match super::bot_token(&t.bot_app_id).await {
            Ok(token) => token,
            Err(err) => return sim_error(StatusCode::INTERNAL_SERVER_ERROR, &err),
        };
        let wrong_aud = super::bot_token("00000000-0000-0000-0000-000000000000")
            .await
            .unwrap_or_default();
        // The signature's last characters changed: the same claims, not the key's signature.
        let mut tampered = good.clone();
        let tail = if tampered.ends_with('A') { "B" } else { "A" };
        tampered.truncate(tampered.len().saturating_sub(4));
        tampered.push_str(&tail.repeat(4));
        let mut statuses = Vec::new();
        let other_tenant =
            super::bot_token_for(&t.bot_app_id, "00000000-1111-2222-3333-444444444444")
                .await
                .unwrap_or_default();
        for auth in [Some(tampered), Some(wrong_aud), Some(other_tenant), None] {
            let mut request = t.http.post(&url).json(&body);
            if let Some(token) = auth {
                request = request.bearer_auth(token);
            }
            statuses.push(match request.send().await {
                Ok(r) => r.status().as_u16(),
                Err(_) => 0,
            });
        }
        answer["forged_statuses"] = json!(statuses);
    }
    // `{"client_state": "<value>"}`: a callRecords notification to each subscription carrying
    // that clientState, as one made before the receiver's value changed would (a rotation).
    let client_state = match (&body["bad_client_state"], &body["client_state"]) {
        (Value::Bool(true), _) => Some(("bad_client_state_statuses", "not-the-client-state")),
        (_, Value::String(value)) => Some(("client_state_statuses", value.as_str())),
        _ => None,
    };
    if let Some((key, client_state)) = client_state {
        let subs: Vec<Subscription> = t.lock().subscriptions.values().cloned().collect();
        let mut statuses = Vec::new();
        for sub in subs {
            let chain = uuid::Uuid::new_v4().to_string();
            let body = json!({"value": [{"subscriptionId": sub.id,
                "clientState": client_state, "changeType": "created",
                "resource": format!("communications/callRecords/{chain}"),
                "resourceData": {"id": chain}, "tenantId": TENANT_ID}]});
            statuses.push(
                match t.http.post(&sub.notification_url).json(&body).send().await {
                    Ok(r) => r.status().as_u16(),
                    Err(_) => 0,
                },
            );
        }
        answer[key] = json!(statuses);
    }
    Json(answer).into_response()
}
