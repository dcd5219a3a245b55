//! Input checks shared by several use cases.

use crate::http::ApiError;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use url::Url;

/// A URL the product may send a browser or a webhook to: https, or http on the loopback
/// interface (local development); no credentials, no fragment.
pub fn web_url(field: &str, value: &str) -> Result<Url, ApiError> {
    let bad = |why: &str| ApiError::invalid(format!("{field}: {why}"));
    if value.len() > 2048 {
        return Err(bad("at most 2048 characters"));
    }
    let url = Url::parse(value).map_err(|_| bad("not an absolute URL"))?;
    let loopback = matches!(url.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"));
    match url.scheme() {
        "https" => {}
        "http" if loopback => {}
        _ => return Err(bad("must be https (http only on 127.0.0.1 or localhost)")),
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(bad("needs a host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad("must not carry credentials"));
    }
    if url.fragment().is_some() {
        return Err(bad("must not have a #fragment"));
    }
    Ok(url)
}

/// Whether a URL points at this machine (the local server's own public URL, say).
pub fn is_loopback(url: &str) -> bool {
    Url::parse(url).is_ok_and(|u| match u.host() {
        Some(url::Host::Domain(d)) => d == "localhost",
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    })
}

/// A URL the product will POST to from its servers (the CRM webhook): a [`web_url`] that, in
/// a deployment that is not itself local, does not name this machine, a private network or a
/// cloud metadata service — by address (IPv4-mapped and other IPv6 forms unwrapped) or by a
/// name that can only be internal (`localhost`, `*.internal`, single labels, with or without a
/// trailing dot). Names are resolved and checked again at every connection (see
/// [`PublicOnly`]); [`resolves_publicly`] checks a name when it is set.
pub fn server_url(field: &str, value: &str, local_deployment: bool) -> Result<Url, ApiError> {
    let url = web_url(field, value)?;
    if local_deployment {
        return Ok(url);
    }
    let internal = match url.host() {
        Some(url::Host::Domain(d)) => internal_name(d),
        Some(url::Host::Ipv4(ip)) => internal_ip(IpAddr::V4(ip)),
        Some(url::Host::Ipv6(ip)) => internal_ip(IpAddr::V6(ip)),
        None => Some("no host"),
    };
    if let Some(why) = internal {
        return Err(ApiError::invalid(format!(
            "{field}: must be a public address ({why})"
        )));
    }
    Ok(url)
}

/// Why a resolved or literal address is not one the product may post to, if it is not.
pub fn internal_ip(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => internal_v4(v4),
        IpAddr::V6(v6) => internal_v6(v6),
    }
}

fn internal_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    let why = match (a, b, c) {
        (0, _, _) => "this network",
        (127, _, _) => "loopback",
        (10, _, _) => "private",
        (172, 16..=31, _) => "private",
        (192, 168, _) => "private",
        (169, 254, _) => "link-local (cloud metadata)",
        (100, 64..=127, _) => "shared address space (CGNAT)",
        (192, 0, 0) => "IETF protocol assignments",
        (192, 0, 2) | (198, 51, 100) | (203, 0, 113) => "documentation",
        (198, 18..=19, _) => "benchmarking",
        (192, 88, 99) => "6to4 relay",
        (224..=239, _, _) => "multicast",
        (240..=255, _, _) => "reserved",
        _ => return None,
    };
    Some(why)
}

fn internal_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let seg = ip.segments();
    let embedded_v4 = |hi: u16, lo: u16| Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));
    if ip.is_unspecified() {
        return Some("unspecified");
    }
    if ip.is_loopback() {
        return Some("loopback");
    }
    // ::ffff:a.b.c.d (mapped), ::a.b.c.d (compatible, deprecated), ::ffff:0:a.b.c.d
    // (translated), 64:ff9b::a.b.c.d (NAT64): the IPv4 address inside decides, and a
    // private one stays private.
    if seg[..5] == [0, 0, 0, 0, 0] && (seg[5] == 0 || seg[5] == 0xffff) {
        return internal_v4(embedded_v4(seg[6], seg[7])).or(if seg[5] == 0 {
            Some("IPv4-compatible")
        } else {
            None
        });
    }
    if seg[..6] == [0, 0, 0, 0, 0xffff, 0] {
        return internal_v4(embedded_v4(seg[6], seg[7])).or(Some("IPv4-translated"));
    }
    if seg[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return internal_v4(embedded_v4(seg[6], seg[7]));
    }
    if seg[0] == 0x2002 {
        // 6to4: the IPv4 address is the next 32 bits.
        return internal_v4(embedded_v4(seg[1], seg[2]));
    }
    let why = match seg[0] {
        0xfc00..=0xfdff => "unique local (cloud metadata: fd00:ec2::254)",
        0xfe80..=0xfebf => "link-local",
        0xfec0..=0xfeff => "site-local",
        0xff00..=0xffff => "multicast",
        0x0064 if seg[1] == 0xff9b => "local-use NAT64",
        0x0100 if seg[1..4] == [0, 0, 0] => "discard-only",
        0x2001 if seg[1] == 0 => "Teredo",
        0x2001 if seg[1] == 0x0db8 => "documentation",
        0x2001 if seg[1] < 0x0200 => "IETF protocol assignments",
        _ => return None,
    };
    Some(why)
}

