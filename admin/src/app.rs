//! The page: sign-in, the settings form with its connection test, and the tenant's status.
//!
//! Every request's failure is shown in words where it happened (a field's error next to the
//! field, a section's error in the section); a refused token (401) takes the admin back to the
//! sign-in, because nothing else on the page can work without one.

use std::collections::BTreeMap;
use std::rc::Rc;

use serde_json::Value;
use wasm_bindgen_futures::spawn_local;
use yew::prelude::*;

use crate::api::{self, ApiError, Check, Status, Tenant, TestResult};
use crate::form::{self, Field, Kind, Values};
use crate::token;

/// Where a signed-out admin goes: the relay sends them to the identity provider, which returns
/// to `/admin/#token=...`.
const SIGN_IN: &str = "/v1/admin/sign-in";

#[component]
pub fn App() -> Html {
    let token = use_state(token::acquire);
    let refused = use_state(|| None::<String>);
    let on_refused = {
        let token = token.clone();
        let refused = refused.clone();
        Callback::from(move |error: ApiError| {
            token::forget();
            refused.set(Some(error.message));
            token.set(None);
        })
    };
    let body = match (*token).clone() {
        None => html! {
            <section class="card" aria-labelledby="signed-out-title">
                <h2 id="signed-out-title">{ "Sign in" }</h2>
                if let Some(why) = (*refused).clone() {
                    <p class="error" role="alert" data-testid="refused">{ why }</p>
                }
                <p>{ "This page configures your company's CTI. It needs an account with the Admin role." }</p>
                <p><a class="btn" href={SIGN_IN} data-testid="sign-in">{ "Sign in" }</a></p>
            </section>
        },
        Some(token) => {
            let token: Rc<str> = token.into();
            html! {
                <>
                    <SettingsSection token={token.clone()} on_refused={on_refused.clone()} />
                    <StatusSection {token} {on_refused} />
                </>
            }
        }
    };
    html! {
        <div class="admin">
            <header class="page-header">
                <h1>{ "CTI administration" }</h1>
            </header>
            <main>{ body }</main>
        </div>
    }
}

#[derive(Properties, PartialEq)]
struct SectionProps {
    token: Rc<str>,
    on_refused: Callback<ApiError>,
}

/// What the settings section is waiting for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Busy {
    Loading,
    Saving,
    Testing,
}

#[derive(Debug, Clone, PartialEq, Default)]
struct SettingsModel {
    tenant: Option<Tenant>,
    load_error: Option<String>,
    values: Values,
    busy: Option<Busy>,
    /// The field a refused save names, and why.
    field_error: Option<(String, String)>,
    /// A save's outcome not tied to a field: `Ok` text or the error.
    saved: Option<Result<String, String>>,
    tested: Option<Result<TestResult, String>>,
}

enum SettingsMsg {
    Busy(Busy),
    Loaded(Result<Tenant, ApiError>),
    Edit(String, String),
    Saved(Result<Tenant, ApiError>),
    Tested(Result<TestResult, ApiError>),
    Invalid(form::FieldError),
}

impl Reducible for SettingsModel {
    type Action = SettingsMsg;

