//! The journal with the scenario files' filter language: an `expect` table as a
//! scenario writes it (`{ device = "LAB-01", kind = "ime_install", state = "installed" }`)
//! lists the matching events; with a count (`exactly`, `at_least`, `at_most`, `never`,
//! `in_order`) it is verified, and a failure shows its closest events and what they
//! missed, as `tenantless run` does.

use std::collections::BTreeMap;

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use maud::{html, Markup};
use serde::Deserialize;
use server::journal::{Entry, Filter, Verification};

use super::layout::{page, problem, time};
use super::Shared;
use crate::scenario::ExpectSpec;
use crate::world::World;

/// The most events one page lists (the latest ones).
const MAX_EVENTS: usize = 500;

/// `?expect=` (an inline TOML table).
#[derive(Debug, Default, Deserialize)]
pub struct JournalQuery {
    expect: Option<String>,
}

/// What a query asks, read: the filter, and a verification when a count was given.
struct Asked {
    filter: Filter,
    verification: Option<Verification>,
}

/// Reads `{ ... }` as a scenario's `expect` and runs it against the world's journal.
async fn ask(world: &World, text: &str) -> Result<Asked, String> {
    #[derive(Deserialize)]
    struct Wrapper {
        expect: ExpectSpec,
    }
    let wrapper: Wrapper =
        toml::from_str(&format!("expect = {text}")).map_err(|e| e.message().to_owned())?;
    let mut spec = wrapper.expect;
    // Apps by display name, as in scenarios.
    if let Some(name) = &spec.app {
        let ids = super::views::app_names(world).await;
        if let Some((id, _)) = ids.iter().find(|(_, n)| *n == name) {
            spec.app = Some(id.clone());
        }
    }
    let names = crate::scenario::device_ids(world);
    let filter = spec.filter(&names)?;
    let counted = spec.exactly.is_some()
        || spec.at_least.is_some()
        || spec.at_most.is_some()
        || spec.never
        || !spec.in_order.is_empty();
    let verification = if counted {
        let (filter, expectation) = spec.compile(&names)?;
        Some(
            world
                .journal()
                .filter(filter)
                .verify(expectation)
                .await
                .map_err(|e| e.to_string())?,
        )
    } else {
        None
    };
    Ok(Asked {
        filter,
        verification,
    })
}

/// `GET /journal`.
pub async fn journal(State(world): State<Shared>, Query(query): Query<JournalQuery>) -> Response {
    let world = world.lock().await;
    let text = query.expect.clone().filter(|t| !t.trim().is_empty());
    let asked = match &text {
        None => Ok(Asked {
            filter: Filter::default(),
            verification: None,
        }),
        Some(t) => ask(&world, t).await,
    };
    let names: BTreeMap<String, String> = crate::scenario::device_ids(&world)
        .into_iter()
        .map(|(name, id)| (id, name))
        .collect();
    let body = match asked {
        Err(e) => problem(&format!("That is not an expectation: {e}")),
        Ok(asked) => {
            let events = world
                .journal()
                .filter(asked.filter)
                .events()
                .await
                .unwrap_or_default();
            html! {
                @if let Some(v) = &asked.verification { (verification(v)) }
                (events_table(&events, &names))
            }
        }
    };
    page(
        "Journal",
        &[("Journal".into(), "/journal".into())],
        html! {
            h1 { "Journal" }
            form.search #journal-query method="get" action="/journal" {
                input name="expect" size="90" value=[text.as_deref()]
                    placeholder=r#"{ device = "LAB-01", kind = "ime_install", state = "installed", exactly = 1 }"#;
                button type="submit" { "Filter / verify" }
            }
            p.muted { "The filter language of scenario files: device (by name), kind, app (by name), policy, state, since, until, payload = { field = value }; add exactly, at_least, at_most, never or in_order to verify." }
            (body)
        },
    )
    .into_response()
}

fn verification(v: &Verification) -> Markup {
    html! {
        div #verification .(if v.ok { "held" } else { "failed" }) {
            p { strong { (if v.ok { "Held. " } else { "Did not hold. " }) } (v.message) }
            @if !v.near_misses.is_empty() {
                table #near-misses {
                    thead { tr { th { "Closest event" } th { "Time" } th { "Kind" } th { "Missed" } } }
                    tbody {
                        @for m in &v.near_misses {
                            tr {
                                td { "#" (m.event.seq) }
                                td { (time(&m.event.at)) }
                                td { (m.event.kind) }
                                td { (m.missed.join(", ")) }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn events_table(events: &[Entry], names: &BTreeMap<String, String>) -> Markup {
    let skipped = events.len().saturating_sub(MAX_EVENTS);
    html! {
        p #event-count { (events.len()) " event(s)" @if skipped > 0 { ", the first " (skipped) " not shown" } }
        table #events {
            thead { tr { th { "#" } th { "Time" } th { "Device" } th { "Kind" } th { "What" } } }
            tbody {
                @for e in events.iter().skip(skipped) {
                    tr {
                        td { (e.seq) }
                        td { (time(&e.at)) }
                        td { (names.get(&e.device).map(String::as_str).unwrap_or(&e.device)) }
                        td { (e.kind) }
                        td { (crate::timeline::describe(e).unwrap_or_else(|| e.payload.to_string().chars().take(200).collect())) }
                    }
                }
            }
        }
    }
}