/// A host name as a resolver sees it: lowercase, without the root's trailing dot.
fn normalized_name(host: &str) -> String {
    host.trim_end_matches('.').to_ascii_lowercase()
}

/// Why a host name can only be internal, if it can: `localhost` and `*.localhost`, the cloud
/// metadata names (`metadata.google.internal`, `instance-data`…: every `*.internal`),
/// mDNS's `*.local`, and single labels (resolved through the runtime's search domains).
/// A trailing dot changes nothing.
pub fn internal_name(host: &str) -> Option<&'static str> {
    let name = normalized_name(host);
    if name.is_empty() {
        return Some("no host");
    }
    if name == "localhost" || name.ends_with(".localhost") {
        return Some("loopback");
    }
    if name.ends_with(".internal") || name == "metadata" || name == "instance-data" {
        return Some("cloud-internal name");
    }
    if name.ends_with(".local") || name.ends_with(".home.arpa") {
        return Some("local network name");
    }
    if !name.contains('.') {
        return Some("single-label name");
    }
    // A name that is an address in disguise (the URL parser already turns most of these
    // into addresses).
    if let Ok(ip) = name.parse::<IpAddr>() {
        return internal_ip(ip);
    }
    None
}

/// An internal name or address met while resolving or connecting.
#[derive(Debug, thiserror::Error)]
#[error("{host} is not a public address ({why})")]
pub struct InternalAddress {
    pub host: String,
    pub why: &'static str,
}

/// The system's resolver (getaddrinfo through tokio).
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemResolver;

impl Resolve for SystemResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

/// A resolver that answers only public addresses: the name is checked ([`internal_name`]),
/// then every address the inner resolver gives ([`internal_ip`]); one internal address
/// refuses the whole name. Installed in the webhook client, it makes the check at connect
/// time, on the addresses actually dialled, so a name that resolved to a public address when
/// the admin set it and to 127.0.0.1 now (DNS rebinding) is refused too. (Reqwest does not
/// resolve IP literals: those are checked by [`server_url`] before sending.)
pub struct PublicOnly {
    inner: Arc<dyn Resolve>,
}

impl PublicOnly {
    pub fn new(inner: Arc<dyn Resolve>) -> Self {
        Self { inner }
    }

    /// Over the system's resolver.
    pub fn system() -> Self {
        Self::new(Arc::new(SystemResolver))
    }
}

