//! The dashboard served at `/`: one HTML page, its stylesheet and its script, written by hand
//! and compiled into the binary, so a plain install has a page and nothing is fetched from
//! anywhere else. The page talks only to this server's own API.

use std::sync::OnceLock;

use super::routes::{Body, Reply};

const INDEX: &str = include_str!("ui/index.html");
const APP_JS: &[u8] = include_bytes!("ui/app.js");
const APP_CSS: &[u8] = include_bytes!("ui/app.css");
const ICON: &[u8] = include_bytes!("ui/icon.svg");

/// The page may run only its own script and style, talk only to its own origin, and be
/// framed by nobody; inline scripts and handlers (`onerror=`) never run, so HTML that slipped
/// through the description sanitiser still does nothing.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; \
     frame-ancestors 'none'";

/// The page itself is checked again on every load; the assets it names carry a hash of their
/// content in their URL, so they can be kept for a year and a new binary still gets its own.
const PAGE_CACHE: &str = "no-cache";
const ASSET_CACHE: &str = "public, max-age=31536000, immutable";

/// A short hash of the assets (FNV-1a), enough to tell one build's assets from another's.
fn assets_version() -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in APP_JS.iter().chain(APP_CSS).chain(ICON) {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{:012x}", h & 0xffff_ffff_ffff)
}

fn index() -> &'static [u8] {
    static PAGE: OnceLock<Vec<u8>> = OnceLock::new();
    PAGE.get_or_init(|| INDEX.replace("{{v}}", &assets_version()).into_bytes())
}

fn asset(bytes: &'static [u8], content_type: &'static str, cache: &'static str) -> Reply {
    Reply::new(
        200,
        Body::Bytes(std::borrow::Cow::Borrowed(bytes), content_type),
    )
    .with_header("Cache-Control", cache)
    .with_header("Content-Security-Policy", CSP)
    .with_header("X-Frame-Options", "DENY")
    .with_header("Referrer-Policy", "no-referrer")
}

/// The page for `/`.
#[must_use]
pub fn page() -> Reply {
    asset(index(), "text/html; charset=utf-8", PAGE_CACHE)
}

/// An asset under `/ui/`, or `None` for a name that is not one.
#[must_use]
pub fn file(name: &str) -> Option<Reply> {
    Some(match name {
        "app.js" => asset(APP_JS, "text/javascript; charset=utf-8", ASSET_CACHE),
        "app.css" => asset(APP_CSS, "text/css; charset=utf-8", ASSET_CACHE),
        "icon.svg" => asset(ICON, "image/svg+xml", ASSET_CACHE),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_names_its_assets_by_version_and_stays_small() {
        let page = std::str::from_utf8(index()).unwrap();
        let v = assets_version();
        assert!(page.contains(&format!("/ui/app.js?v={v}")), "{page}");
        assert!(page.contains(&format!("/ui/app.css?v={v}")), "{page}");
        assert!(!page.contains("{{v}}"));
        // Nothing inline for the CSP to forbid, nothing from another origin.
        assert!(!page.contains("<script>"));
        assert!(!page.contains(" style="));
        assert!(!page.contains("http://") && !page.contains("https://"));
        let total = index().len() + APP_JS.len() + APP_CSS.len() + ICON.len();
        assert!(
            total < 100 * 1024,
            "the page and its assets weigh {total} bytes"
        );
    }

    #[test]
    fn only_known_assets_are_served() {
        assert!(file("app.js").is_some());
        assert!(file("../Cargo.toml").is_none());
        assert!(file("").is_none());
    }
}
