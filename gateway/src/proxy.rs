//! The client address behind a reverse proxy or load balancer.
//!
//! Failed authentications are throttled per client address ([`crate::throttle`]). Behind an
//! ingress every connection comes from the proxy, so without help all clients would share one
//! budget; with help from anyone, a client could pick any address it likes. So the address a
//! proxy reports is believed only from the peers named in `--trusted-proxies`:
//! - `X-Forwarded-For` (both listeners): read from the right, skipping trusted proxies, the
//!   first address that is not one is the client (a client may write anything on the left);
//! - the PROXY protocol v1 line (charger listener only; `PROXY TCP4 client proxy cport pport`
//!   before the HTTP request): its source address is the client.
//!
//! From any other peer both are ignored (a PROXY line from an untrusted peer is not HTTP and
//! the request is refused) and the peer's own address counts.

use std::net::IpAddr;
use std::str::FromStr;

/// One network in CIDR notation (`10.0.0.0/8`, `2001:db8::/32`) or a single address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Network {
    address: IpAddr,
    prefix: u8,
}

impl Network {
    pub fn contains(&self, address: IpAddr) -> bool {
        match (self.address, canonical(address)) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                prefix_matches(&net.octets(), &ip.octets(), self.prefix)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                prefix_matches(&net.octets(), &ip.octets(), self.prefix)
            }
            _ => false,
        }
    }
}

impl FromStr for Network {
    type Err = String;

    fn from_str(text: &str) -> Result<Network, String> {
        let text = text.trim();
        let bad = || format!("`{text}` is not an address or a network like 10.0.0.0/8");
        let (address, prefix) = match text.split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (text, None),
        };
        let address = canonical(address.parse::<IpAddr>().map_err(|_| bad())?);
        let max = if address.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(prefix) => prefix.parse::<u8>().map_err(|_| bad())?,
            None => max,
        };
        if prefix > max {
            return Err(format!("`{text}`: a prefix length is at most {max}"));
        }
        Ok(Network { address, prefix })
    }
}

impl std::fmt::Display for Network {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.address, self.prefix)
    }
}

/// IPv4 mapped into IPv6 (`::ffff:a.b.c.d`, what a dual-stack listener reports) as IPv4.
fn canonical(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(address, IpAddr::V4),
        v4 => v4,
    }
}

fn prefix_matches(net: &[u8], ip: &[u8], prefix: u8) -> bool {
    let full = usize::from(prefix / 8);
    let rest = prefix % 8;
    if net.get(..full) != ip.get(..full) {
        return false;
    }
    if rest == 0 {
        return true;
    }
    let mask = 0xffu8 << (8 - rest);
    match (net.get(full), ip.get(full)) {
        (Some(n), Some(i)) => n & mask == i & mask,
        _ => false,
    }
}

/// The peers whose word on the client address is believed (`--trusted-proxies`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies {
    networks: Vec<Network>,
}

impl TrustedProxies {
    pub fn new(networks: Vec<Network>) -> TrustedProxies {
        TrustedProxies { networks }
    }

    pub fn trusts(&self, peer: IpAddr) -> bool {
        self.networks.iter().any(|network| network.contains(peer))
    }

    /// The client behind `peer` given the `X-Forwarded-For` values of a request (in header
    /// order): `peer` itself unless it is trusted; else, from the right, the first forwarded
    /// address that is not a trusted proxy (the leftmost one when all are). Unparsable entries
    /// end the walk: what stands left of them cannot be trusted either.
    pub fn client<'a>(&self, peer: IpAddr, forwarded_for: impl Iterator<Item = &'a str>) -> IpAddr {
        if !self.trusts(peer) {
            return peer;
        }
        let hops: Vec<&str> = forwarded_for
            .flat_map(|value| value.split(','))
            .map(str::trim)
            .filter(|hop| !hop.is_empty())
            .collect();
        let mut client = peer;
        for hop in hops.iter().rev() {
            let Some(address) = parse_hop(hop) else {
                break;
            };
            client = canonical(address);
            if !self.trusts(client) {
                break;
            }
        }
        client
    }
}

/// One `X-Forwarded-For` entry: an address, possibly with a port (`1.2.3.4:5678`,
/// `[2001:db8::1]:5678`).
fn parse_hop(hop: &str) -> Option<IpAddr> {
    if let Ok(address) = hop.parse() {
        return Some(address);
    }
    if let Some(rest) = hop.strip_prefix('[') {
        return rest.split_once(']')?.0.parse().ok();
    }
    hop.rsplit_once(':')?.0.parse().ok()
}

