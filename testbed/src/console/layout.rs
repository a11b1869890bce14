//! The page shell every view shares: header with the clock and the way back, light and
//! dark colours from the embedded stylesheet.

use maud::{html, Markup, DOCTYPE};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

/// What a path segment or query value keeps unencoded (RFC 3986's unreserved).
const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// A whole page: `crumbs` (text, link) lead back from it.
pub fn page(title: &str, crumbs: &[(String, String)], body: Markup) -> Markup {
    refreshing_page(title, crumbs, body, None)
}

/// [`page`], reloading itself every `refresh` seconds (while the clock plays).
pub fn refreshing_page(
    title: &str,
    crumbs: &[(String, String)],
    body: Markup,
    refresh: Option<u32>,
) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                @if let Some(seconds) = refresh { meta http-equiv="refresh" content=(seconds); }
                title { (title) " - Tenantless" }
                link rel="stylesheet" href="/assets/console.css";
                script src="/assets/console.js" defer {}
            }
            body {
                header {
                    a.brand href="/" { "Tenantless" }
                    nav {
                        @for (text, link) in crumbs {
                            span.sep { "/" }
                            a href=(link) { (text) }
                        }
                    }
                }
                main { (body) }
            }
        }
    }
}

/// A message in place of a view.
pub fn problem(text: &str) -> Markup {
    html! { p.problem role="alert" { (text) } }
}

/// Text made safe as one segment of a path or a query value.
pub fn path_part(text: &str) -> String {
    utf8_percent_encode(text, UNRESERVED).to_string()
}

/// The link to a device's page.
pub fn device_link(name: &str) -> String {
    format!("/devices/{}", path_part(name))
}

/// A journal time (RFC 3339) as the views show it: `2026-11-24 09:30:00`.
pub fn time(at: &str) -> String {
    at.get(..19).unwrap_or(at).replace('T', " ")
}
