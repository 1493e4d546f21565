//! Which push endpoint URLs the relay will post to.
//!
//! A device chooses the URL, so the relay treats it as hostile: https only,
//! a length limit, no userinfo (it would put credentials in the relay's
//! database and logs) and no fragment, and — unless the operator allows local
//! endpoints for tests or a closed network — no host that is, or resolves to,
//! a loopback, private, link-local or otherwise non-public address, so a
//! device cannot make the relay post into the network it runs in.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use hyper::Uri;

use crate::frame::Refusal;

/// Longest endpoint URL accepted. Web Push and UnifiedPush endpoints are a
/// few hundred bytes at most.
pub const MAX_URL_LEN: usize = 1024;

/// A checked endpoint, ready to post to.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// The whole URL.
    pub uri: Uri,
    /// The host as it goes into DNS and TLS (IPv6 literals without brackets).
    pub host: String,
    /// The port (443 or 80 when the URL names none).
    pub port: u16,
    /// https (else plain http, only where allowed).
    pub tls: bool,
}

impl Endpoint {
    /// The `Host` header: host and port as the URL has them.
    pub fn authority(&self) -> &str {
        self.uri.authority().map(|a| a.as_str()).unwrap_or("")
    }

    /// The request target: path and query.
    pub fn target(&self) -> &str {
        self.uri
            .path_and_query()
            .map(|p| p.as_str())
            .filter(|p| !p.is_empty())
            .unwrap_or("/")
    }
}

/// Checks a URL a device registered; `allow_local` admits plain http and
/// non-public hosts.
pub fn parse(url: &str, allow_local: bool) -> Result<Endpoint, Refusal> {
    if url.len() > MAX_URL_LEN {
        return Err(Refusal::too_large("push endpoint longer than 1024 bytes"));
    }
    if url.contains('#') {
        return Err(Refusal::malformed("push endpoint must not have a fragment"));
    }
    let uri: Uri = url
        .parse()
        .map_err(|_| Refusal::malformed("push endpoint is not a URL"))?;
    let tls = match uri.scheme_str() {
        Some("https") => true,
        Some("http") if allow_local => false,
        Some("http") => return Err(Refusal::malformed("push endpoint must be https")),
        _ => return Err(Refusal::malformed("push endpoint must be an https URL")),
    };
    let authority = uri
        .authority()
        .ok_or_else(|| Refusal::malformed("push endpoint has no host"))?;
    if authority.as_str().contains('@') {
        return Err(Refusal::malformed(
            "push endpoint must not carry a user name or password",
        ));
    }
    let host = authority
        .host()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    if host.is_empty() {
        return Err(Refusal::malformed("push endpoint has no host"));
    }
    let port = authority.port_u16().unwrap_or(if tls { 443 } else { 80 });
    if port == 0 {
        return Err(Refusal::malformed("push endpoint port out of range"));
    }
    if !allow_local && !host_may_be_public(&host) {
        return Err(Refusal::malformed(
            "push endpoint must be on a public address",
        ));
    }
    Ok(Endpoint {
        uri,
        host,
        port,
        tls,
    })
}

/// Whether a host name could be public: an IP literal must be public, and
/// `localhost` never is. Other names are checked again once resolved.
fn host_may_be_public(host: &str) -> bool {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return is_public(ip);
    }
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    host != "localhost" && !host.ends_with(".localhost")
}

/// Whether an address is on the public internet: not loopback, private,
/// link-local, shared (CGNAT), documentation, multicast, broadcast or
/// unspecified.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_public_v4(v4),
            None => is_public_v6(v6),
        },
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    let shared = a == 100 && (64..128).contains(&b);
    !(ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_documentation()
        || ip.is_multicast()
        || shared
        || a == 0)
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    let unique_local = first & 0xfe00 == 0xfc00;
    let link_local = first & 0xffc0 == 0xfe80;
    let documentation = first == 0x2001 && ip.segments()[1] == 0x0db8;
    !(ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        || unique_local
        || link_local
        || documentation)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rankfile_proto::v1::error::Code;

    fn code(url: &str, allow_local: bool) -> Option<Code> {
        parse(url, allow_local).err().map(|r| r.code)
    }

    #[test]
    fn https_urls_are_taken_apart() {
        let e = parse("https://push.example.org/wake/AbC?x=1", false).expect("valid");
        assert!(e.tls);
        assert_eq!((e.host.as_str(), e.port), ("push.example.org", 443));
        assert_eq!(e.target(), "/wake/AbC?x=1");
        assert_eq!(e.authority(), "push.example.org");
        let e = parse("https://push.example.org:8443", false).expect("valid");
        assert_eq!((e.port, e.target()), (8443, "/"));
        let e = parse("http://[::1]:9000/up", true).expect("local allowed");
        assert_eq!((e.host.as_str(), e.port, e.tls), ("::1", 9000, false));
    }

    #[test]
    fn refusals_are_typed() {
        let long = format!("https://push.example.org/{}", "a".repeat(MAX_URL_LEN));
        assert_eq!(code(&long, true), Some(Code::TooLarge));
        for bad in [
            "http://push.example.org/x",
            "ftp://push.example.org/x",
            "push.example.org/x",
            "/relative",
            "https://user:pw@push.example.org/x",
            "https://token@push.example.org/x",
            "https://push.example.org/x#frag",
            "https://exa mple.org/",
            "https://127.0.0.1/x",
            "https://10.1.2.3/x",
            "https://192.168.0.9/x",
            "https://169.254.169.254/latest",
            "https://100.64.0.1/x",
            "https://[::1]/x",
            "https://[fd00::1]/x",
            "https://[fe80::1]/x",
            "https://[::ffff:127.0.0.1]/x",
            "https://localhost/x",
            "https://a.localhost./x",
            "https://push.example.org:0/x",
            "",
        ] {
            assert_eq!(code(bad, false), Some(Code::Malformed), "{bad}");
        }
        // Userinfo stays refused even where local endpoints are allowed.
        assert_eq!(
            code("http://u:p@127.0.0.1:8080/x", true),
            Some(Code::Malformed)
        );
        assert_eq!(code("http://127.0.0.1:8080/x", true), None);
    }

    #[test]
    fn public_addresses() {
        for ip in ["93.184.216.34", "2606:4700::1111", "1.1.1.1"] {
            assert!(is_public(ip.parse().expect("ip")), "{ip}");
        }
        for ip in ["0.0.0.0", "255.255.255.255", "224.0.0.1", "192.0.2.1", "::"] {
            assert!(!is_public(ip.parse().expect("ip")), "{ip}");
        }
    }
}
