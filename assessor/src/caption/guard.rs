//! The address guard: profile data is untrusted and the assessor runs inside
//! a cluster, so an image URL must not make it fetch from the pod's network
//! (the cloud metadata service, the kubelet, other pods, localhost).
//!
//! The check runs where the connection's address is decided, in the HTTP
//! client's DNS resolver ([`GuardedResolver`]), so the address checked is the
//! address connected to (no window for DNS rebinding); IP-literal hosts,
//! which skip the resolver, are checked by the fetcher before each request.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use ipnet::IpNet;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// Why an address is refused, or `None` when it is public.
pub(crate) fn blocked_range(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => blocked_v4(v4),
        IpAddr::V6(v6) => blocked_v6(v6),
    }
}

fn blocked_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    Some(match () {
        _ if ip.is_loopback() => "loopback",
        _ if a == 0 => "unspecified",
        _ if ip.is_private() => "private",
        _ if ip.is_link_local() => "link-local (cloud metadata)",
        _ if a == 100 && (64..128).contains(&b) => "shared (CGNAT)",
        _ if a == 198 && (b == 18 || b == 19) => "benchmarking",
        _ if a == 192 && b == 0 && c == 0 => "IETF protocol assignment",
        _ if ip.is_multicast() => "multicast",
        _ if a >= 240 => "reserved or broadcast",
        _ => return None,
    })
}

fn blocked_v6(ip: Ipv6Addr) -> Option<&'static str> {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return blocked_v4(v4);
    }
    let segments = ip.segments();
    // NAT64 (64:ff9b::/96) and 6to4 (2002::/16) carry an IPv4 address.
    if segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return blocked_v4(embedded_v4(segments[6], segments[7]));
    }
    if segments[0] == 0x2002 {
        return blocked_v4(embedded_v4(segments[1], segments[2]));
    }
    Some(match () {
        _ if ip.is_loopback() => "loopback",
        _ if ip.is_unspecified() => "unspecified",
        _ if (segments[0] & 0xfe00) == 0xfc00 => "unique-local (private)",
        _ if (segments[0] & 0xffc0) == 0xfe80 => "link-local",
        _ if ip.is_multicast() => "multicast",
        // IPv4-compatible ::a.b.c.d (deprecated) embeds an IPv4 address too.
        _ if segments[..6] == [0; 6] => {
            return blocked_v4(embedded_v4(segments[6], segments[7]));
        }
        _ => return None,
    })
}

fn embedded_v4(high: u16, low: u16) -> Ipv4Addr {
    let [a, b] = high.to_be_bytes();
    let [c, d] = low.to_be_bytes();
    Ipv4Addr::new(a, b, c, d)
}

/// A `CAPTION_ALLOW_HOSTS` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Allowed {
    /// A host name, lower-case, without a trailing dot.
    Host(String),
    /// `*.example.com`: any name ending in `.example.com`.
    Suffix(String),
    /// An IP address or network.
    Net(IpNet),
}

/// What the guard allows.
#[derive(Debug, Clone, Default)]
pub(crate) struct AddressPolicy {
    /// `CAPTION_ALLOW_PRIVATE=true`: no address is refused.
    allow_private: bool,
    allowed: Vec<Allowed>,
}

impl AddressPolicy {
    /// Reads `CAPTION_ALLOW_HOSTS` (comma- or space-separated).
    pub(crate) fn parse(allow_hosts: &str, allow_private: bool) -> Result<Self, String> {
        let mut allowed = Vec::new();
        for entry in allow_hosts
            .split([',', ' ', '\n', '\t'])
            .map(str::trim)
            .filter(|e| !e.is_empty())
        {
            let entry = entry.to_ascii_lowercase();
            let entry = entry.trim_end_matches('.');
            if let Ok(net) = entry.parse::<IpNet>() {
                allowed.push(Allowed::Net(net));
            } else if let Ok(ip) = entry.trim_matches(['[', ']']).parse::<IpAddr>() {
                allowed.push(Allowed::Net(IpNet::from(ip)));
            } else if let Some(suffix) = entry.strip_prefix("*.") {
                if !valid_host_name(suffix) {
                    return Err(format!(
                        "{entry:?} is not a host name, *.suffix, IP or CIDR"
                    ));
                }
                allowed.push(Allowed::Suffix(format!(".{suffix}")));
            } else if valid_host_name(entry) {
                allowed.push(Allowed::Host(entry.to_string()));
            } else {
                return Err(format!(
                    "{entry:?} is not a host name, *.suffix, IP or CIDR"
                ));
            }
        }
        Ok(AddressPolicy {
            allow_private,
            allowed,
        })
    }

    fn host_allowed(&self, host: &str) -> bool {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        self.allowed.iter().any(|a| match a {
            Allowed::Host(h) => *h == host,
            Allowed::Suffix(s) => host.ends_with(s.as_str()),
            Allowed::Net(_) => false,
        })
    }

    fn ip_allowed(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        self.allowed.iter().any(|a| match a {
            Allowed::Net(net) => net.contains(&ip),
            _ => false,
        })
    }

