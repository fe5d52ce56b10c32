//! Response headers of a served variant, and conditional requests (`If-None-Match` → 304).

use std::borrow::Cow;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::Response;

use crate::spec::VariantSpec;
use crate::tier::Tier;
use crate::variants::{self, Served};

/// Which tier served the response: `memory`, `copy` or `computed`.
pub const TIER: &str = "sizer-tier";
/// Present when the output is smaller than asked, to avoid upscaling: the served `WIDTHxHEIGHT`.
pub const UPSCALE_AVOIDED: &str = "sizer-upscale-avoided";
/// Present, with the served width, when a requested width exceeded the original's (kept for clients of
/// the width-only grammar; `sizer-upscale-avoided` covers every case).
pub const CLAMPED_WIDTH: &str = "sizer-clamped-width";
/// Images (and error bodies) never run as documents: no scripts, no plugins, no loads, even opened directly.
pub const SANDBOX_CSP: &str = "default-src 'none'; sandbox";

pub fn respond(
    served: Served,
    spec: &VariantSpec,
    method: &Method,
    request: &HeaderMap,
    configured_cache_control: &HeaderValue,
    now: u64,
) -> Response {
    let head = &served.head;
    let mut headers = HeaderMap::new();
    headers.insert(
        HeaderName::from_static(TIER),
        HeaderValue::from_static(served.tier.as_str()),
    );
    // What answered and, when this response computed it, where the time went: shown by the browser's
    // network panel and readable through the Resource Timing API.
    let mut timing = format!(
        "tier;desc={}, format;desc={}",
        served.tier.as_str(),
        head.format.extension()
    );
    if let Some(t) = served.timing {
        let ms = |d: std::time::Duration| d.as_secs_f64() * 1000.0;
        timing.push_str(&format!(
            ", fetch;dur={:.1}, decode;dur={:.1}, resize;dur={:.1}, encode;dur={:.1}",
            ms(t.fetch),
            ms(t.stages.decode),
            ms(t.stages.resize),
            ms(t.stages.encode)
        ));
    }
    if let Ok(v) = HeaderValue::from_str(&timing) {
        headers.insert(HeaderName::from_static("server-timing"), v);
    }
    // The configured value was parsed once, at start-up; only an expiring URL's bound is built here. That
    // is made of the configured directives and digits, so it is a header value; were it not, nothing
    // would be cached rather than cached too long.
    let cache = match spec.expires {
        None => configured_cache_control.clone(),
        Some(_) => configured_cache_control
            .to_str()
            .ok()
            .and_then(|configured| {
                HeaderValue::from_str(&cache_control(configured, spec.expires, now)).ok()
            })
            .unwrap_or(HeaderValue::from_static("no-store")),
    };
    headers.insert(header::CACHE_CONTROL, cache);
    if let Some(etag) = head
        .etag
        .as_deref()
        .and_then(|e| HeaderValue::from_str(e).ok())
    {
        headers.insert(header::ETAG, etag);
    }
    if let Some(modified) = head
        .last_modified
        .and_then(|t| HeaderValue::from_str(&httpdate::fmt_http_date(t)).ok())
    {
        headers.insert(header::LAST_MODIFIED, modified);
    }
    if spec.reduced(head.width, head.height) {
        if let Ok(v) = HeaderValue::from_str(&format!("{}x{}", head.width, head.height)) {
            headers.insert(HeaderName::from_static(UPSCALE_AVOIDED), v);
        }
        if spec.width.is_some_and(|w| head.width < w) {
            headers.insert(
                HeaderName::from_static(CLAMPED_WIDTH),
                HeaderValue::from(head.width),
            );
        }
    }
    // The format came from `Accept`: caches must key on it, whatever the status.
    if spec.negotiated {
        headers.insert(header::VARY, HeaderValue::from_static("Accept"));
    }

    // On every image answer, 304s included: a cache refreshes its stored headers from a 304.
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(SANDBOX_CSP),
    );

    if not_modified(request, head.etag.as_deref()) {
        return with_headers(
            StatusCode::NOT_MODIFIED,
            headers,
            Body::empty(),
            served.tier,
        );
    }
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(head.format.content_type()),
    );
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(head.len));
    let body = match (method, served.body) {
        (&Method::HEAD, _) => Body::empty(),
        (_, variants::Body::Whole(bytes)) => Body::from(bytes),
        (_, variants::Body::Stream(stream)) => Body::from_stream(stream),
    };
    with_headers(StatusCode::OK, headers, body, served.tier)
}

