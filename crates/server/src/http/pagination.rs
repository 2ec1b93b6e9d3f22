//! GitLab's offset pagination headers.

use axum::http::{HeaderMap, HeaderName, HeaderValue, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use latchkey_core::pagination::{PageInfo, PageRequest};
use serde::Serialize;

use super::params::Params;

/// `page` and `per_page` from the request.
pub fn request(params: &Params) -> PageRequest {
    PageRequest::parse(params.get_str("page"), params.get_str("per_page"))
}

/// A page of items as JSON with GitLab's pagination headers.
pub fn respond<T: Serialize>(
    items: &[T],
    req: PageRequest,
    total: u64,
    external_url: &str,
    uri: &Uri,
) -> Response {
    let info = PageInfo::new(req, total, items.len());
    (headers(&info, external_url, uri), Json(items)).into_response()
}

/// A keyset page read with one row more than `per_page` (to learn whether
/// another page follows): that row dropped, and the id the next page
/// continues from, if there is one.
pub fn keyset_next<T>(rows: &mut Vec<T>, per_page: u64, id: impl Fn(&T) -> i64) -> Option<i64> {
    let more = rows.len() as u64 > per_page;
    rows.truncate(per_page as usize);
    if more {
        rows.last().map(id)
    } else {
        None
    }
}

/// A keyset page (`pagination=keyset`) in ascending id order:
/// `X-Per-Page` and a `Link` to the next page (`id_after` the last id)
/// when there is one.
pub fn respond_keyset<T: Serialize>(
    items: &[T],
    per_page: u64,
    next_after: Option<i64>,
    external_url: &str,
    uri: &Uri,
) -> Response {
    respond_keyset_by(items, per_page, ("id_after", next_after), external_url, uri)
}

/// A keyset page whose next page starts at `next.1`, named by the
/// parameter `next.0` (`id_after`, or `id_before` in descending order).
pub fn respond_keyset_by<T: Serialize>(
    items: &[T],
    per_page: u64,
    next: (&str, Option<i64>),
    external_url: &str,
    uri: &Uri,
) -> Response {
    let (key, next_after) = next;
    let mut h = HeaderMap::new();
    if let Ok(v) = HeaderValue::from_str(&per_page.to_string()) {
        h.insert(HeaderName::from_static("x-per-page"), v);
    }
    if let Some(after) = next_after {
        let url = with_param(external_url, uri, key, &after.to_string());
        if let Ok(v) = HeaderValue::from_str(&format!("<{url}>; rel=\"next\"")) {
            h.insert(axum::http::header::LINK, v);
        }
    }
    (h, Json(items)).into_response()
}

/// The request's URL on the external base, with `key` set to `value`
/// (credentials never copied into links).
fn with_param(base: &str, uri: &Uri, key: &str, value: &str) -> String {
    let mut query = form_urlencoded::Serializer::new(String::new());
    if let Some(q) = uri.query() {
        for (k, v) in form_urlencoded::parse(q.as_bytes()) {
            if k != key && k != "private_token" && k != "access_token" {
                query.append_pair(&k, &v);
            }
        }
    }
    query.append_pair(key, value);
    format!(
        "{}{}?{}",
        base.trim_end_matches('/'),
        uri.path(),
        query.finish()
    )
}

fn page_url(base: &str, uri: &Uri, page: u64) -> String {
    with_param(base, uri, "page", &page.to_string())
}

/// `X-Total`, `X-Total-Pages`, `X-Per-Page`, `X-Page`, `X-Next-Page`,
/// `X-Prev-Page` and `Link`, with links built on the external URL.
pub fn headers(info: &PageInfo, external_url: &str, uri: &Uri) -> HeaderMap {
    let mut h = HeaderMap::new();
    let opt = |p: Option<u64>| p.map(|n| n.to_string()).unwrap_or_default();
    let mut pairs = vec![
        ("x-per-page", info.per_page.to_string()),
        ("x-page", info.page.to_string()),
        ("x-next-page", opt(info.next_page)),
        ("x-prev-page", opt(info.prev_page)),
    ];
    if let (Some(total), Some(pages)) = (info.total, info.total_pages) {
        pairs.push(("x-total", total.to_string()));
        pairs.push(("x-total-pages", pages.to_string()));
    }
    for (name, value) in pairs {
        if let Ok(v) = HeaderValue::from_str(&value) {
            h.insert(HeaderName::from_static(name), v);
        }
    }
    let mut links = Vec::new();
    if let Some(p) = info.prev_page {
        links.push(format!(
            "<{}>; rel=\"prev\"",
            page_url(external_url, uri, p)
        ));
    }
    if let Some(p) = info.next_page {
        links.push(format!(
            "<{}>; rel=\"next\"",
            page_url(external_url, uri, p)
        ));
    }
    links.push(format!(
        "<{}>; rel=\"first\"",
        page_url(external_url, uri, 1)
    ));
    if let Some(last) = info.total_pages {
        links.push(format!(
            "<{}>; rel=\"last\"",
            page_url(external_url, uri, last)
        ));
    }
    if let Ok(v) = HeaderValue::from_str(&links.join(", ")) {
        h.insert(axum::http::header::LINK, v);
    }
    h
}
