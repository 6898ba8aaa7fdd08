//! Headers on every response, and the `Server-Timing` measurement.

use std::time::Instant;

use axum::http::{HeaderName, HeaderValue, header};

/// The Content-Security-Policy of every response: our own scripts, styles and images only,
/// no inline code, no framing, forms only to ourselves.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; font-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Middleware: adds the CSP, `X-Content-Type-Options: nosniff`, `X-Frame-Options: DENY`,
/// `Referrer-Policy: no-referrer`, `Cache-Control: no-store` (except where the asset
/// handler set its own: a day, revalidated by `ETag`, since asset names do not change
/// with their content and an upgrade must reach browsers), and `Server-Timing:
/// app;dur=<ms>` with the time the handler took.
pub async fn headers(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let is_asset = request.uri().path().starts_with("/assets/");
    let started = Instant::now();
    let mut response = next.run(request).await;
    let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
    let headers = response.headers_mut();
    let fixed: [(HeaderName, &'static str); 4] = [
        (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "no-referrer"),
    ];
    for (name, value) in fixed {
        headers.insert(name, HeaderValue::from_static(value));
    }
    // An asset (or its 304) keeps the asset handler's own lifetime; everything else,
    // a missing asset included, is never stored.
    if !(is_asset && headers.contains_key(header::CACHE_CONTROL)) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    if let Ok(timing) = HeaderValue::from_str(&format!("app;dur={elapsed_ms:.1}")) {
        headers.insert(HeaderName::from_static("server-timing"), timing);
    }
    response
}
