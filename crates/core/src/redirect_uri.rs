//! Redirect URI validation, as Doorkeeper's `RedirectUriValidator` with
//! GitLab's configuration (no HTTPS requirement; `data`, `vbscript` and
//! `javascript` schemes forbidden).
//!
//! The value may hold several URIs separated by any whitespace. Each is
//! parsed as an RFC 3986 URI reference; a part that does not parse adds
//! `must be a valid URI.` and stops the checking of later parts, exactly
//! like the Ruby validator, whose rescue sits outside its loop.

use fluent_uri::UriRef;

pub const BLANK: &str = "can't be blank";
pub const INVALID: &str = "must be a valid URI.";
pub const FORBIDDEN: &str = "is forbidden by the server.";
pub const FRAGMENT: &str = "cannot contain a fragment.";
pub const UNSPECIFIED_SCHEME: &str = "must specify a scheme.";
pub const RELATIVE: &str = "must be an absolute URI.";
pub const TOO_LONG: &str = "is too long (maximum is 2000 characters per URI)";
pub const BAD_HOST: &str =
    "must have a host name of letters, digits, '.', '-' and '_', or an IP address.";

/// The longest redirect URI accepted, in bytes (browsers and proxies cut
/// URLs not much longer; a 900 KB one is only a way to bloat the database).
pub const MAX_URI_BYTES: usize = 2000;

const OOB: &[&str] = &[
    "urn:ietf:wg:oauth:2.0:oob",
    "urn:ietf:wg:oauth:2.0:oob:auto",
];
const FORBIDDEN_SCHEMES: &[&str] = &["data", "vbscript", "javascript"];

/// The error messages for `value`, in the order Doorkeeper adds them.
/// Empty means valid.
pub fn validate(value: &str) -> Vec<&'static str> {
    let mut errors = Vec::new();
    if value.trim().is_empty() {
        errors.push(BLANK);
        return errors;
    }
    for part in value.split_whitespace() {
        if OOB.contains(&part) {
            continue;
        }
        if part.len() > MAX_URI_BYTES {
            errors.push(TOO_LONG);
            return errors;
        }
        let before = errors.len();
        let Ok(uri) = UriRef::parse(part) else {
            errors.push(INVALID);
            return errors;
        };
        let scheme = uri.scheme().map(|s| s.as_str().to_ascii_lowercase());
        let host = uri.authority().map(|a| a.host());
        // Ruby's URI calls a URI with a scheme but no authority and a path
        // that does not start with "/" opaque (`mailto:a@b`).
        let opaque = scheme.is_some()
            && uri.authority().is_none()
            && !uri.path().as_str().is_empty()
            && !uri.path().as_str().starts_with('/');

        if scheme
            .as_deref()
            .is_some_and(|s| FORBIDDEN_SCHEMES.contains(&s))
        {
            errors.push(FORBIDDEN);
        }
        if uri.fragment().is_some() {
            errors.push(FRAGMENT);
        }
        if opaque || scheme.as_deref() == Some("localhost") {
            errors.push(UNSPECIFIED_SCHEME);
        }
        if scheme.is_none() && host.is_none() {
            errors.push(RELATIVE);
        }
        let is_http = matches!(scheme.as_deref(), Some("http" | "https"));
        if is_http && host.is_none_or(str::is_empty) {
            errors.push(INVALID);
        }
        // The consent page names the host in its Content-Security-Policy:
        // a host with `;`, `*`, `,` or quotes could rewrite the policy.
        // (Checked last, when nothing else was wrong with the URI.)
        if errors.len() == before && host.is_some_and(|h| !h.is_empty() && !is_safe_host(h)) {
            errors.push(BAD_HOST);
        }
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doorkeeper_table() {
        let cases: &[(&str, &[&str])] = &[
            ("http://redirect.uri", &[]),
            ("https://example.com/cb?x=1", &[]),
            ("http://127.0.0.1:8080/cb", &[]),
            ("http://[::1]/cb", &[]),
            ("http://user:pw@host/cb", &[]),
            ("myapp://callback", &[]),
            ("com.example.app:/callback", &[]),
            ("urn:ietf:wg:oauth:2.0:oob", &[]),
            ("https://a.example/cb\nhttps://b.example/cb", &[]),
            ("https://a.example/cb https://b.example/cb", &[]),
            ("", &[BLANK]),
            ("  \n ", &[BLANK]),
            ("http://", &[INVALID]),
            ("https://", &[INVALID]),
            ("http:/path", &[INVALID]),
            ("javascript://alert()", &[FORBIDDEN]),
            ("https://x/cb#f", &[FRAGMENT]),
            ("https://x/cb#", &[FRAGMENT]),
            ("localhost:3000", &[UNSPECIFIED_SCHEME]),
            ("mailto:a@b", &[UNSPECIFIED_SCHEME]),
            ("data:text/html,hi", &[FORBIDDEN, UNSPECIFIED_SCHEME]),
            ("JavaScript:alert(1)", &[FORBIDDEN, UNSPECIFIED_SCHEME]),
            ("invalid url", &[RELATIVE, RELATIVE]),
            ("/relative/path", &[RELATIVE]),
            ("http://exa<mple.com", &[INVALID]),
            // a part that does not parse stops the checking of later parts
            ("http://bad^uri javascript://x", &[INVALID]),
            (
                "javascript://x http://bad^uri relative",
                &[FORBIDDEN, INVALID],
            ),
            ("http://caf\u{e9}.example", &[INVALID]),
            ("http://x/%zz", &[INVALID]),
        ];
        for (value, want) in cases {
            assert_eq!(validate(value), *want, "redirect_uri {value:?}");
        }
    }
}

