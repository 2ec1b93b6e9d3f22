//! Property tests for the validators that see input before authentication:
//! scopes, redirect URIs and their matching, PKCE. Each never panics, keeps
//! what it should, and does work bounded by its input's size (checked
//! through sizes, never timings).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashSet;

use latchkey_core::oauth::{is_valid_pkce_value, pkce_verify, PkceMethod};
use latchkey_core::redirect_uri;
use latchkey_core::scopes::{ScopeError, ScopeSet, Scopes, MAX_SCOPES, MAX_SCOPE_BYTES};
use proptest::prelude::*;

/// A scope token: printable ASCII without space, `"` or `\`.
fn scope_token() -> impl Strategy<Value = String> {
    "[!#-\\[\\]-~]{1,12}"
}

fn separator() -> impl Strategy<Value = &'static str> {
    prop_oneof![
        Just(" "),
        Just("  "),
        Just("\t"),
        Just("\n"),
        Just(" \r\n ")
    ]
}

fn scope_list() -> impl Strategy<Value = (Vec<String>, String)> {
    prop::collection::vec((scope_token(), separator()), 0..60).prop_map(|items| {
        let raw = items
            .iter()
            .map(|(s, sep)| format!("{s}{sep}"))
            .collect::<String>();
        (items.into_iter().map(|(s, _)| s).collect(), raw)
    })
}

proptest! {
    #[test]
    fn normalise_keeps_first_seen_order_without_duplicates((tokens, raw) in scope_list()) {
        let out = Scopes::normalise(&raw);
        // No duplicates, nothing invented, nothing lost.
        let distinct: HashSet<&String> = out.iter().collect();
        prop_assert_eq!(distinct.len(), out.len());
        let mut expected: Vec<String> = Vec::new();
        let mut seen = HashSet::new();
        for t in &tokens {
            if seen.insert(t.clone()) {
                expected.push(t.clone());
            }
        }
        prop_assert_eq!(&out, &expected);
        // Idempotent, and never larger than its input.
        prop_assert_eq!(Scopes::normalise(&out.join(" ")), out.clone());
        prop_assert!(out.iter().map(String::len).sum::<usize>() <= raw.len());
    }

    #[test]
    fn normalise_never_panics_on_any_text(raw in any::<String>()) {
        let out = Scopes::normalise(&raw);
        prop_assert!(out.len() <= raw.len());
    }

    #[test]
    fn checked_scopes_respect_the_caps((_, raw) in scope_list()) {
        let set = ScopeSet::new(["user:*", "api", "read_api"]).unwrap();
        match Scopes::checked(&raw, &set) {
            Ok(s) => {
                prop_assert!(!s.as_slice().is_empty() && s.as_slice().len() <= MAX_SCOPES);
                prop_assert!(s.as_slice().iter().all(|x| set.allows(x) && x.len() <= MAX_SCOPE_BYTES));
            }
            Err(ScopeError::Empty) => prop_assert!(Scopes::normalise(&raw).is_empty()),
            Err(ScopeError::Unknown(bad)) => prop_assert!(!set.allows(&bad)),
            Err(ScopeError::TooMany) => prop_assert!(Scopes::normalise(&raw).len() > MAX_SCOPES),
            Err(ScopeError::TooLong) => {
                prop_assert!(Scopes::normalise(&raw).iter().any(|s| s.len() > MAX_SCOPE_BYTES))
            }
        }
    }

    #[test]
    fn dynamic_scopes_admit_exactly_their_prefix(suffix in "[a-z0-9:]{0,20}", other in scope_token()) {
        let set = ScopeSet::new(["user:*"]).unwrap();
        let scope = format!("user:{suffix}");
        prop_assert_eq!(set.allows(&scope), !suffix.is_empty());
        prop_assert_eq!(set.allows(&other), other.starts_with("user:") && other.len() > 5 || other == "user:*");
    }

    #[test]
    fn redirect_uri_validation_never_panics(raw in any::<String>()) {
        let _ = redirect_uri::validate(&raw);
        let _ = redirect_uri::matches(&raw, &raw);
        let _ = redirect_uri::matches("https://a.example/cb", &raw);
    }

    #[test]
    fn valid_https_uris_match_themselves_only(
        host in "[a-z]{1,10}(\\.[a-z]{1,10}){0,2}",
        path in "(/[a-zA-Z0-9_-]{1,8}){0,3}",
        port in proptest::option::of(1u16..65535),
        other_path in "/[a-z]{1,8}",
    ) {
        let port = port.map(|p| format!(":{p}")).unwrap_or_default();
        let uri = format!("https://{host}{port}{path}");
        prop_assert!(redirect_uri::validate(&uri).is_empty(), "{}", uri);
        prop_assert!(redirect_uri::matches(&uri, &uri));
        let elsewhere = format!("https://{host}{port}{path}{other_path}");
        prop_assert!(!redirect_uri::matches(&uri, &elsewhere));
        let evil = format!("https://evil.example{path}");
        prop_assert!(!redirect_uri::matches(&uri, &evil) || host == "evil.example");
    }

    #[test]
    fn overlong_redirect_uris_are_refused(extra in 1usize..3000) {
        let uri = format!("https://a.example/{}", "x".repeat(redirect_uri::MAX_URI_BYTES + extra - 18));
        prop_assert_eq!(redirect_uri::validate(&uri), vec![redirect_uri::TOO_LONG]);
        prop_assert!(!redirect_uri::matches(&uri, &uri));
    }

    #[test]
    fn pkce_round_trips_and_never_panics(verifier in "[A-Za-z0-9._~-]{43,128}", junk in any::<String>()) {
        use base64::Engine as _;
        use sha2::Digest as _;
        prop_assert!(is_valid_pkce_value(&verifier));
        let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(sha2::Sha256::digest(verifier.as_bytes()));
        prop_assert!(pkce_verify(PkceMethod::S256, &challenge, &verifier));
        prop_assert!(pkce_verify(PkceMethod::Plain, &verifier, &verifier));
        prop_assert!(!pkce_verify(PkceMethod::S256, &challenge, &junk) || junk == verifier);
        let _ = is_valid_pkce_value(&junk);
    }
}
