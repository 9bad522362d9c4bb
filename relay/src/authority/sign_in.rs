//! The relay's own sign-in through XSUAA (OAuth 2.0 authorization code): the widget and the
//! admin page need an XSUAA token, and XSUAA offers apps defined by xs-security.json no implicit
//! grant, so the relay asks for a code and exchanges it with the app's client credentials.
//!
//! [`Authority::sign_in_url`] seals the pending sign-in (which page, the zone, the return
//! address, a nonce, an expiry on the relay's clock, the digest of the browser's cookie) into the
//! `state`; [`Authority::finish_sign_in`] opens it, checks the browser and the expiry, and
//! exchanges the code at the same zone's token endpoint (`grant_type=authorization_code`, the
//! client as HTTP Basic, reference: RFC 6749 4.1.3). The access token it returns is checked by the
//! caller, with the relay's verifier, before anybody sees it. Neither the code nor the token is
//! ever logged.

use serde::{Deserialize, Serialize};

use super::Authority;
use super::sealed_state::{StateError, digest, random_b64, same_browser};
use crate::secret::Secret;

/// How long a started sign-in may take.
const PENDING_MS: u64 = 10 * 60 * 1000;
/// The purpose the sign-in's state is sealed under: no V2 sign-in's state opens as one.
const STATE_PURPOSE: &str = "\u{0}sign-in-state";

/// The page a sign-in returns to, with the token in the fragment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SignInPage {
    Widget,
    Admin,
}

impl SignInPage {
    /// The page's path on the relay.
    pub fn path(self) -> &'static str {
        match self {
            SignInPage::Widget => "/widget/",
            SignInPage::Admin => "/admin/",
        }
    }
}

/// A sign-in on its way through XSUAA: what the `state` holds.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
struct Pending {
    page: SignInPage,
    zone: String,
    redirect_uri: String,
    /// Makes every state unique.
    nonce: String,
    expires_ms: u64,
    /// The digest of the cookie of the browser that started it.
    browser: String,
}

/// A finished sign-in: the page to return to and the zone's access token (not checked yet).
#[derive(Debug)]
pub struct SignedIn {
    pub page: SignInPage,
    pub zone: String,
    pub token: Secret,
}

