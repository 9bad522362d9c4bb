//! The address of the client behind a request, for the limits kept per client.
//!
//! Behind Cloud Foundry's router every connection comes from the router, so the peer address
//! alone would put all reps in one bucket. A peer in `CTI_TRUSTED_PROXIES` is a proxy: the client
//! is then the right-most `X-Forwarded-For` address that is not itself a trusted proxy (each
//! proxy appends the address it saw, so entries further left are the client's own claims).

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::HeaderMap;
use axum::http::request::Parts;

use crate::config::Limits;
use crate::state::AppState;

/// The client's address; None for a request that came without a socket (in-process tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct ClientAddr(pub(super) Option<IpAddr>);

impl FromRequestParts<Arc<AppState>> for ClientAddr {
    type Rejection = Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Self, Self::Rejection> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip());
        Ok(ClientAddr(peer.map(|peer| {
            client(peer, &parts.headers, &state.config.limits)
        })))
    }
}

fn client(peer: IpAddr, headers: &HeaderMap, limits: &Limits) -> IpAddr {
    let peer = peer.to_canonical();
    if !limits.trusts(peer) {
        return peer;
    }
    let forwarded: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .collect();
    let mut client = peer;
    for entry in forwarded.iter().rev() {
        match entry.parse::<IpAddr>() {
            Ok(addr) => {
                client = addr.to_canonical();
                if !limits.trusts(client) {
                    break;
                }
            }
            // Garbage (or `ip:port`) from here leftwards is the client's own word.
            Err(_) => break,
        }
    }
    client
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from(peer: &str, forwarded: &[&str]) -> String {
        let mut headers = HeaderMap::new();
        for value in forwarded {
            headers.append("x-forwarded-for", value.parse().expect("a header value"));
        }
        client(
            peer.parse().expect("an address"),
            &headers,
            &Limits::default(),
        )
        .to_string()
    }

    #[test]
    fn a_direct_client_is_its_peer_whatever_it_claims() {
        assert_eq!(from("203.0.113.5", &["198.51.100.1"]), "203.0.113.5");
    }

    #[test]
    fn behind_the_router_the_last_untrusted_hop_is_the_client() {
        assert_eq!(from("10.0.0.2", &["203.0.113.5"]), "203.0.113.5");
        // A forged entry on the left does not help the client hide.
        assert_eq!(
            from("10.0.0.2", &["198.51.100.1, 203.0.113.5", "10.0.0.9"]),
            "203.0.113.5"
        );
        assert_eq!(from("10.0.0.2", &[]), "10.0.0.2");
        assert_eq!(from("10.0.0.2", &["not an address"]), "10.0.0.2");
    }
}