/// Is `requested` acceptable as a redirect target at all (Doorkeeper's
/// `valid?`): a scheme that is not `localhost`, a host for http(s), no
/// fragment, not opaque. OOB URIs are valid.
pub fn is_valid_for_redirect(requested: &str) -> bool {
    if OOB.contains(&requested) {
        return true;
    }
    let Ok(uri) = UriRef::parse(requested) else {
        return false;
    };
    let Some(scheme) = uri.scheme().map(|s| s.as_str().to_ascii_lowercase()) else {
        return false;
    };
    let opaque = uri.authority().is_none()
        && !uri.path().as_str().is_empty()
        && !uri.path().as_str().starts_with('/');
    let is_http = scheme == "http" || scheme == "https";
    let host_ok = !is_http || uri.authority().is_some_and(|a| !a.host().is_empty());
    scheme != "localhost" && !opaque && uri.fragment().is_none() && host_ok
}

fn is_loopback_literal(host: &str) -> bool {
    let h = host.trim_start_matches('[').trim_end_matches(']');
    h.parse::<std::net::IpAddr>()
        .is_ok_and(|ip| ip.is_loopback())
}

fn query_pairs(q: &str) -> impl Iterator<Item = (&str, &str)> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| p.split_once('=').unwrap_or((p, "")))
}

/// A requested redirect URI, parsed once for matching against every
/// registered one (its query's pairs hashed on first need).
struct Requested<'a> {
    uri: UriRef<&'a str>,
    pairs: std::cell::OnceCell<std::collections::HashSet<(&'a str, &'a str)>>,
}

impl<'a> Requested<'a> {
    fn new(uri: UriRef<&'a str>) -> Self {
        Self {
            uri,
            pairs: std::cell::OnceCell::new(),
        }
    }

    fn pairs(&self) -> &std::collections::HashSet<(&'a str, &'a str)> {
        self.pairs.get_or_init(|| {
            self.uri
                .query()
                .map(|q| query_pairs(q.as_str()).collect())
                .unwrap_or_default()
        })
    }
}

/// Does the (parsed, non-OOB) requested URI match the registered URI
/// `registered`, by Doorkeeper's rules: scheme and host case-insensitive,
/// an empty path equals `/`, the path exact; a registered query must be
/// present (pairs in any order), otherwise the request's query is ignored;
/// between two IP loopback literals the port is ignored (RFC 8252).
fn matches_parsed(registered: &str, req: &Requested<'_>) -> bool {
    if OOB.contains(&registered) {
        return false;
    }
    let Ok(reg) = UriRef::parse(registered) else {
        return false;
    };
    let req_uri = &req.uri;
    let scheme = |u: &UriRef<&str>| u.scheme().map(|s| s.as_str().to_ascii_lowercase());
    if scheme(&reg).is_none() || scheme(&reg) != scheme(req_uri) {
        return false;
    }
    match (reg.authority(), req_uri.authority()) {
        (None, None) => {}
        (Some(a), Some(b)) => {
            if !a.host().eq_ignore_ascii_case(b.host())
                || a.userinfo().map(|u| u.as_str()) != b.userinfo().map(|u| u.as_str())
            {
                return false;
            }
            let loopback = is_loopback_literal(a.host()) && is_loopback_literal(b.host());
            if !loopback && a.port().map(|p| p.as_str()) != b.port().map(|p| p.as_str()) {
                return false;
            }
        }
        _ => return false,
    }
    fn path<'s>(u: &UriRef<&'s str>) -> &'s str {
        let p = u.path().as_str();
        if p.is_empty() && u.authority().is_some() {
            "/"
        } else {
            p
        }
    }
    if path(&reg) != path(req_uri) {
        return false;
    }
    match reg.query() {
        None => true,
        // Hashed, and the request's pairs hashed once for every registered
        // URI: linear in the sizes of both.
        Some(rq) => {
            let have = req.pairs();
            query_pairs(rq.as_str()).all(|p| have.contains(&p))
        }
    }
}

