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
