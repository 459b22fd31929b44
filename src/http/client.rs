//! Who a request comes from, for the fair share of renders and the upload
//! limits. The connection's own address (`Peer`, set by `server::run`),
//! unless that is one of `IMGPIPE_TRUSTED_PROXIES`: then the nearest
//! address in `X-Forwarded-For` that is not a trusted proxy, as a proxy
//! appends the address it saw. On Lambda the Function URL is reachable only
//! through CloudFront, which sends the viewer as `CloudFront-Viewer-Address`
//! (`lambda.rs` makes that the peer).

use std::net::IpAddr;

use axum::http::HeaderMap;

pub use crate::config::Net;

/// Request extension: the address at the other end of the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Peer(pub IpAddr);

/// The client of a request that arrived from `peer` with `headers`.
pub fn client(peer: Option<IpAddr>, headers: &HeaderMap, trusted: &[Net]) -> Option<IpAddr> {
    let mut at = peer?.to_canonical();
    if !trusted.iter().any(|n| n.contains(at)) {
        return Some(at);
    }
    // Right to left: each hop appended what it saw; the first address no
    // trusted proxy stands for is the client.
    let forwarded = headers.get_all("x-forwarded-for").iter().filter_map(|v| v.to_str().ok());
    let hops: Vec<IpAddr> =
        forwarded.flat_map(|v| v.split(',')).filter_map(|h| h.trim().parse::<IpAddr>().ok()).collect();
    for hop in hops.into_iter().rev() {
        at = hop.to_canonical();
        if !trusted.iter().any(|n| n.contains(at)) {
            break;
        }
    }
    Some(at)
}

/// `CloudFront-Viewer-Address` (`ip:port`, IPv6 without brackets).
pub fn cloudfront_viewer(headers: &HeaderMap) -> Option<IpAddr> {
    let v = headers.get("cloudfront-viewer-address")?.to_str().ok()?;
    let (ip, _port) = v.rsplit_once(':')?;
    ip.trim_matches(['[', ']']).parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(xff: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in xff {
            h.append("x-forwarded-for", v.parse().unwrap());
        }
        h
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let trusted = [Net::parse("10.0.0.0/8").unwrap(), Net::parse("::1").unwrap()];
        let check = |peer: &str, xff: &[&str], want: &str| {
            assert_eq!(client(Some(ip(peer)), &headers(xff), &trusted), Some(ip(want)), "{peer} {xff:?}");
        };
        // Not a proxy: its own address, whatever it claims.
        check("203.0.113.9", &["198.51.100.1"], "203.0.113.9");
        // A proxy: the nearest address it and its peers do not stand for.
        check("10.1.2.3", &["198.51.100.1, 10.9.9.9"], "198.51.100.1");
        check("10.1.2.3", &["6.6.6.6, 198.51.100.1", "10.2.2.2"], "198.51.100.1");
        check("::1", &["2001:db8::5"], "2001:db8::5");
        // Nothing usable forwarded: the proxy itself.
        check("10.1.2.3", &["garbage"], "10.1.2.3");
        assert_eq!(client(None, &headers(&[]), &trusted), None);
    }

    #[test]
    fn networks_and_viewer_addresses_parse() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert!(Net::parse("127.0.0.0/8").unwrap().contains(ip("127.0.0.2")));
        assert!(!Net::parse("127.0.0.1").unwrap().contains(ip("127.0.0.2")));
        assert!(Net::parse("0.0.0.0/0").unwrap().contains(ip("8.8.8.8")));
        assert!(Net::parse("127.0.0.1").unwrap().contains(ip("::ffff:127.0.0.1")));
        for bad in ["", "10.0.0.0/33", "nope", "::/129"] {
            assert!(Net::parse(bad).is_none(), "{bad}");
        }
        let mut h = HeaderMap::new();
        h.insert("cloudfront-viewer-address", "198.51.100.7:41234".parse().unwrap());
        assert_eq!(cloudfront_viewer(&h), Some(ip("198.51.100.7")));
        h.insert("cloudfront-viewer-address", "2001:db8::1:443".parse().unwrap());
        assert_eq!(cloudfront_viewer(&h), Some(ip("2001:db8::1")));
    }
}