impl Resolve for PublicOnly {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_owned();
        if let Some(why) = internal_name(&host) {
            return Box::pin(async move { Err(Box::new(InternalAddress { host, why }) as _) });
        }
        let answer = self.inner.resolve(name);
        Box::pin(async move {
            let addrs: Vec<SocketAddr> = answer.await?.collect();
            if let Some(why) = addrs.iter().find_map(|a| internal_ip(a.ip())) {
                return Err(Box::new(InternalAddress { host, why }) as _);
            }
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

/// A [`server_url`] whose host name, resolved now by `resolver`, has only public addresses
/// (when the admin sets the webhook: an address that is internal today is refused at once
/// rather than at every delivery). A name that does not resolve is refused too.
pub async fn resolves_publicly(
    field: &str,
    value: &str,
    resolver: Arc<dyn Resolve>,
) -> Result<(), ApiError> {
    let url = server_url(field, value, false)?;
    let Some(url::Host::Domain(host)) = url.host() else {
        return Ok(());
    };
    let name: Name = host
        .parse()
        .map_err(|_| ApiError::invalid(format!("{field}: not a valid host name")))?;
    match PublicOnly::new(resolver)
        .resolve(name)
        .await
        .map(|mut addrs| addrs.next().is_some())
    {
        Ok(true) => Ok(()),
        Ok(false) => Err(ApiError::invalid(format!("{field}: {host} has no address"))),
        Err(e) => match e.downcast_ref::<InternalAddress>() {
            Some(internal) => Err(ApiError::invalid(format!(
                "{field}: must be a public address ({host} resolves to a {} address)",
                internal.why
            ))),
            None => Err(ApiError::invalid(format!(
                "{field}: {host} does not resolve"
            ))),
        },
    }
}

/// Whether `candidate` is allowed by one of `allowed`: same scheme, host and port, and a path
/// equal to the allowed path or below it (`/settings` allows `/settings` and
/// `/settings/google`, not `/settingsX`). Query strings are free.
pub fn return_url_allowed(allowed: &[String], candidate: &Url) -> bool {
    allowed.iter().filter_map(|a| Url::parse(a).ok()).any(|a| {
        let same_origin = a.scheme() == candidate.scheme()
            && a.host_str() == candidate.host_str()
            && a.port_or_known_default() == candidate.port_or_known_default();
        let base = a.path();
        let path = candidate.path();
        let below = path == base
            || base.ends_with('/') && path.starts_with(base)
            || path
                .strip_prefix(base)
                .is_some_and(|rest| rest.starts_with('/'));
        same_origin && below
    })
}

pub use crate::domain::validate::email;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn web_urls() {
        assert!(web_url("u", "https://crm.example.com/settings?x=1").is_ok());
        assert!(web_url("u", "http://127.0.0.1:3000/back").is_ok());
        for bad in [
            "http://crm.example.com/",
            "javascript:alert(1)",
            "https://user:pw@crm.example.com/",
            "https://crm.example.com/#frag",
            "/relative",
            "ftp://x.example/",
        ] {
            assert!(web_url("u", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn return_urls_are_allow_listed() {
        let allowed = vec!["https://crm.example.com/settings".to_owned()];
        let ok = |u: &str| return_url_allowed(&allowed, &Url::parse(u).unwrap());
        assert!(ok("https://crm.example.com/settings"));
        assert!(ok("https://crm.example.com/settings/google?tab=1"));
        assert!(!ok("https://crm.example.com/settingsX"));
        assert!(!ok("https://crm.example.com/other"));
        assert!(!ok("https://crm.example.com.evil.io/settings"));
        assert!(!ok("https://crm.example.com:8443/settings"));
        assert!(!ok("http://crm.example.com/settings"));
        assert!(!return_url_allowed(
            &[],
            &Url::parse("https://crm.example.com/settings").unwrap()
        ));
    }

    #[test]
    fn server_urls_stay_public_outside_local_runs() {
        for bad in [
            "http://127.0.0.1:9001/2018-06-01/runtime",
            "https://localhost/x",
            "https://10.0.0.5/hook",
            "https://169.254.169.254/latest",
            "https://[::1]/x",
            "https://192.168.1.2/",
            // The review's examples (finding 25).
            "https://[::ffff:127.0.0.1]/",
            "https://[::ffff:169.254.169.254]/",
            "https://[::ffff:7f00:1]/",
            "https://[::127.0.0.1]/",
            "https://localhost./",
            "https://LOCALHOST../",
            "https://api.localhost/",
            "https://100.64.0.1/",
            "https://100.127.255.254/",
            "https://198.18.0.1/",
            "https://[64:ff9b::7f00:1]/",
            "https://[64:ff9b::a00:1]/",
            "https://metadata.google.internal/computeMetadata/v1/",
            "https://metadata.google.internal./",
            "https://instance-data/latest",
            "https://[fd00:ec2::254]/latest",
            "https://[fe80::1]/",
            "https://[2002:7f00:1::]/",
            // Addresses the URL parser reads in other notations.
            "https://2130706433/",
            "https://0x7f.1/",
            "https://127.1/",
            "https://0.0.0.0/",
            "https://intranet/",
            "https://printer.local/",
        ] {
            assert!(server_url("u", bad, false).is_err(), "{bad}");
        }
        for good in [
            "https://crm.example.com/hooks",
            "https://crm.example.com./hooks",
            "https://8.8.8.8/x",
            "https://[2606:4700::1111]/x",
            "https://[::ffff:8.8.8.8]/x",
            "https://100.128.0.1/",
        ] {
            assert!(server_url("u", good, false).is_ok(), "{good}");
        }
        assert!(server_url("u", "http://127.0.0.1:3000/hooks", true).is_ok());
        assert!(is_loopback("http://127.0.0.1:8080") && !is_loopback("https://api.example.com"));
    }

    /// A resolver with fixed answers (tests never use real DNS).
    struct Fixed(Vec<(&'static str, Vec<IpAddr>)>);

    impl Resolve for Fixed {
        fn resolve(&self, name: Name) -> Resolving {
            let found = self
                .0
                .iter()
                .find(|(n, _)| *n == name.as_str())
                .map(|(_, ips)| ips.clone());
            Box::pin(async move {
                let ips = found
                    .ok_or_else(|| Box::new(std::io::Error::other("no such name")) as Box<_>)?;
                Ok(Box::new(ips.into_iter().map(|ip| SocketAddr::new(ip, 0))) as Addrs)
            })
        }
    }

    fn fixed() -> Arc<dyn Resolve> {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        Arc::new(Fixed(vec![
            ("crm.example.com", vec![ip("93.184.215.14")]),
            ("rebind.example.com", vec![ip("127.0.0.1")]),
            (
                "mixed.example.com",
                vec![ip("93.184.215.14"), ip("10.1.2.3")],
            ),
            ("mapped.example.com", vec![ip("::ffff:169.254.169.254")]),
            ("cgnat.example.com", vec![ip("100.64.0.1")]),
            ("ula.example.com", vec![ip("fd00:ec2::254")]),
        ]))
    }

    #[tokio::test]
    async fn names_are_checked_on_what_they_resolve_to() {
        let ok =
            |u: &'static str| async move { resolves_publicly("webhook_url", u, fixed()).await };
        assert!(ok("https://crm.example.com/hooks").await.is_ok());
        assert!(
            ok("https://8.8.8.8/hooks").await.is_ok(),
            "literals need no lookup"
        );
        for bad in [
            "https://rebind.example.com/",
            "https://mixed.example.com/",
            "https://mapped.example.com/",
            "https://cgnat.example.com/",
            "https://ula.example.com/",
            "https://unknown.example.com/",
            "https://localhost./",
        ] {
            let e = ok(bad).await.unwrap_err();
            assert_eq!(e.status, http::StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
        }
        let e = ok("https://rebind.example.com/").await.unwrap_err();
        assert!(e.message.contains("loopback"), "{}", e.message);
    }

    #[tokio::test]
    async fn the_webhook_client_refuses_internal_addresses_when_it_connects() {
        // A listener on loopback counts the connections it gets.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let accepted = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = accepted.clone();
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                drop(socket);
            }
        });
        // A name that passed when it was set, and resolves to loopback now (DNS rebinding).
        let url = format!("https://rebind.example.com:{port}/hooks");
        let guarded =
            crate::delivery::webhook_client(Some(Arc::new(PublicOnly::new(fixed())))).unwrap();
        let e = guarded.post(&url).send().await.unwrap_err();
        assert!(e.is_connect(), "{e:?}");
        let mut chain = String::new();
        let mut source: Option<&dyn std::error::Error> = Some(&e);
        while let Some(err) = source {
            chain.push_str(&err.to_string());
            source = err.source();
        }
        assert!(chain.contains("not a public address"), "{chain}");
        assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 0);

        // The same client without the guard does reach the listener: the check is what
        // stopped it.
        let open = crate::delivery::webhook_client(Some(fixed())).unwrap();
        let _ = open.post(&url).send().await;
        assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 1);
    }

    #[test]
    fn emails() {
        assert!(email("e", "a.b+c@example.co.uk").is_ok());
        for bad in ["", "no-at", "a@b", "a @b.com", "@b.com", "a@b@c.com"] {
            assert!(email("e", bad).is_err(), "{bad}");
        }
    }
}
