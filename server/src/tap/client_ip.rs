//! The customer's address behind a reverse proxy.
//!
//! Behind nginx or Caddy every connection comes from the proxy, so the per-IP rate limit
//! and unique-visitor counts would see one visitor. When the peer is one of the
//! configured `trusted_proxies`, the client is read from `X-Forwarded-For`, walking it
//! from the right (the entry the nearest proxy appended) and skipping addresses of
//! trusted proxies: the first one that is not trusted is the client. Entries further
//! left were written by the client itself and are never believed, so a phone sending
//! its own `X-Forwarded-For: 1.2.3.4` cannot pick the address it is counted under.
//! Without trusted proxies (the default) the header is ignored entirely.

use std::net::IpAddr;
use std::str::FromStr;

use axum::http::HeaderMap;

/// An address block such as `10.0.0.0/8`, `127.0.0.1` or `fd00::/8`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    net: IpAddr,
    bits: u8,
}

impl FromStr for Cidr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let bad =
            || format!("{s:?} is not an address or block like 127.0.0.1, 10.0.0.0/8 or fd00::/8");
        let (addr, bits) = match s.split_once('/') {
            Some((a, b)) => (a, Some(b.parse::<u8>().map_err(|_| bad())?)),
            None => (s, None),
        };
        let net = IpAddr::from_str(addr).map_err(|_| bad())?.to_canonical();
        let max = if net.is_ipv4() { 32 } else { 128 };
        let bits = bits.unwrap_or(max);
        if bits > max {
            return Err(bad());
        }
        let block = Self { net, bits };
        if block.mask(net) != net {
            return Err(format!(
                "{s:?} has host bits set; write the block's first address (e.g. 10.0.0.0/8)"
            ));
        }
        Ok(block)
    }
}

impl Cidr {
    fn mask(&self, ip: IpAddr) -> IpAddr {
        match ip {
            IpAddr::V4(v) => {
                let m = u32::MAX.checked_shl(32 - u32::from(self.bits)).unwrap_or(0);
                IpAddr::V4((u32::from(v) & m).into())
            }
            IpAddr::V6(v) => {
                let m = u128::MAX
                    .checked_shl(128 - u32::from(self.bits))
                    .unwrap_or(0);
                IpAddr::V6((u128::from(v) & m).into())
            }
        }
    }

    /// Whether `ip` is inside the block.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        ip.is_ipv4() == self.net.is_ipv4() && self.mask(ip) == self.net
    }
}

/// The proxies whose `X-Forwarded-For` is believed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<Cidr>);

impl TrustedProxies {
    /// From blocks; an empty list trusts nobody.
    pub fn new(blocks: Vec<Cidr>) -> Self {
        Self(blocks)
    }

    /// Parses a comma-separated list (`TAPKIT_TRUSTED_PROXIES`).
    pub fn parse_list(s: &str) -> Result<Self, String> {
        s.split(',')
            .filter(|p| !p.trim().is_empty())
            .map(Cidr::from_str)
            .collect::<Result<Vec<_>, _>>()
            .map(Self)
    }

    /// No proxy is trusted.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|c| c.contains(ip))
    }

    /// The client's address for a request from `peer` with `headers`.
    pub fn client_ip(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let peer = peer.to_canonical();
        if !self.trusts(peer) {
            return peer;
        }
        // Several X-Forwarded-For headers are one list in order (RFC 9110 §5.3), read
        // here from its end without collecting it (this runs on every tap). Split bytes,
        // not text: the client's own part may hold anything, and must not make the
        // proxy's appended (good) entry unreadable.
        let mut client = peer;
        let entries = headers
            .get_all("x-forwarded-for")
            .iter()
            .rev()
            .flat_map(|v| v.as_bytes().rsplit(|b| *b == b','));
        for entry in entries {
            match std::str::from_utf8(entry).ok().and_then(parse_entry) {
                // A trusted hop: it forwarded for whoever is left of it.
                Some(ip) if self.trusts(ip) => client = ip,
                Some(ip) => return ip,
                // Garbage: nothing left of it can be believed; the last trusted hop is
                // the best address known.
                None => return client,
            }
        }
        client
    }
}

