//! Bounds on what one client, or all of them together, may hold of an instance: connections,
//! WebSocket sign-ins still in progress, the time to send a request, and a signed-in widget's
//! pace of actions. The defaults keep a 128 MB instance (manifest.yml) alive under a flood of
//! anonymous connections while leaving room for thousands of reps reconnecting after a deploy.

use std::net::IpAddr;
use std::time::Duration;

use ipnet::IpNet;

use super::ConfigError;

#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    /// Open TCP connections at once; further ones are closed as soon as they are accepted.
    pub max_connections: usize,
    /// How long a client may take to send a request's headers (a slow sender otherwise holds a
    /// socket for ever).
    pub header_read_timeout: Duration,
    /// How long an HTTP request may take, body included (WebSocket upgrades answer at once).
    pub request_timeout: Duration,
    /// WebSocket connections that have not yet signed in with `hello`, in all.
    pub pending_hellos: usize,
    /// The same, per client address.
    pub pending_hellos_per_client: usize,
    /// Peers whose `X-Forwarded-For` is believed (the platform's router): behind them, the
    /// client address is the right-most forwarded address that is not itself such a peer.
    pub trusted_proxies: Vec<IpNet>,
    /// Widget actions (commands, dials, notes...) one connection may have in progress at once.
    pub actions_in_flight: usize,
    /// Widget actions per second one connection may send on average...
    pub actions_per_sec: u32,
    /// ...and in one burst.
    pub actions_burst: u32,
    /// Seconds between two dials of one connection on average (a dial costs money and rings a
    /// phone); two may follow each other at once.
    pub dial_interval: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 20_000,
            header_read_timeout: Duration::from_secs(30),
            request_timeout: Duration::from_secs(30),
            pending_hellos: 512,
            pending_hellos_per_client: 32,
            trusted_proxies: default_trusted_proxies(),
            actions_in_flight: 4,
            actions_per_sec: 5,
            actions_burst: 20,
            dial_interval: Duration::from_secs(5),
        }
    }
}

/// Loopback and the private ranges: where Cloud Foundry's router and a local reverse proxy
/// connect from. A client on the public internet never has such a peer address.
fn default_trusted_proxies() -> Vec<IpNet> {
    [
        "127.0.0.0/8",
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "::1/128",
        "fc00::/7",
    ]
    .iter()
    .filter_map(|net| net.parse().ok())
    .collect()
}

impl Limits {
    /// Whether `peer` is a proxy whose `X-Forwarded-For` is believed.
    pub fn trusts(&self, peer: IpAddr) -> bool {
        let peer = peer.to_canonical();
        self.trusted_proxies.iter().any(|net| net.contains(&peer))
    }

    /// Reads the `CTI_*` variables of the limits over the defaults.
    pub(super) fn from_vars(
        get: &impl Fn(&str) -> Option<String>,
        number: &impl Fn(&'static str, u64) -> Result<u64, ConfigError>,
    ) -> Result<Limits, ConfigError> {
        let mut limits = Limits::default();
        let count = |var: &'static str, default: usize| -> Result<usize, ConfigError> {
            let n = number(var, default as u64)?;
            if n == 0 {
                return Err(ConfigError::Invalid {
                    var,
                    problem: "must be at least 1".into(),
                });
            }
            Ok(usize::try_from(n).unwrap_or(usize::MAX))
        };
        let secs = |var: &'static str, default: Duration| -> Result<Duration, ConfigError> {
            Ok(Duration::from_secs(number(var, default.as_secs())?.max(1)))
        };
        limits.max_connections = count("CTI_MAX_CONNECTIONS", limits.max_connections)?;
        limits.header_read_timeout =
            secs("CTI_HEADER_READ_TIMEOUT_SECS", limits.header_read_timeout)?;
        limits.request_timeout = secs("CTI_REQUEST_TIMEOUT_SECS", limits.request_timeout)?;
        limits.pending_hellos = count("CTI_MAX_PENDING_HELLOS", limits.pending_hellos)?;
        limits.pending_hellos_per_client = count(
            "CTI_MAX_PENDING_HELLOS_PER_CLIENT",
            limits.pending_hellos_per_client,
        )?;
        limits.actions_in_flight = count("CTI_WS_ACTIONS_IN_FLIGHT", limits.actions_in_flight)?;
        limits.actions_per_sec = u32::try_from(count(
            "CTI_WS_ACTIONS_PER_SEC",
            limits.actions_per_sec as usize,
        )?)
        .unwrap_or(u32::MAX);
        limits.actions_burst = limits.actions_burst.max(limits.actions_per_sec);
        limits.dial_interval = secs("CTI_WS_DIAL_INTERVAL_SECS", limits.dial_interval)?;
        if let Some(list) = get("CTI_TRUSTED_PROXIES") {
            limits.trusted_proxies = list
                .split(',')
                .map(str::trim)
                .filter(|net| !net.is_empty())
                .map(|net| {
                    net.parse::<IpNet>()
                        .or_else(|_| net.parse::<IpAddr>().map(IpNet::from))
                        .map_err(|_| ConfigError::Invalid {
                            var: "CTI_TRUSTED_PROXIES",
                            problem: format!("{net:?} is neither an address nor a CIDR range"),
                        })
                })
                .collect::<Result<_, _>>()?;
        }
        Ok(limits)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(vars: &[(&str, &str)]) -> Result<Limits, ConfigError> {
        let get = |var: &str| {
            vars.iter()
                .find(|(name, _)| *name == var)
                .map(|(_, v)| (*v).to_owned())
        };
        let number = |var: &'static str, default: u64| match get(var) {
            None => Ok(default),
            Some(v) => v.parse().map_err(|_| ConfigError::Invalid {
                var,
                problem: format!("{v:?} is not a whole number"),
            }),
        };
        Limits::from_vars(&get, &number)
    }

    #[test]
    fn the_platform_router_is_trusted_and_the_internet_is_not() {
        let limits = read(&[]).expect("defaults");
        assert!(limits.trusts("10.0.3.7".parse().expect("ip")));
        assert!(limits.trusts("::ffff:127.0.0.1".parse().expect("ip")));
        assert!(!limits.trusts("203.0.113.9".parse().expect("ip")));
    }

    #[test]
    fn variables_override_and_nonsense_is_named() {
        let limits = read(&[
            ("CTI_MAX_PENDING_HELLOS", "8"),
            ("CTI_TRUSTED_PROXIES", "198.51.100.0/24, 203.0.113.1"),
        ])
        .expect("valid");
        assert_eq!(limits.pending_hellos, 8);
        assert!(limits.trusts("198.51.100.20".parse().expect("ip")));
        assert!(limits.trusts("203.0.113.1".parse().expect("ip")));
        assert!(!limits.trusts("10.0.0.1".parse().expect("ip")));

        let err = read(&[("CTI_TRUSTED_PROXIES", "the router")]).expect_err("refused");
        assert!(err.to_string().contains("CTI_TRUSTED_PROXIES"), "{err}");
        let err = read(&[("CTI_MAX_CONNECTIONS", "0")]).expect_err("refused");
        assert!(err.to_string().contains("CTI_MAX_CONNECTIONS"), "{err}");
    }
}
