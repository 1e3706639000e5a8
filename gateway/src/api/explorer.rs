//! The API explorer at `/api/v1/docs`: a page that reads `/api/v1/openapi.json` and lets an
//! operator read every operation and try it with a token. Its three files are compiled into the
//! binary and served from this origin only, so it works without internet access and its strict
//! content security policy allows nothing from elsewhere.

use axum::http::header;
use axum::response::{IntoResponse, Response};

const PAGE: &str = include_str!("../../explorer/index.html");
const SCRIPT: &str = include_str!("../../explorer/explorer.js");
const STYLE: &str = include_str!("../../explorer/explorer.css");

/// Scripts, styles and requests from this origin only; the page may not be framed.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; \
     frame-ancestors 'none'";

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

pub(super) async fn page() -> Response {
    asset("text/html; charset=utf-8", PAGE)
}

pub(super) async fn script() -> Response {
    asset("text/javascript; charset=utf-8", SCRIPT)
}

pub(super) async fn style() -> Response {
    asset("text/css; charset=utf-8", STYLE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_loads_only_its_own_assets() {
        for (file, text) in [
            ("index.html", PAGE),
            ("explorer.js", SCRIPT),
            ("explorer.css", STYLE),
        ] {
            for external in ["http://", "https://", "//cdn", "@import"] {
                assert!(!text.contains(external), "{file} refers to {external}");
            }
        }
        assert!(PAGE.contains(r#"src="/api/v1/docs/explorer.js""#));
        assert!(PAGE.contains(r#"href="/api/v1/docs/explorer.css""#));
        assert!(SCRIPT.contains(r#"fetch("/api/v1/openapi.json")"#));
    }
}
