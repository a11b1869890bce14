//! The page shell of a world's console, served at the root: the shared one
//! ([`server::console::layout`]) with no prefix.

use maud::Markup;

pub use server::console::layout::{path_part, problem, time};

/// A whole page: `crumbs` (text, link) lead back from it.
pub fn page(title: &str, crumbs: &[(String, String)], body: Markup) -> Markup {
    server::console::layout::page("", title, crumbs, body, None)
}

/// [`page`], reloading itself every `refresh` seconds (while the clock plays).
pub fn refreshing_page(
    title: &str,
    crumbs: &[(String, String)],
    body: Markup,
    refresh: Option<u32>,
) -> Markup {
    server::console::layout::page("", title, crumbs, body, refresh)
}

/// The link to a device's page.
pub fn device_link(name: &str) -> String {
    server::console::layout::device_link("", name)
}