    fn reduce(self: Rc<Self>, action: SettingsMsg) -> Rc<Self> {
        let mut next = (*self).clone();
        match action {
            SettingsMsg::Busy(busy) => {
                next.busy = Some(busy);
                if busy == Busy::Testing {
                    next.tested = None;
                } else {
                    next.saved = None;
                    next.field_error = None;
                }
            }
            SettingsMsg::Loaded(Ok(tenant)) => {
                next.busy = None;
                next.load_error = None;
                next.values = form::values_from(&tenant.settings);
                next.tenant = Some(tenant);
            }
            SettingsMsg::Loaded(Err(error)) => {
                next.busy = None;
                next.load_error = Some(error.message);
            }
            SettingsMsg::Edit(path, text) => {
                if next.field_error.as_ref().is_some_and(|(f, _)| *f == path) {
                    next.field_error = None;
                }
                next.values.insert(path, text);
            }
            SettingsMsg::Saved(Ok(tenant)) => {
                next.busy = None;
                next.values = form::values_from(&tenant.settings);
                next.tenant = Some(tenant);
                next.saved = Some(Ok(
                    "Saved. The next call for this tenant uses these settings.".into(),
                ));
            }
            SettingsMsg::Saved(Err(error)) => {
                next.busy = None;
                next.field_error = field_of(&error, &next.values);
                if next.field_error.is_none() {
                    next.saved = Some(Err(error.message));
                } else {
                    next.saved = Some(Err(
                        "Not saved: one field needs a change (shown next to it).".into(),
                    ));
                }
            }
            SettingsMsg::Tested(result) => {
                next.busy = None;
                next.tested = Some(result.map_err(|e| e.message));
            }
            SettingsMsg::Invalid(error) => {
                next.busy = None;
                next.saved = Some(Err(
                    "Not sent: one field needs a change (shown next to it).".into(),
                ));
                next.field_error = Some((error.field, error.message));
            }
        }
        Rc::new(next)
    }
}

/// The form field a relay's error names, with its message; None when it names none the form
/// shows (the message is then shown above the buttons).
fn field_of(error: &ApiError, values: &Values) -> Option<(String, String)> {
    let provider = values
        .get("provider")
        .map_or(form::DEFAULT_PROVIDER, String::as_str);
    let named = error.field.as_deref()?;
    let field = form::field_named(named, provider)?;
    Some((field.path.to_string(), error.message.clone()))
}