/// One `X-Forwarded-For` entry: `1.2.3.4`, `2001:db8::1`, `[2001:db8::1]:443` or
/// `1.2.3.4:5678` (some proxies add the port).
fn parse_entry(s: &str) -> Option<IpAddr> {
    let s = s.trim();
    if let Ok(ip) = IpAddr::from_str(s) {
        return Some(ip.to_canonical());
    }
    if let Some(rest) = s.strip_prefix('[') {
        let (addr, _) = rest.split_once(']')?;
        return IpAddr::from_str(addr).ok().map(|ip| ip.to_canonical());
    }
    let (addr, port) = s.rsplit_once(':')?;
    port.parse::<u16>().ok()?;
    std::net::Ipv4Addr::from_str(addr).ok().map(IpAddr::V4)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn xff(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(
                "x-forwarded-for",
                v.parse().unwrap_or_else(|e| panic!("{e}")),
            );
        }
        h
    }

    fn proxies(s: &str) -> TrustedProxies {
        TrustedProxies::parse_list(s).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn blocks_parse_and_match() {
        let c: Cidr = "10.0.0.0/8".parse().unwrap_or_else(|e| panic!("{e}"));
        assert!(c.contains(ip("10.200.3.4")));
        assert!(!c.contains(ip("11.0.0.1")));
        assert!(!c.contains(ip("::1")));
        let one: Cidr = "127.0.0.1".parse().unwrap_or_else(|e| panic!("{e}"));
        assert!(one.contains(ip("127.0.0.1")) && !one.contains(ip("127.0.0.2")));
        // An IPv4 peer seen on a dual-stack socket as ::ffff:a.b.c.d.
        assert!(one.contains(ip("::ffff:127.0.0.1")));
        let all: Cidr = "0.0.0.0/0".parse().unwrap_or_else(|e| panic!("{e}"));
        assert!(all.contains(ip("203.0.113.9")));
        let v6: Cidr = "fd00::/8".parse().unwrap_or_else(|e| panic!("{e}"));
        assert!(v6.contains(ip("fd12::1")) && !v6.contains(ip("fe80::1")));
        for bad in [
            "10.0.0.0/33",
            "10.0.0.1/8",
            "nginx",
            "10.0.0.0/x",
            "",
            "::/129",
        ] {
            let e = bad.parse::<Cidr>().expect_err(bad);
            assert!(e.contains(&format!("{:?}", bad.trim())), "{e}");
        }
        assert!(TrustedProxies::parse_list("127.0.0.1, 10.0.0.0/8,").is_ok());
        assert!(TrustedProxies::parse_list("").is_ok_and(|p| p.is_empty()));
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_claims() {
        let p = proxies("127.0.0.1");
        assert_eq!(
            p.client_ip(ip("198.51.100.7"), &xff(&["203.0.113.1"])),
            ip("198.51.100.7")
        );
        assert_eq!(
            TrustedProxies::default().client_ip(ip("127.0.0.1"), &xff(&["203.0.113.1"])),
            ip("127.0.0.1")
        );
    }

    #[test]
    fn the_rightmost_untrusted_entry_is_the_client() {
        let p = proxies("127.0.0.1,10.0.0.0/8");
        // nginx appended the phone's address.
        assert_eq!(
            p.client_ip(ip("127.0.0.1"), &xff(&["203.0.113.1"])),
            ip("203.0.113.1")
        );
        // The phone sent its own header: its claim is left of the real address.
        assert_eq!(
            p.client_ip(ip("127.0.0.1"), &xff(&["1.2.3.4, 203.0.113.1"])),
            ip("203.0.113.1")
        );
        // A load balancer (10.x) in front of nginx, in two headers.
        assert_eq!(
            p.client_ip(ip("127.0.0.1"), &xff(&["1.2.3.4, 203.0.113.1", "10.1.2.3"])),
            ip("203.0.113.1")
        );
        // Ports and brackets.
        assert_eq!(
            p.client_ip(ip("127.0.0.1"), &xff(&["203.0.113.1:5555"])),
            ip("203.0.113.1")
        );
        assert_eq!(
            p.client_ip(ip("127.0.0.1"), &xff(&["[2001:db8::7]:443"])),
            ip("2001:db8::7")
        );
        // No header, only trusted hops, or garbage: the nearest known hop.
        assert_eq!(p.client_ip(ip("127.0.0.1"), &xff(&[])), ip("127.0.0.1"));
        assert_eq!(
            p.client_ip(ip("127.0.0.1"), &xff(&["10.0.0.5"])),
            ip("10.0.0.5")
        );
        assert_eq!(
            p.client_ip(ip("127.0.0.1"), &xff(&["203.0.113.1, unknown"])),
            ip("127.0.0.1")
        );
        // Bytes that are not text on the client's side do not hide the real address.
        let mut h = HeaderMap::new();
        h.append(
            "x-forwarded-for",
            axum::http::HeaderValue::from_bytes(b"\xe9\xff, 203.0.113.1")
                .unwrap_or_else(|e| panic!("{e}")),
        );
        assert_eq!(p.client_ip(ip("127.0.0.1"), &h), ip("203.0.113.1"));
    }
}
