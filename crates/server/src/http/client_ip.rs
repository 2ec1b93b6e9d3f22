//! The client's address: the connection's peer, unless that peer is a
//! trusted proxy (`LATCHKEY_TRUSTED_PROXIES`), in which case the address
//! the proxies forwarded (`Forwarded`, RFC 7239, else `X-Forwarded-For`).
//!
//! Headers are read right to left, as proxies append to them: the first
//! address that is not itself a trusted proxy is the client. Everything to
//! its left was written by the client (or by proxies nobody trusts) and is
//! never believed. From an untrusted peer the headers are ignored entirely:
//! anyone can send them. Sign-in throttling, rate limits, audit and the
//! access log all use this one address.

use std::net::IpAddr;

use axum::http::{HeaderMap, HeaderName};
use ipnet::IpNet;

#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Vec<IpNet>);

static FORWARDED: HeaderName = HeaderName::from_static("forwarded");
static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

impl TrustedProxies {
    pub fn new(nets: Vec<IpNet>) -> Self {
        Self(nets)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.0.iter().any(|net| net.contains(&ip))
    }

    /// The client of a request that came from `peer` with `headers`.
    pub fn client(&self, peer: Option<IpAddr>, headers: &HeaderMap) -> Option<IpAddr> {
        let peer = canonical(peer?);
        if self.0.is_empty() || !self.trusts(peer) {
            return Some(peer);
        }
        let hops = if headers.contains_key(&FORWARDED) {
            forwarded_for(headers)
        } else {
            x_forwarded_for(headers)
        };
        // The nearest hop first; stop at the first untrusted address, or at
        // one that cannot be read (then the last proxy is all we know).
        let mut client = peer;
        for hop in hops.into_iter().rev() {
            match hop {
                Some(ip) if self.trusts(ip) => client = ip,
                Some(ip) => return Some(ip),
                None => return Some(client),
            }
        }
        Some(client)
    }
}

/// IPv4-mapped IPv6 addresses (`::ffff:1.2.3.4`, from dual-stack sockets)
/// as the IPv4 address they are.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

/// One forwarded address: `1.2.3.4`, `1.2.3.4:5678`, `[2001:db8::1]:80`,
/// `2001:db8::1`, quoted or not. Obfuscated identifiers (`_hidden`,
/// `unknown`) and garbage are `None`.
fn parse_hop(raw: &str) -> Option<IpAddr> {
    let s = raw.trim().trim_matches('"');
    if let Some(rest) = s.strip_prefix('[') {
        return rest.split_once(']')?.0.parse().ok().map(canonical);
    }
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Some(canonical(ip));
    }
    // IPv4 with a port.
    let (host, port) = s.rsplit_once(':')?;
    port.parse::<u16>().ok()?;
    host.parse::<std::net::Ipv4Addr>().ok().map(IpAddr::V4)
}

fn x_forwarded_for(headers: &HeaderMap) -> Vec<Option<IpAddr>> {
    headers
        .get_all(&X_FORWARDED_FOR)
        .iter()
        .flat_map(|v| match v.to_str() {
            Ok(s) => s.split(',').map(parse_hop).collect::<Vec<_>>(),
            Err(_) => vec![None],
        })
        .collect()
}

/// The `for=` of each element of every `Forwarded` header, in order.
fn forwarded_for(headers: &HeaderMap) -> Vec<Option<IpAddr>> {
    let mut hops = Vec::new();
    for v in headers.get_all(&FORWARDED) {
        let Ok(s) = v.to_str() else {
            hops.push(None);
            continue;
        };
        for element in s.split(',') {
            let found = element.split(';').find_map(|pair| {
                let (k, v) = pair.split_once('=')?;
                k.trim().eq_ignore_ascii_case("for").then_some(v)
            });
            // An element without `for=` says nothing about the client.
            if let Some(v) = found {
                hops.push(parse_hop(v));
            }
        }
    }
    hops
}

/// Parse `LATCHKEY_TRUSTED_PROXIES`-style lists: CIDRs or plain addresses,
/// separated by commas or spaces.
pub fn parse_nets(raw: &str) -> Result<Vec<IpNet>, String> {
    raw.split([',', ' '])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<IpNet>()
                .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| format!("{s:?} is not an address or a CIDR like 10.0.0.0/8"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        h
    }

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap())
    }

    #[test]
    fn untrusted_peers_are_the_client_whatever_they_send() {
        let none = TrustedProxies::default();
        let h = headers(&[("x-forwarded-for", "6.6.6.6")]);
        assert_eq!(none.client(ip("1.2.3.4"), &h), ip("1.2.3.4"));
        let some = TrustedProxies::new(parse_nets("10.0.0.0/8").unwrap());
        assert_eq!(some.client(ip("1.2.3.4"), &h), ip("1.2.3.4"));
        assert_eq!(some.client(None, &h), None);
    }

    #[test]
    fn the_rightmost_untrusted_hop_is_the_client() {
        let p = TrustedProxies::new(parse_nets("10.0.0.0/8, 192.168.1.1").unwrap());
        // The client forged the leftmost entry; the proxies appended the rest.
        let h = headers(&[("x-forwarded-for", "6.6.6.6, 203.0.113.7, 10.1.1.1")]);
        assert_eq!(p.client(ip("10.0.0.2"), &h), ip("203.0.113.7"));
        // Several header lines read as one list.
        let h = headers(&[
            ("x-forwarded-for", "6.6.6.6"),
            ("x-forwarded-for", "203.0.113.8:4711"),
        ]);
        assert_eq!(p.client(ip("192.168.1.1"), &h), ip("203.0.113.8"));
        // Every hop trusted: the leftmost is as far as we can see.
        let h = headers(&[("x-forwarded-for", "10.9.9.9, 10.1.1.1")]);
        assert_eq!(p.client(ip("10.0.0.2"), &h), ip("10.9.9.9"));
        // Garbage stops the walk at the last proxy known.
        let h = headers(&[("x-forwarded-for", "1.1.1.1, nonsense, 10.1.1.1")]);
        assert_eq!(p.client(ip("10.0.0.2"), &h), ip("10.1.1.1"));
        // No header at all: the proxy itself.
        assert_eq!(p.client(ip("10.0.0.2"), &HeaderMap::new()), ip("10.0.0.2"));
    }

    #[test]
    fn forwarded_wins_over_x_forwarded_for() {
        let p = TrustedProxies::new(parse_nets("::1/128,127.0.0.1").unwrap());
        let h = headers(&[
            (
                "forwarded",
                r#"for=6.6.6.6, for="[2001:db8:cafe::17]:4711";proto=https"#,
            ),
            ("x-forwarded-for", "5.5.5.5"),
        ]);
        assert_eq!(p.client(ip("::1"), &h), ip("2001:db8:cafe::17"));
        let h = headers(&[("forwarded", "for=_hidden")]);
        assert_eq!(p.client(ip("127.0.0.1"), &h), ip("127.0.0.1"));
        // A dual-stack socket's mapped address is the IPv4 one.
        let h = headers(&[("forwarded", "for=198.51.100.1:80;by=x")]);
        assert_eq!(p.client(ip("::ffff:127.0.0.1"), &h), ip("198.51.100.1"));
    }

    #[test]
    fn lists_of_nets() {
        assert_eq!(parse_nets("").unwrap().len(), 0);
        assert_eq!(parse_nets("10.0.0.0/8 fd00::/8,1.2.3.4").unwrap().len(), 3);
        assert!(parse_nets("10.0.0.0/33").is_err());
        assert!(parse_nets("localhost").is_err());
    }
}