#[component]
fn SettingsSection(props: &SectionProps) -> Html {
    let model = use_reducer(SettingsModel::default);
    {
        let model = model.dispatcher();
        let token = props.token.clone();
        let on_refused = props.on_refused.clone();
        use_effect_with((), move |_| {
            model.dispatch(SettingsMsg::Busy(Busy::Loading));
            spawn_local(async move {
                let loaded = api::tenant(&token).await;
                if let Err(error) = &loaded
                    && error.needs_sign_in()
                {
                    on_refused.emit(error.clone());
                    return;
                }
                model.dispatch(SettingsMsg::Loaded(loaded));
            });
        });
    }
    let on_edit = {
        let model = model.dispatcher();
        Callback::from(move |(path, text): (String, String)| {
            model.dispatch(SettingsMsg::Edit(path, text));
        })
    };
    // Both buttons send the form as it stands; a value the page can judge itself is refused
    // before anything leaves the browser.
    let act = |busy: Busy| {
        let dispatcher = model.dispatcher();
        let values = model.values.clone();
        let loaded = model
            .tenant
            .as_ref()
            .map_or(Value::Null, |t| t.settings.clone());
        let token = props.token.clone();
        let on_refused = props.on_refused.clone();
        move || {
            let settings = match form::settings_from(&values, &loaded) {
                Ok(settings) => settings,
                Err(error) => {
                    dispatcher.dispatch(SettingsMsg::Invalid(error));
                    return;
                }
            };
            dispatcher.dispatch(SettingsMsg::Busy(busy));
            let dispatcher = dispatcher.clone();
            let token = token.clone();
            let on_refused = on_refused.clone();
            spawn_local(async move {
                let refused = |error: &ApiError| {
                    if error.needs_sign_in() {
                        on_refused.emit(error.clone());
                        true
                    } else {
                        false
                    }
                };
                if busy == Busy::Testing {
                    let tested = api::test_connection(&token, &settings).await;
                    if !tested.as_ref().is_err_and(refused) {
                        dispatcher.dispatch(SettingsMsg::Tested(tested));
                    }
                } else {
                    let saved = api::save(&token, &settings).await;
                    if !saved.as_ref().is_err_and(refused) {
                        dispatcher.dispatch(SettingsMsg::Saved(saved));
                    }
                }
            });
        }
    };
    let onsubmit = {
        let save = act(Busy::Saving);
        Callback::from(move |event: SubmitEvent| {
            event.prevent_default();
            save();
        })
    };
    let on_test = {
        let test = act(Busy::Testing);
        Callback::from(move |_: MouseEvent| test())
    };

    let heading = html! { <h2 id="settings-title">{ "Settings" }</h2> };
    if let Some(error) = &model.load_error {
        return html! {
            <section class="card" aria-labelledby="settings-title">
                { heading }
                <p class="error" role="alert" data-testid="settings-error">{ error.clone() }</p>
            </section>
        };
    }
    let Some(tenant) = &model.tenant else {
        return html! {
            <section class="card" aria-labelledby="settings-title" aria-busy="true">
                { heading }
                <p class="muted">{ "Loading the settings…" }</p>
            </section>
        };
    };
    let provider = model
        .values
        .get("provider")
        .cloned()
        .unwrap_or_else(|| form::DEFAULT_PROVIDER.to_string());
    let read_only = tenant.read_only();
    let busy = model.busy.is_some();
    let field = |field: &'static Field| {
        let error = model
            .field_error
            .as_ref()
            .filter(|(path, _)| path == field.path)
            .map(|(_, message)| message.clone());
        html! {
            <FieldInput key={field.path} {field}
                text={model.values.get(field.path).cloned().unwrap_or_default()}
                stored={field.is_secret() && form::secret_is_stored(field, &tenant.secrets_set)}
                {error} disabled={read_only} on_edit={on_edit.clone()} />
        }
    };
    let on_provider = {
        let on_edit = on_edit.clone();
        Callback::from(move |event: Event| {
            if let Some(select) = event.target_dyn_into::<web_sys::HtmlSelectElement>() {
                on_edit.emit(("provider".into(), select.value()));
            }
        })
    };
    let provider_label = form::PROVIDERS
        .iter()
        .find(|(name, _, _)| *name == provider)
        .map_or(provider.as_str(), |(_, label, _)| *label);
    html! {
        <section class="card" aria-labelledby="settings-title">
            { heading }
            <p class="muted" data-testid="tenant">
                { format!("Tenant {}", tenant.tenant) }
                if let Some(subdomain) = &tenant.subdomain { { format!(" ({subdomain})") } }
                if !tenant.configured { { " — not configured yet: calls do not pop until it is." } }
            </p>
            if read_only {
                <p class="notice" data-testid="read-only">
                    { "This tenant is configured in the deployment's tenants file: its settings are shown here but changed there." }
                </p>
            }
            <form class="settings" {onsubmit}>
                { for form::GENERAL.iter().map(|group| html! {
                    <fieldset>
                        <legend>{ group.title }</legend>
                        { for group.fields.iter().map(field) }
                    </fieldset>
                }) }
                <fieldset>
                    <legend>{ format!("Telephony: {provider_label}") }</legend>
                    <div class="field">
                        <label for="field-provider">{ "Provider" }</label>
                        <select id="field-provider" disabled={read_only} onchange={on_provider}>
                            { for form::PROVIDERS.iter().map(|(name, label, _)| html! {
                                <option value={*name} selected={*name == provider}>{ *label }</option>
                            }) }
                        </select>
                    </div>
                    { for form::provider_fields(&provider).iter().map(field) }
                </fieldset>
                <div class="actions">
                    <button type="button" class="btn btn-secondary" data-testid="test" disabled={busy} onclick={on_test}>
                        { if model.busy == Some(Busy::Testing) { "Testing…" } else { "Test connection" } }
                    </button>
                    <button type="submit" class="btn" data-testid="save" disabled={busy || read_only}>
                        { if model.busy == Some(Busy::Saving) { "Saving…" } else { "Save" } }
                    </button>
                </div>
                <div id="save-result" role="status" aria-live="polite">
                    { match &model.saved {
                        Some(Ok(text)) => html! { <p class="ok" data-testid="saved">{ text.clone() }</p> },
                        Some(Err(text)) => html! { <p class="error" data-testid="save-error">{ text.clone() }</p> },
                        None => html! {},
                    } }
                </div>
                <div id="test-result" role="status" aria-live="polite">
                    { match &model.tested {
                        Some(Ok(result)) => html! {
                            <ul class="checks">
                                { check("v2", "SAP Sales Cloud V2", &result.v2) }
                                { check("provider", "Telephony provider", &result.provider) }
                            </ul>
                        },
                        Some(Err(text)) => html! { <p class="error" data-testid="test-error">{ text.clone() }</p> },
                        None => html! {},
                    } }
                </div>
            </form>
        </section>
    }
}