    /// Checks one address that `host` resolved to (or is, for an IP literal).
    pub(crate) fn check(&self, host: &str, ip: IpAddr) -> Result<(), String> {
        if self.allow_private || self.host_allowed(host) || self.ip_allowed(ip) {
            return Ok(());
        }
        match blocked_range(ip) {
            None => Ok(()),
            Some(range) if host.trim_matches(['[', ']']) == ip.to_string() => Err(format!(
                "{ip} is a {range} address; images are not fetched from the pod's own network \
                 unless CAPTION_ALLOW_HOSTS or CAPTION_ALLOW_PRIVATE=true allows it"
            )),
            Some(range) => Err(format!(
                "{host} resolves to {ip}, a {range} address; images are not fetched from the \
                 pod's own network unless CAPTION_ALLOW_HOSTS or CAPTION_ALLOW_PRIVATE=true allows it"
            )),
        }
    }
}

fn valid_host_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// A refusal raised inside the resolver, found again in reqwest's error
/// chain by the fetcher.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct Refusal(pub(crate) String);

/// The system resolver (getaddrinfo, through tokio), with every answer
/// checked against the policy. A name with any refused address is refused
/// as a whole: trying its other addresses would let a rebinding server
/// choose.
pub(crate) struct GuardedResolver {
    pub(crate) policy: Arc<AddressPolicy>,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = Arc::clone(&self.policy);
        let host = name.as_str().to_string();
        Box::pin(async move {
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            for addr in &addrs {
                policy.check(&host, addr.ip()).map_err(Refusal)?;
            }
            let addrs: Addrs = Box::new(addrs.into_iter());
            Ok(addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn private_and_special_ranges_are_blocked() {
        for (addr, range) in [
            ("127.0.0.1", "loopback"),
            ("127.255.0.9", "loopback"),
            ("0.0.0.0", "unspecified"),
            ("10.1.2.3", "private"),
            ("172.16.0.1", "private"),
            ("172.31.255.255", "private"),
            ("192.168.1.1", "private"),
            ("169.254.169.254", "link-local (cloud metadata)"),
            ("100.64.0.1", "shared (CGNAT)"),
            ("198.18.0.1", "benchmarking"),
            ("224.0.0.1", "multicast"),
            ("255.255.255.255", "reserved or broadcast"),
            ("::1", "loopback"),
            ("::", "unspecified"),
            ("fc00::1", "unique-local (private)"),
            ("fd12:3456::1", "unique-local (private)"),
            ("fe80::1", "link-local"),
            ("::ffff:127.0.0.1", "loopback"),
            ("::ffff:169.254.169.254", "link-local (cloud metadata)"),
            ("64:ff9b::a9fe:a9fe", "link-local (cloud metadata)"),
            ("2002:7f00:1::", "loopback"),
            ("ff02::1", "multicast"),
        ] {
            assert_eq!(blocked_range(ip(addr)), Some(range), "{addr}");
        }
    }

    #[test]
    fn public_addresses_pass() {
        for addr in [
            "1.1.1.1",
            "8.8.8.8",
            "172.32.0.1",
            "100.128.0.1",
            "2606:4700::1111",
            "::ffff:1.1.1.1",
            "64:ff9b::808:808",
        ] {
            assert_eq!(blocked_range(ip(addr)), None, "{addr}");
        }
    }

    #[test]
    fn allow_list_matches_names_suffixes_and_networks() {
        let policy = AddressPolicy::parse(
            "images.internal, *.cdn.internal 10.20.0.0/16,127.0.0.1",
            false,
        )
        .unwrap();
        assert!(policy.check("images.internal", ip("10.0.0.1")).is_ok());
        assert!(policy.check("IMAGES.internal.", ip("10.0.0.1")).is_ok());
        assert!(policy.check("a.cdn.internal", ip("192.168.0.1")).is_ok());
        assert!(policy.check("cdn.internal", ip("192.168.0.1")).is_err());
        assert!(policy.check("x.example", ip("10.20.3.4")).is_ok());
        assert!(policy.check("x.example", ip("10.21.3.4")).is_err());
        assert!(policy.check("127.0.0.1", ip("127.0.0.1")).is_ok());
        assert!(policy.check("localhost", ip("::ffff:127.0.0.1")).is_ok());
        assert!(policy.check("localhost", ip("127.0.0.2")).is_err());
    }

    #[test]
    fn refusals_name_the_host_the_address_and_the_way_out() {
        let policy = AddressPolicy::default();
        let message = policy.check("localhost", ip("127.0.0.1")).unwrap_err();
        assert!(message.contains("localhost resolves to 127.0.0.1, a loopback address"));
        assert!(message.contains("CAPTION_ALLOW_HOSTS"));
        let message = policy
            .check("169.254.169.254", ip("169.254.169.254"))
            .unwrap_err();
        assert!(message.starts_with("169.254.169.254 is a link-local"));
        assert!(
            AddressPolicy::parse("", true)
                .unwrap()
                .check("localhost", ip("127.0.0.1"))
                .is_ok()
        );
    }

    #[test]
    fn bad_entries_are_named() {
        assert!(
            AddressPolicy::parse("exa mple.com,http://x", false)
                .unwrap_err()
                .contains("\"http://x\"")
        );
        assert!(AddressPolicy::parse("10.0.0.0/33", false).is_err());
    }

    #[tokio::test]
    async fn the_resolver_refuses_localhost() {
        let resolver = GuardedResolver {
            policy: Arc::new(AddressPolicy::default()),
        };
        let error = match resolver.resolve("localhost".parse().unwrap()).await {
            Ok(_) => panic!("localhost was resolved"),
            Err(e) => e,
        };
        assert!(error.downcast_ref::<Refusal>().is_some(), "{error}");
        let open = GuardedResolver {
            policy: Arc::new(AddressPolicy::parse("localhost", false).unwrap()),
        };
        assert!(open.resolve("localhost".parse().unwrap()).await.is_ok());
    }
}