/// The source address of a PROXY protocol v1 line (without its CRLF): `PROXY TCP4 src dst
/// sport dport` or `PROXY TCP6 …`. `Ok(None)` for `PROXY UNKNOWN` (the proxy's own health
/// check: the peer's address counts); `Err` for anything else.
pub(crate) fn proxy_v1_source(line: &[u8]) -> Result<Option<IpAddr>, &'static str> {
    let line = std::str::from_utf8(line).map_err(|_| "not text")?;
    let mut words = line.split(' ');
    if words.next() != Some("PROXY") {
        return Err("not a PROXY line");
    }
    let protocol = words.next().ok_or("no protocol")?;
    if protocol == "UNKNOWN" {
        return Ok(None);
    }
    let source: IpAddr = words
        .next()
        .and_then(|word| word.parse().ok())
        .ok_or("no source address")?;
    match (protocol, source) {
        ("TCP4", IpAddr::V4(_)) | ("TCP6", IpAddr::V6(_)) => Ok(Some(source)),
        _ => Err("unknown protocol"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn networks_parse_and_contain() {
        let net: Network = "10.1.0.0/16".parse().unwrap();
        assert!(net.contains(ip("10.1.200.3")));
        assert!(!net.contains(ip("10.2.0.1")));
        assert!(net.contains(ip("::ffff:10.1.0.9")), "mapped IPv4");
        let one: Network = "192.0.2.7".parse().unwrap();
        assert!(one.contains(ip("192.0.2.7")) && !one.contains(ip("192.0.2.8")));
        let v6: Network = "2001:db8::/33".parse().unwrap();
        assert!(v6.contains(ip("2001:db8:7fff::1")));
        assert!(!v6.contains(ip("2001:db8:8000::1")));
        assert!(!v6.contains(ip("10.1.0.1")));
        for bad in ["10.0.0.0/33", "nonsense", "10.0.0.0/x", "::/129", ""] {
            assert!(bad.parse::<Network>().is_err(), "{bad}");
        }
    }

    #[test]
    fn forwarded_for_counts_only_from_trusted_peers_and_skips_trusted_hops() {
        let proxies = TrustedProxies::new(vec!["10.0.0.0/8".parse().unwrap()]);
        let header = ["198.51.100.1, 203.0.113.9", "10.0.0.2"];
        assert_eq!(
            proxies.client(ip("192.0.2.1"), header.into_iter()),
            ip("192.0.2.1"),
            "an untrusted peer's header is ignored"
        );
        assert_eq!(
            proxies.client(ip("10.0.0.1"), header.into_iter()),
            ip("203.0.113.9"),
            "the first untrusted hop from the right; the spoofable left part is not read"
        );
        assert_eq!(
            proxies.client(ip("10.0.0.1"), std::iter::empty()),
            ip("10.0.0.1"),
            "no header: the proxy itself"
        );
        assert_eq!(
            proxies.client(ip("10.0.0.1"), ["garbage, 10.0.0.3"].into_iter()),
            ip("10.0.0.3")
        );
        assert_eq!(
            proxies.client(ip("10.0.0.1"), ["[2001:db8::5]:443"].into_iter()),
            ip("2001:db8::5")
        );
        assert_eq!(
            TrustedProxies::default().client(ip("10.0.0.1"), header.into_iter()),
            ip("10.0.0.1"),
            "nobody trusted by default"
        );
    }

    #[test]
    fn proxy_v1_lines() {
        assert_eq!(
            proxy_v1_source(b"PROXY TCP4 203.0.113.5 10.0.0.1 40000 9000"),
            Ok(Some(ip("203.0.113.5")))
        );
        assert_eq!(
            proxy_v1_source(b"PROXY TCP6 2001:db8::1 2001:db8::2 40000 9000"),
            Ok(Some(ip("2001:db8::1")))
        );
        assert_eq!(proxy_v1_source(b"PROXY UNKNOWN"), Ok(None));
        assert!(proxy_v1_source(b"PROXY TCP4 2001:db8::1 x 1 2").is_err());
        assert!(proxy_v1_source(b"GET / HTTP/1.1").is_err());
    }
}