/// One line of a connection test: what was tried, whether it worked, and the relay's detail.
fn check(name: &str, label: &str, check: &Check) -> Html {
    let (class, verdict) = if check.ok {
        ("check ok", "works")
    } else {
        ("check failed", "failed")
    };
    html! {
        <li class={class} data-testid={format!("check-{name}")} data-ok={check.ok.to_string()}>
            <strong>{ format!("{label}: {verdict}") }</strong>
            if !check.detail.is_empty() { { format!(" — {}", check.detail) } }
        </li>
    }
}

#[derive(Properties, PartialEq)]
struct FieldProps {
    field: &'static Field,
    text: String,
    stored: bool,
    error: Option<String>,
    disabled: bool,
    on_edit: Callback<(String, String)>,
}

/// One labelled input. The hint and the error are tied to it with `aria-describedby`, so a
/// screen reader reads them with the field.
#[component]
fn FieldInput(props: &FieldProps) -> Html {
    let field = props.field;
    let id = field.id();
    let hint_id = format!("{id}-hint");
    let error_id = format!("{id}-error");
    let hint = if props.stored {
        format!("Stored; leave empty to keep it. {}", field.hint)
    } else {
        field.hint.to_string()
    };
    let mut described = Vec::new();
    if !hint.trim().is_empty() {
        described.push(hint_id.clone());
    }
    if props.error.is_some() {
        described.push(error_id.clone());
    }
    let described = (!described.is_empty()).then(|| described.join(" "));
    let invalid = props.error.is_some().then_some("true");
    let edit = |path: &'static str, on_edit: Callback<(String, String)>| {
        Callback::from(move |event: Event| {
            let target = event.target();
            let value = target
                .as_ref()
                .and_then(|t| wasm_bindgen::JsCast::dyn_ref::<web_sys::HtmlInputElement>(t))
                .map(web_sys::HtmlInputElement::value)
                .or_else(|| {
                    target
                        .as_ref()
                        .and_then(|t| {
                            wasm_bindgen::JsCast::dyn_ref::<web_sys::HtmlTextAreaElement>(t)
                        })
                        .map(web_sys::HtmlTextAreaElement::value)
                })
                .or_else(|| {
                    target
                        .as_ref()
                        .and_then(|t| {
                            wasm_bindgen::JsCast::dyn_ref::<web_sys::HtmlSelectElement>(t)
                        })
                        .map(web_sys::HtmlSelectElement::value)
                });
            if let Some(value) = value {
                on_edit.emit((path.to_string(), value));
            }
        })
    };
    let on_change = edit(field.path, props.on_edit.clone());
    let on_input = {
        let on_change = on_change.clone();
        Callback::from(move |event: InputEvent| on_change.emit(event.into()))
    };
    let text = props.text.clone();
    let input = match field.kind {
        Kind::Secret => html! {
            <input id={id.clone()} name={field.path} type="password" autocomplete="new-password"
                placeholder={props.stored.then_some("stored")} value={text}
                aria-describedby={described} aria-invalid={invalid} disabled={props.disabled}
                oninput={on_input} />
        },
        Kind::Number => html! {
            <input id={id.clone()} name={field.path} type="text" inputmode="numeric" value={text}
                aria-describedby={described} aria-invalid={invalid} disabled={props.disabled}
                oninput={on_input} />
        },
        Kind::Text | Kind::List => html! {
            <input id={id.clone()} name={field.path} type="text" value={text} spellcheck="false"
                aria-describedby={described} aria-invalid={invalid} disabled={props.disabled}
                oninput={on_input} />
        },
        Kind::Multiline | Kind::SecretMultiline | Kind::Lines | Kind::Pairs | Kind::Json => {
            let secret = field.kind == Kind::SecretMultiline;
            html! {
                <textarea id={id.clone()} name={field.path} rows="3" value={text} spellcheck="false"
                    autocomplete={secret.then_some("off")}
                    placeholder={(secret && props.stored).then_some("stored")}
                    aria-describedby={described} aria-invalid={invalid} disabled={props.disabled}
                    oninput={on_input} />
            }
        }
        Kind::Flag => choice(
            &id,
            field.path,
            &[("", "the default"), ("true", "yes"), ("false", "no")],
            &text,
            described,
            invalid,
            props.disabled,
            on_change,
        ),
        Kind::Choice(options) => choice(
            &id,
            field.path,
            options,
            &text,
            described,
            invalid,
            props.disabled,
            on_change,
        ),
    };
    html! {
        <div class={classes!("field", props.error.is_some().then_some("has-error"))}>
            <label for={id.clone()}>{ field.label }</label>
            { input }
            if !hint.trim().is_empty() {
                <p id={hint_id} class="hint">{ hint.clone() }</p>
            }
            if let Some(error) = &props.error {
                <p id={error_id} class="field-error" data-testid="field-error">{ error.clone() }</p>
            }
        </div>
    }
}