/// A host as a policy or a page may name it: a DNS name (letters, digits,
/// `.`, `-`, `_`) or an IP literal.
pub fn is_safe_host(host: &str) -> bool {
    if let Some(inner) = host.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
        return !inner.is_empty()
            && inner
                .bytes()
                .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.');
    }
    !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
}

/// The origin of a redirect URI as a CSP source expression and the host
/// to show a person, built from the parsed URI only: `scheme://host[:port]`,
/// or `scheme:` for a URI without an authority (an app's custom scheme).
/// `None` when the URI does not parse into something safe to put there.
pub fn origin(uri: &str) -> Option<(String, String)> {
    let parsed = UriRef::parse(uri).ok()?;
    let scheme = parsed.scheme()?.as_str().to_ascii_lowercase();
    match parsed.authority() {
        Some(a) => {
            let host = a.host();
            if !is_safe_host(host) {
                return None;
            }
            let port = a.port().map(|p| p.as_str()).filter(|p| !p.is_empty());
            if port.is_some_and(|p| !p.bytes().all(|b| b.is_ascii_digit())) {
                return None;
            }
            let origin = match port {
                Some(p) => format!("{scheme}://{host}:{p}"),
                None => format!("{scheme}://{host}"),
            };
            Some((origin, host.to_owned()))
        }
        None => Some((format!("{scheme}:"), format!("{scheme}:"))),
    }
}

/// Does `requested` match one of the whitespace-separated `registered` URIs?
pub fn matches(registered: &str, requested: &str) -> bool {
    if requested.len() > MAX_URI_BYTES || !is_valid_for_redirect(requested) {
        return false;
    }
    if OOB.contains(&requested) {
        return registered.split_whitespace().any(|r| r == requested);
    }
    let Ok(uri) = UriRef::parse(requested) else {
        return false;
    };
    let req = Requested::new(uri);
    registered
        .split_whitespace()
        .any(|r| matches_parsed(r, &req))
}

#[cfg(test)]
mod matching_tests {
    use super::*;

    #[test]
    fn doorkeeper_matching_table() {
        let cases: &[(&str, &str, bool)] = &[
            ("https://app.example/cb", "https://app.example/cb", true),
            ("https://app.example/cb", "HTTPS://APP.example/cb", true),
            ("https://app.example/cb", "https://app.example/cb/", false),
            ("https://app.example/cb", "https://app.example/CB", false),
            ("https://app.example", "https://app.example/", true),
            (
                "https://app.example/cb",
                "https://app.example:8443/cb",
                false,
            ),
            ("https://app.example/cb", "http://app.example/cb", false),
            ("https://app.example/cb", "https://evil.example/cb", false),
            (
                "https://app.example/cb",
                "https://app.example.evil.example/cb",
                false,
            ),
            ("https://app.example/cb", "https://app.example/cb?x=1", true),
            (
                "https://app.example/cb?a=1&b=2",
                "https://app.example/cb?b=2&a=1",
                true,
            ),
            (
                "https://app.example/cb?a=1",
                "https://app.example/cb",
                false,
            ),
            (
                "https://app.example/cb?a=1",
                "https://app.example/cb?a=2",
                false,
            ),
            (
                "https://app.example/cb",
                "https://app.example/cb#frag",
                false,
            ),
            ("http://127.0.0.1/cb", "http://127.0.0.1:51234/cb", true),
            ("http://[::1]:80/cb", "http://[::1]:6000/cb", true),
            ("http://localhost/cb", "http://localhost:51234/cb", false),
            ("http://127.0.0.1/cb", "http://127.0.0.2:51234/cb", false),
            ("myapp://callback", "myapp://callback", true),
            (
                "com.example.app:/callback",
                "com.example.app:/callback",
                true,
            ),
            (
                "urn:ietf:wg:oauth:2.0:oob",
                "urn:ietf:wg:oauth:2.0:oob",
                true,
            ),
            (
                "https://a.example/cb\nhttps://b.example/cb",
                "https://b.example/cb",
                true,
            ),
            (
                "https://a.example/cb https://b.example/cb",
                "https://c.example/cb",
                false,
            ),
            ("https://app.example/cb", "//app.example/cb", false),
            ("https://app.example/cb", "javascript:alert(1)", false),
            (
                "https://user@app.example/cb",
                "https://app.example/cb",
                false,
            ),
        ];
        for (registered, requested, want) in cases {
            assert_eq!(
                matches(registered, requested),
                *want,
                "{registered:?} vs {requested:?}"
            );
        }
    }
}