#[derive(Debug, thiserror::Error)]
pub enum SignInError {
    #[error("no sign-in through XSUAA is configured (CTI_SIGNIN_CLIENT_ID or an xsuaa binding)")]
    NotConfigured,
    #[error("the sign-in needs CTI_TOKEN_KEY, which seals its state")]
    NoTokenKey,
    #[error("the sign-in's state is invalid; start the sign-in again")]
    InvalidState,
    #[error("the sign-in took too long; start it again")]
    Expired,
    #[error("this browser did not start the sign-in; start it again")]
    OtherBrowser,
    #[error("the sign-in's state cannot be sealed: {0}")]
    Seal(String),
    #[error("the authorize URL is not a URL: {0}")]
    AuthorizeUrl(String),
    #[error("XSUAA's token endpoint is unreachable: {0}")]
    Unreachable(#[source] reqwest::Error),
    /// XSUAA failed (a 5xx): signing in again may work.
    #[error("XSUAA's token endpoint answered {0}")]
    Failed(reqwest::StatusCode),
    /// XSUAA refused the code (a 4xx), with its OAuth error.
    #[error("XSUAA refused the sign-in: {0}")]
    Refused(String),
    #[error("XSUAA's answer has no access token: {0}")]
    Answer(#[source] reqwest::Error),
}

impl From<StateError> for SignInError {
    fn from(err: StateError) -> Self {
        match err {
            StateError::NoTokenKey => SignInError::NoTokenKey,
            StateError::Invalid => SignInError::InvalidState,
            other => SignInError::Seal(other.to_string()),
        }
    }
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
}

impl Authority {
    fn xsuaa(&self) -> Result<&crate::config::XsuaaSignIn, SignInError> {
        self.sign_in.as_ref().ok_or(SignInError::NotConfigured)
    }

    /// Where to send the browser to sign in at `zone` for `page`; XSUAA returns it to
    /// `redirect_uri` (the relay's callback) in the browser holding `browser` (from
    /// [`super::sealed_state::browser_binding`]).
    pub fn sign_in_url(
        &self,
        page: SignInPage,
        zone: &str,
        redirect_uri: &str,
        browser: &str,
    ) -> Result<String, SignInError> {
        let settings = self.xsuaa()?;
        let pending = Pending {
            page,
            zone: zone.to_string(),
            redirect_uri: redirect_uri.to_string(),
            nonce: random_b64(16),
            expires_ms: self.clock.now_ms().saturating_add(PENDING_MS),
            browser: digest(browser),
        };
        let state = self.seal_state(STATE_PURPOSE, &pending)?;
        let url = reqwest::Url::parse_with_params(
            &settings.authorize_url(zone),
            &[
                ("response_type", "code"),
                ("client_id", settings.client_id.as_str()),
                ("redirect_uri", redirect_uri),
                ("state", state.as_str()),
            ],
        )
        .map_err(|e| SignInError::AuthorizeUrl(e.to_string()))?;
        Ok(url.into())
    }

    /// Finishes a sign-in XSUAA sent back with `code` and `state` to the browser holding
    /// `browser`: the zone's access token, and the page it is for.
    pub async fn finish_sign_in(
        &self,
        code: &str,
        state: &str,
        browser: Option<&str>,
    ) -> Result<SignedIn, SignInError> {
        let settings = self.xsuaa()?;
        let pending: Pending = self.open_state(STATE_PURPOSE, state)?;
        if pending.nonce.is_empty() {
            return Err(SignInError::InvalidState);
        }
        if pending.expires_ms < self.clock.now_ms() {
            return Err(SignInError::Expired);
        }
        if !same_browser(browser, &pending.browser) {
            return Err(SignInError::OtherBrowser);
        }
        let response = self
            .http
            .post(settings.token_url(&pending.zone))
            .basic_auth(&settings.client_id, Some(settings.client_secret.expose()))
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", pending.redirect_uri.as_str()),
            ])
            .send()
            .await
            .map_err(|e| SignInError::Unreachable(e.without_url()))?;
        let status = response.status();
        if status.is_client_error() {
            return Err(SignInError::Refused(super::oauth2::refusal(response).await));
        }
        if !status.is_success() {
            return Err(SignInError::Failed(status));
        }
        let answer: TokenAnswer = response
            .json()
            .await
            .map_err(|e| SignInError::Answer(e.without_url()))?;
        Ok(SignedIn {
            page: pending.page,
            zone: pending.zone,
            token: Secret::new(answer.access_token),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::Arc;

    use axum::extract::{Form, State};
    use axum::http::{HeaderMap, StatusCode};
    use axum::response::{IntoResponse, Response};
    use parking_lot::Mutex;

    use super::*;
    use crate::authority::vault::MemoryVault;
    use crate::clock::ManualClock;
    use crate::config::{Config, TokenKey, XsuaaSignIn};

    /// What the token endpoint was sent: the form and the Authorization header.
    type Seen = Arc<Mutex<Vec<(HashMap<String, String>, String)>>>;

    async fn token_endpoint(
        State(seen): State<Seen>,
        headers: HeaderMap,
        Form(form): Form<HashMap<String, String>>,
    ) -> Response {
        let auth = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let refused = form.get("code").map(String::as_str) == Some("used-code");
        seen.lock().push((form, auth));
        if refused {
            let body = serde_json::json!({"error": "invalid_grant",
                "error_description": "Invalid authorization code"});
            return (StatusCode::BAD_REQUEST, axum::Json(body)).into_response();
        }
        axum::Json(serde_json::json!({"access_token": "the-access-token",
            "token_type": "bearer", "expires_in": 3600}))
        .into_response()
    }

    /// An authority with XSUAA sign-in at a token endpoint of its own (`{zone}` in its path),
    /// on a clock the test moves; `key` seals the states.
    async fn authority(key: bool) -> (Authority, ManualClock, Seen) {
        let seen = Seen::default();
        let app = axum::Router::new()
            .route("/{zone}/oauth/token", axum::routing::post(token_endpoint))
            .with_state(seen.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("port");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        let mut config = Config::demo("http://127.0.0.1:9");
        if key {
            config.token_key = Some(
                TokenKey::from_base64("MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=").expect("key"),
            );
        }
        config.xsuaa_sign_in = Some(XsuaaSignIn {
            client_id: "sb-cti!t1".into(),
            client_secret: Secret::new("client-secret"),
            authorize_url: format!("{url}/{{zone}}/oauth/authorize"),
            token_url: format!("{url}/{{zone}}/oauth/token"),
            zone: None,
            zones_by_host: true,
        });
        let clock = ManualClock::new(1_000_000);
        let authority = Authority::new(
            &config,
            reqwest::Client::new(),
            Arc::new(MemoryVault::default()),
            None,
            Arc::new(clock.clone()),
            "this-instance",
        );
        (authority, clock, seen)
    }

    const BACK: &str = "https://beta-cti.example.com/v1/sign-in/callback";

    /// The `state` of an authorize URL, after checking the rest of it.
    fn state_of(url: &str) -> String {
        let url = reqwest::Url::parse(url).expect("a URL");
        assert!(url.path().ends_with("/beta/oauth/authorize"), "{url}");
        let query: HashMap<String, String> = url.query_pairs().into_owned().collect();
        assert_eq!(query["response_type"], "code");
        assert_eq!(query["client_id"], "sb-cti!t1");
        assert_eq!(query["redirect_uri"], BACK);
        query["state"].clone()
    }

    #[tokio::test]
    async fn a_sign_in_comes_back_with_the_zones_token_for_its_page() {
        let (authority, _, seen) = authority(true).await;
        let browser = crate::authority::sealed_state::browser_binding();
        let url = authority
            .sign_in_url(SignInPage::Admin, "beta", BACK, &browser)
            .expect("a URL");
        let state = state_of(&url);
        assert!(
            !url.contains(&browser),
            "the cookie's value stays out of the URL"
        );

        let signed_in = authority
            .finish_sign_in("the-code", &state, Some(&browser))
            .await
            .expect("signed in");
        assert_eq!(signed_in.page, SignInPage::Admin);
        assert_eq!(signed_in.zone, "beta");
        assert_eq!(signed_in.token.expose(), "the-access-token");
        let seen = seen.lock();
        let (form, auth) = &seen[0];
        assert_eq!(form["grant_type"], "authorization_code");
        assert_eq!(form["code"], "the-code");
        assert_eq!(form["redirect_uri"], BACK);
        use base64::Engine as _;
        let basic = base64::engine::general_purpose::STANDARD.encode("sb-cti!t1:client-secret");
        assert_eq!(*auth, format!("Basic {basic}"));
    }

    #[tokio::test]
    async fn a_state_from_another_browser_a_forged_one_or_an_old_one_is_refused() {
        let (authority, clock, seen) = authority(true).await;
        let browser = crate::authority::sealed_state::browser_binding();
        let url = authority
            .sign_in_url(SignInPage::Widget, "beta", BACK, &browser)
            .expect("a URL");
        let state = state_of(&url);

        let other = crate::authority::sealed_state::browser_binding();
        for cookie in [None, Some(other.as_str()), Some("")] {
            let err = authority
                .finish_sign_in("the-code", &state, cookie)
                .await
                .expect_err("another browser");
            assert!(matches!(err, SignInError::OtherBrowser), "{err}");
        }

        // A state changed by one character, or made up.
        let mut forged = state.clone().into_bytes();
        let last = forged.len() - 5;
        forged[last] = if forged[last] == b'A' { b'B' } else { b'A' };
        let forged = String::from_utf8(forged).expect("text");
        for state in [forged.as_str(), "bm90LXNlYWxlZA", ""] {
            let err = authority
                .finish_sign_in("the-code", state, Some(&browser))
                .await
                .expect_err("forged");
            assert!(matches!(err, SignInError::InvalidState), "{err}");
        }

        // A V2 sign-in's state is sealed for another purpose: it does not open as this one's.
        let v2_state = authority
            .seal_state("\u{0}oauth-state", &serde_json::json!({"tenant": "demo"}))
            .expect("sealed");
        let err = authority
            .finish_sign_in("the-code", &v2_state, Some(&browser))
            .await
            .expect_err("another flow's state");
        assert!(matches!(err, SignInError::InvalidState), "{err}");

        clock.advance_ms(PENDING_MS + 1);
        let err = authority
            .finish_sign_in("the-code", &state, Some(&browser))
            .await
            .expect_err("expired");
        assert!(matches!(err, SignInError::Expired), "{err}");
        assert!(
            seen.lock().is_empty(),
            "no code was exchanged for a state that does not hold"
        );
    }

    #[tokio::test]
    async fn xsuaa_refusing_the_code_says_why() {
        let (authority, _, _) = authority(true).await;
        let browser = crate::authority::sealed_state::browser_binding();
        let url = authority
            .sign_in_url(SignInPage::Widget, "beta", BACK, &browser)
            .expect("a URL");
        let err = authority
            .finish_sign_in("used-code", &state_of(&url), Some(&browser))
            .await
            .expect_err("refused");
        assert!(matches!(err, SignInError::Refused(_)), "{err}");
        assert!(
            err.to_string().contains("Invalid authorization code"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn without_a_token_key_the_sign_in_says_what_to_set() {
        let (authority, _, _) = authority(false).await;
        let err = authority
            .sign_in_url(SignInPage::Widget, "beta", BACK, "b")
            .expect_err("no key");
        assert!(matches!(err, SignInError::NoTokenKey), "{err}");
        assert!(err.to_string().contains("CTI_TOKEN_KEY"), "{err}");
    }
}