#[allow(clippy::too_many_arguments)]
fn choice(
    id: &str,
    name: &'static str,
    options: &'static [(&'static str, &'static str)],
    text: &str,
    described: Option<String>,
    invalid: Option<&'static str>,
    disabled: bool,
    onchange: Callback<Event>,
) -> Html {
    html! {
        <select id={id.to_string()} {name} aria-describedby={described} aria-invalid={invalid}
            {disabled} {onchange}>
            { for options.iter().map(|(value, label)| html! {
                <option value={*value} selected={*value == text}>{ *label }</option>
            }) }
        </select>
    }
}

#[derive(Debug, Clone, PartialEq, Default)]
struct StatusModel {
    status: Option<Status>,
    error: Option<String>,
    loading: bool,
    /// Per failed activity: a retry in flight (`None`) or its outcome.
    retries: BTreeMap<String, Option<Result<(), String>>>,
}

enum StatusMsg {
    Loading,
    Loaded(Result<Status, ApiError>),
    Retrying(String),
    Retried(String, Result<(), ApiError>),
}

impl Reducible for StatusModel {
    type Action = StatusMsg;

    fn reduce(self: Rc<Self>, action: StatusMsg) -> Rc<Self> {
        let mut next = (*self).clone();
        match action {
            StatusMsg::Loading => next.loading = true,
            StatusMsg::Loaded(Ok(status)) => {
                next.loading = false;
                next.error = None;
                next.status = Some(status);
                next.retries.clear();
            }
            StatusMsg::Loaded(Err(error)) => {
                next.loading = false;
                next.error = Some(error.message);
            }
            StatusMsg::Retrying(call) => {
                next.retries.insert(call, None);
            }
            StatusMsg::Retried(call, result) => {
                next.retries
                    .insert(call, Some(result.map_err(|e| e.message)));
            }
        }
        Rc::new(next)
    }
}

