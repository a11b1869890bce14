//! The page shell every console view shares: header with the way back, light and dark
//! colours from the embedded stylesheet. `root` is where the console is served: `""`
//! for a world's own console, `/console` on `tenantless-server`.

use maud::{html, Markup, DOCTYPE};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

/// What a path segment or query value keeps unencoded (RFC 3986's unreserved).
const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// A whole page under `root`: `crumbs` (text, link) lead back from it; with `refresh`,
/// it reloads itself every so many seconds.
pub fn page(
    root: &str,
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
                link rel="stylesheet" href=(format!("{root}/assets/console.css"));
                script src=(format!("{root}/assets/console.js")) defer {}
            }
            body {
                header {
                    a.brand href=(format!("{root}/")) { "Tenantless" }
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

/// The link to a device's page (by name in a world, by id on the server).
pub fn device_link(root: &str, device: &str) -> String {
    format!("{root}/devices/{}", path_part(device))
}

/// A journal time (RFC 3339) as the views show it: `2026-11-24 09:30:00`.
pub fn time(at: &str) -> String {
    at.get(..19).unwrap_or(at).replace('T', " ")
}
