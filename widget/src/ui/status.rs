//! The connection status line at the top of the panel.

use yew::prelude::*;

use super::clock::use_now;
use crate::connection::{ConnectionStatus, Disconnect};
use crate::i18n::use_i18n;

#[derive(Debug, Clone, PartialEq, Properties)]
pub struct StatusLineProps {
    pub status: ConnectionStatus,
    /// "Retry now" while waiting to reconnect.
    pub on_retry: Callback<()>,
}

/// Always present, so the rep can tell "no calls" from "not connected" at a glance.
#[component]
pub fn StatusLine(props: &StatusLineProps) -> Html {
    let i18n = use_i18n();
    let state = props.status.data_state();
    let content = match &props.status {
        ConnectionStatus::Connected => {
            html! { <span class="status-text">{ i18n.t("status-connected") }</span> }
        }
        ConnectionStatus::Connecting => {
            html! { <span class="status-text">{ i18n.t("status-connecting") }</span> }
        }
        ConnectionStatus::Reconnecting {
            retry_at_ms,
            reason,
        } => {
            let retry = props.on_retry.reform(|_: MouseEvent| ());
            html! {
                <>
                    <Countdown retry_at_ms={*retry_at_ms} reason={reason.clone()} />
                    <button type="button" class="btn-link status-retry-now"
                        data-testid="btn-retry-now" onclick={retry}>
                        { i18n.t("status-retry-now") }
                    </button>
                </>
            }
        }
        ConnectionStatus::SignedOut { .. } => {
            html! { <span class="status-text">{ i18n.t("status-signed-out") }</span> }
        }
    };
    html! {
        <div
            class={classes!("status", format!("status-{state}"))}
            role="status"
            aria-live="polite"
            data-testid="connection-status"
            data-state={state}
        >
            <span class="status-dot" aria-hidden="true"></span>
            { content }
        </div>
    }
}

#[derive(Debug, Clone, PartialEq, Properties)]
struct CountdownProps {
    retry_at_ms: u64,
    reason: Disconnect,
}

/// "Disconnected (reason) · Reconnecting in 4s". The countdown is hidden from screen readers:
/// announcing every tick of a polite live region would drown everything else out, and the
/// switch to "Connecting…" is announced anyway.
#[component]
fn Countdown(props: &CountdownProps) -> Html {
    let i18n = use_i18n();
    let now = use_now(500);
    let seconds = props.retry_at_ms.saturating_sub(now).div_ceil(1_000);
    let (id, args) = props.reason.message();
    let reason = i18n.t_args(&id, &args);
    let seconds = i64::try_from(seconds).unwrap_or(i64::MAX);
    html! {
        <span class="status-text">
            <span class="status-reason" title={props.reason.relay_reason().map(str::to_owned)}>
                { i18n.t_args("status-disconnected", &[("reason", reason.into())]) }
            </span>
            <span class="status-retry" aria-hidden="true" data-testid="reconnect-in">
                { " · " }{ i18n.t_args("status-reconnecting-in", &[("seconds", seconds.to_string().into())]) }
            </span>
        </span>
    }
}