#[component]
fn StatusSection(props: &SectionProps) -> Html {
    let model = use_reducer(StatusModel::default);
    let refresh = {
        let dispatcher = model.dispatcher();
        let token = props.token.clone();
        let on_refused = props.on_refused.clone();
        Callback::from(move |()| {
            dispatcher.dispatch(StatusMsg::Loading);
            let dispatcher = dispatcher.clone();
            let token = token.clone();
            let on_refused = on_refused.clone();
            spawn_local(async move {
                let status = api::status(&token).await;
                if let Err(error) = &status
                    && error.needs_sign_in()
                {
                    on_refused.emit(error.clone());
                    return;
                }
                dispatcher.dispatch(StatusMsg::Loaded(status));
            });
        })
    };
    {
        let refresh = refresh.clone();
        use_effect_with((), move |_| refresh.emit(()));
    }
    let on_refresh = {
        let refresh = refresh.clone();
        Callback::from(move |_: MouseEvent| refresh.emit(()))
    };
    let on_retry = {
        let dispatcher = model.dispatcher();
        let token = props.token.clone();
        let on_refused = props.on_refused.clone();
        Callback::from(move |call: String| {
            dispatcher.dispatch(StatusMsg::Retrying(call.clone()));
            let dispatcher = dispatcher.clone();
            let token = token.clone();
            let on_refused = on_refused.clone();
            spawn_local(async move {
                let retried = api::retry(&token, &call).await;
                if let Err(error) = &retried
                    && error.needs_sign_in()
                {
                    on_refused.emit(error.clone());
                    return;
                }
                dispatcher.dispatch(StatusMsg::Retried(call, retried));
            });
        })
    };
    html! {
        <section class="card" aria-labelledby="status-title" aria-busy={model.loading.to_string()}>
            <div class="section-head">
                <h2 id="status-title">{ "Status" }</h2>
                <button type="button" class="btn btn-secondary" data-testid="refresh"
                    disabled={model.loading} onclick={on_refresh}>
                    { if model.loading { "Refreshing…" } else { "Refresh" } }
                </button>
            </div>
            if let Some(error) = &model.error {
                <p class="error" role="alert" data-testid="status-error">{ error.clone() }</p>
            }
            if let Some(status) = &model.status {
                { status_view(status, &model.retries, &on_retry) }
            } else if model.error.is_none() {
                <p class="muted">{ "Loading the status…" }</p>
            }
        </section>
    }
}

