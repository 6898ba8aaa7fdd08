//! Static assets embedded in the binary (uPlot, our CSS and JS), served under `/assets/`
//! with their content type, `nosniff` and a day's cache lifetime with an `ETag` (names do
//! not change with the content, so an upgrade must reach browsers). Nothing is loaded from
//! elsewhere, so the dashboard works air-gapped. uPlot is vendored unchanged (see
//! `assets/vendor/uplot/README.md` for its source and checksums).

use std::sync::OnceLock;

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use sha2::{Digest, Sha256};

use crate::AppState;

/// One embedded file.
pub struct Asset {
    pub name: &'static str,
    pub content_type: &'static str,
    pub bytes: &'static [u8],
}

/// Every asset, by its name under `/assets/`.
pub const ASSETS: &[Asset] = &[
    Asset {
        name: "app.css",
        content_type: "text/css; charset=utf-8",
        bytes: include_bytes!("../assets/app.css"),
    },
    Asset {
        name: "app.js",
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("../assets/app.js"),
    },
    Asset {
        name: "favicon.svg",
        content_type: "image/svg+xml",
        bytes: include_bytes!("../assets/favicon.svg"),
    },
    Asset {
        name: "uPlot.iife.min.js",
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("../assets/vendor/uplot/uPlot.iife.min.js"),
    },
    Asset {
        name: "uPlot.min.css",
        content_type: "text/css; charset=utf-8",
        bytes: include_bytes!("../assets/vendor/uplot/uPlot.min.css"),
    },
];

/// How long browsers may keep an asset. The `ETag` (a digest of the content) makes a
/// revalidation after an upgrade cheap.
const CACHE_CONTROL: &str = "public, max-age=86400";

/// `/assets/{name}`.
pub fn routes() -> Router<AppState> {
    Router::new().route("/assets/{name}", get(serve))
}

/// The asset called `name`, if there is one.
pub fn find(name: &str) -> Option<&'static Asset> {
    ASSETS.iter().find(|a| a.name == name)
}

/// The strong `ETag` of each asset (a SHA-256 prefix of its bytes), computed once.
fn etag(index: usize) -> &'static str {
    static ETAGS: OnceLock<Vec<String>> = OnceLock::new();
    let tags = ETAGS.get_or_init(|| {
        ASSETS
            .iter()
            .map(|a| {
                let digest = Sha256::digest(a.bytes);
                let hex: String = digest[..12].iter().map(|b| format!("{b:02x}")).collect();
                format!("\"{hex}\"")
            })
            .collect()
    });
    tags.get(index).map_or("\"\"", String::as_str)
}

async fn serve(Path(name): Path<String>, headers: HeaderMap) -> Response {
    let Some(index) = ASSETS.iter().position(|a| a.name == name) else {
        return (
            StatusCode::NOT_FOUND,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=utf-8"),
            )],
            "no such asset\n",
        )
            .into_response();
    };
    let asset = &ASSETS[index];
    let tag = etag(index);
    let common = [
        (
            header::CACHE_CONTROL,
            HeaderValue::from_static(CACHE_CONTROL),
        ),
        (header::ETAG, HeaderValue::from_static(tag)),
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
    ];
    let revalidated = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == tag));
    if revalidated {
        return (StatusCode::NOT_MODIFIED, common).into_response();
    }
    (
        common,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static(asset.content_type),
        )],
        asset.bytes,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_asset_is_embedded_with_its_type() {
        for asset in ASSETS {
            assert!(!asset.bytes.is_empty(), "{}", asset.name);
            let expected = match asset.name.rsplit('.').next() {
                Some("js") => "text/javascript; charset=utf-8",
                Some("css") => "text/css; charset=utf-8",
                _ => "image/svg+xml",
            };
            assert_eq!(asset.content_type, expected, "{}", asset.name);
        }
        assert!(find("app.js").is_some());
        assert!(find("../Cargo.toml").is_none());
    }

    #[test]
    fn the_vendored_uplot_matches_its_readme() {
        let readme = include_str!("../assets/vendor/uplot/README.md");
        for name in ["uPlot.iife.min.js", "uPlot.min.css"] {
            let asset = find(name).unwrap();
            let hex: String = Sha256::digest(asset.bytes)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            assert!(
                readme.contains(&hex),
                "{name}: sha256 {hex} not in README.md"
            );
        }
    }

    #[test]
    fn our_script_uses_no_eval_or_inner_html() {
        let script = std::str::from_utf8(find("app.js").unwrap().bytes).unwrap();
        assert!(script.contains("'use strict'"));
        for banned in [
            "eval(",
            "innerHTML",
            "outerHTML",
            "insertAdjacentHTML",
            "document.write",
            "new Function",
        ] {
            assert!(!script.contains(banned), "app.js uses {banned}");
        }
    }
}