/// The configured `Cache-Control`, bounded for a URL that expires at `expires` (unix seconds): no cache
/// may keep the response past the URL's own life, so `max-age` and `s-maxage` are capped at the seconds
/// left (`max-age` added if missing), and `immutable`, `stale-while-revalidate` and `stale-if-error`,
/// which would have it served longer, are dropped.
fn cache_control(configured: &str, expires: Option<u64>, now: u64) -> Cow<'_, str> {
    let Some(expires) = expires else {
        return Cow::Borrowed(configured);
    };
    let left = expires.saturating_sub(now);
    let mut directives = Vec::new();
    let mut has_max_age = false;
    for directive in configured
        .split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty())
    {
        let (name, value) = directive
            .split_once('=')
            .map_or((directive, ""), |(n, v)| (n.trim(), v.trim()));
        let name = name.to_ascii_lowercase();
        match name.as_str() {
            "immutable" | "stale-while-revalidate" | "stale-if-error" => {}
            "max-age" | "s-maxage" => {
                has_max_age |= name == "max-age";
                // An unreadable age is taken as none at all.
                let age = value.trim_matches('"').parse::<u64>().unwrap_or(0);
                directives.push(format!("{name}={}", age.min(left)));
            }
            _ => directives.push(directive.to_string()),
        }
    }
    if !has_max_age {
        directives.push(format!("max-age={left}"));
    }
    Cow::Owned(directives.join(", "))
}

/// The response, with the tier in its extensions for the log line and the latency histogram.
fn with_headers(status: StatusCode, headers: HeaderMap, body: Body, tier: Tier) -> Response {
    let mut response = Response::new(body);
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    response.extensions_mut().insert(tier);
    response
}

/// `If-None-Match` with our ETag (or `*`), weak comparison as RFC 9110 asks for GET/HEAD.
fn not_modified(request: &HeaderMap, etag: Option<&str>) -> bool {
    let Some(etag) = etag else { return false };
    let bare = |t: &str| t.trim().trim_start_matches("W/").to_string();
    request
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|candidate| candidate.trim() == "*" || bare(candidate) == bare(etag))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_inm(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::IF_NONE_MATCH, HeaderValue::from_str(value).unwrap());
        h
    }

    #[test]
    fn an_expiring_url_is_cached_no_longer_than_it_lives() {
        let year = "public, max-age=31536000, immutable";
        assert_eq!(cache_control(year, None, 1000), year);
        assert_eq!(cache_control(year, Some(1600), 1000), "public, max-age=600");
        assert_eq!(cache_control(year, Some(1000), 1000), "public, max-age=0");
        assert_eq!(
            cache_control(
                "public, max-age=60, s-maxage=86400, stale-while-revalidate=30",
                Some(1600),
                1000
            ),
            "public, max-age=60, s-maxage=600"
        );
        assert_eq!(
            cache_control("public, Immutable", Some(1600), 1000),
            "public, max-age=600"
        );
        assert_eq!(
            cache_control("no-store", Some(1600), 1000),
            "no-store, max-age=600"
        );
    }

    #[test]
    fn if_none_match_compares_weakly_and_accepts_lists() {
        assert!(not_modified(&with_inm("\"abc\""), Some("\"abc\"")));
        assert!(not_modified(&with_inm("W/\"abc\""), Some("\"abc\"")));
        assert!(not_modified(&with_inm("\"x\", \"abc\""), Some("\"abc\"")));
        assert!(not_modified(&with_inm("*"), Some("\"abc\"")));
        assert!(!not_modified(&with_inm("\"abd\""), Some("\"abc\"")));
        assert!(!not_modified(&HeaderMap::new(), Some("\"abc\"")));
        assert!(!not_modified(&with_inm("*"), None));
    }
}