fn status_view(
    status: &Status,
    retries: &BTreeMap<String, Option<Result<(), String>>>,
    on_retry: &Callback<String>,
) -> Html {
    let index = &status.index;
    let last_build = index.last_build.as_ref().map(|build| {
        let mut parts = Vec::new();
        if let Some(at) = build.finished_at_ms {
            parts.push(format!("finished {}", utc_time(at)));
        }
        if let Some(ms) = build.duration_ms {
            parts.push(format!("in {:.1} s", ms as f64 / 1000.0));
        }
        if let Some(records) = build.records {
            parts.push(format!("{records} records read"));
        }
        parts.join(", ")
    });
    let provider = &status.provider;
    html! {
        <div class="status-grid">
            <div class="status-part" data-testid="index">
                <h3>{ "Number index" }</h3>
                <dl>
                    <dt>{ "State" }</dt>
                    <dd class={classes!("state", index.state.clone())}>
                        { if index.state.is_empty() { "unknown".to_string() } else { index.state.clone() } }
                    </dd>
                    <dt>{ "Numbers" }</dt>
                    <dd>{ index.numbers.map_or_else(|| "—".to_string(), |n| n.to_string()) }</dd>
                    <dt>{ "Last build" }</dt>
                    <dd>{ last_build.filter(|s| !s.is_empty()).unwrap_or_else(|| "none yet".into()) }</dd>
                    if let Some(error) = &index.error {
                        <dt>{ "Error" }</dt>
                        <dd class="error">{ error.clone() }</dd>
                    }
                </dl>
            </div>
            <div class="status-part" data-testid="provider">
                <h3>{ "Telephony provider" }</h3>
                <dl>
                    <dt>{ "Provider" }</dt>
                    <dd>{ if provider.kind.is_empty() { "—".to_string() } else { provider.kind.clone() } }</dd>
                    <dt>{ "Connection" }</dt>
                    <dd class={classes!("state", provider.state.clone())}>{ provider_state(&provider.state) }</dd>
                    if let Some(detail) = &provider.detail {
                        <dt>{ "Detail" }</dt>
                        <dd>{ detail.clone() }</dd>
                    }
                </dl>
            </div>
            <div class="status-part" data-testid="reps">
                <h3>{ "Connected reps" }</h3>
                if status.reps.is_empty() {
                    <p class="muted">{ "No rep is connected." }</p>
                } else {
                    <ul>
                        { for status.reps.iter().map(|rep| html! {
                            <li>{ format!("{} — {} {}", rep.rep, rep.sessions,
                                if rep.sessions == 1 { "session" } else { "sessions" }) }</li>
                        }) }
                    </ul>
                }
            </div>
            <div class="status-part wide" data-testid="activities">
                <h3>{ "Activities to V2" }</h3>
                <p>{ format!("{} waiting to be written", status.activities.backlog) }</p>
                if status.activities.failed.is_empty() {
                    <p class="muted">{ "No failed activity." }</p>
                } else {
                    <table>
                        <caption>{ "Failed activities" }</caption>
                        <thead>
                            <tr>
                                <th scope="col">{ "Call" }</th>
                                <th scope="col">{ "Reason" }</th>
                                <th scope="col">{ "Attempts" }</th>
                                <th scope="col">{ "State" }</th>
                                <th scope="col"><span class="visually-hidden">{ "Action" }</span></th>
                            </tr>
                        </thead>
                        <tbody>
                            { for status.activities.failed.iter().map(|failed| {
                                let call = failed.call_id.clone();
                                let onclick = {
                                    let on_retry = on_retry.clone();
                                    let call = call.clone();
                                    Callback::from(move |_: MouseEvent| on_retry.emit(call.clone()))
                                };
                                let retry = retries.get(&call);
                                html! {
                                    <tr data-call={call.clone()}>
                                        <td><code>{ call.clone() }</code></td>
                                        <td>{ failed.reason.clone() }</td>
                                        <td>{ failed.attempts }</td>
                                        <td>{ if failed.parked { "given up until retried" } else { "retrying by itself" } }</td>
                                        <td>
                                            { match retry {
                                                Some(Some(Ok(()))) => html! { <span class="ok">{ "Retry queued" }</span> },
                                                Some(Some(Err(why))) => html! { <span class="error">{ why.clone() }</span> },
                                                _ => html! {
                                                    <button type="button" class="btn btn-secondary"
                                                        aria-label={format!("Retry the activity of call {call}")}
                                                        disabled={retry.is_some()} {onclick}>
                                                        { "Retry" }
                                                    </button>
                                                },
                                            } }
                                        </td>
                                    </tr>
                                }
                            }) }
                        </tbody>
                    </table>
                }
            </div>
        </div>
    }
}

fn provider_state(state: &str) -> String {
    match state {
        "connected" => "connected".into(),
        "disconnected" => "not connected".into(),
        "webhook" => "receives webhooks (nothing to connect to)".into(),
        "" => "unknown".into(),
        other => other.to_string(),
    }
}

/// A time in milliseconds since the epoch, as UTC to the second.
fn utc_time(ms: f64) -> String {
    // Outside this range a JavaScript date is invalid and `toISOString` throws.
    if !ms.is_finite() || ms.abs() > 8.64e15 {
        return "at an unknown time".into();
    }
    let iso: String = js_sys::Date::new(&wasm_bindgen::JsValue::from_f64(ms))
        .to_iso_string()
        .into();
    // `2026-12-03T07:45:40.000Z` -> `2026-12-03 07:45:40 UTC`
    match iso.get(..19) {
        Some(seconds) => format!("{} UTC", seconds.replacen('T', " ", 1)),
        None => iso,
    }
}
