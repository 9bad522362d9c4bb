//! `dial`: click-to-dial. The number is normalized with the tenant's region and the provider
//! places the call from the rep's line; its events bring the call to the widget.

use cti_protocol::ws::Control;

use super::AgentError;
use crate::secret::mask_number;
use crate::state::{AppState, Tenant};

/// Longer than any phone number with an extension; refused before it reaches the parser.
const MAX_DIAL_CHARS: usize = 64;

pub(super) async fn apply(
    app: &AppState,
    tenant: &Tenant,
    rep: &str,
    number: &str,
) -> Result<(), AgentError> {
    if !tenant.adapter.controls().contains(&Control::Dial) {
        return Err(AgentError::NotOffered {
            provider: tenant.adapter.provider(),
            control: Control::Dial,
        });
    }
    if number.len() > MAX_DIAL_CHARS {
        return Err(AgentError::NumberTooLong);
    }
    let e164 = crate::numbers::normalize(number, &tenant.region)
        .map_err(AgentError::InvalidNumber)?
        .e164;
    match tenant.adapter.dial(rep, &e164).await {
        Ok(call_id) => {
            app.metrics.command("dial", "ok");
            tracing::info!(to = %mask_number(&e164), call = ?call_id, "dialling for the rep");
            Ok(())
        }
        Err(err) => {
            app.metrics.command("dial", "failed");
            tracing::warn!(%err, "dialling failed");
            Err(AgentError::DialFailed(err))
        }
    }
}
