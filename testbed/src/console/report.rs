//! A scenario run as one self-contained HTML file (`tenantless run ... --html FILE`):
//! each scenario's expectations, the failing ones with their closest events, and each
//! device's timeline, with the console's stylesheet and script inlined so the file opens
//! anywhere, offline, as a CI artefact.

use maud::{html, Markup, PreEscaped, DOCTYPE};

use crate::report::failure_text;
use crate::scenario::ScenarioReport;
use crate::world::World;

/// One scenario's part of the report, read from its world before the world stops.
pub async fn section(world: &World, report: &ScenarioReport) -> Markup {
    let names = super::views::app_names(world).await;
    let mut timelines = Vec::new();
    for name in world.device_names() {
        let (Ok(agent), Some(events)) = (
            world.device(&name),
            super::views::device_events(world, &name).await,
        ) else {
            continue;
        };
        timelines.push((
            name,
            super::views::timeline(
                agent,
                &events,
                &names,
                world.now(),
                &super::timeline_svg::Links::default(),
            ),
        ));
    }
    let failed = report.expectations.iter().filter(|e| !e.ok).count();
    html! {
        section.scenario.(if failed == 0 { "passed" } else { "failed" }) {
            h2 {
                (if failed == 0 { "PASS " } else { "FAIL " }) (report.name)
            }
            p.muted { (report.file) " · seed " (report.seed) " · " (report.wall_ms) " ms · "
                (report.expectations.len() - failed) " of " (report.expectations.len()) " expectations held" }
            table.expectations {
                thead { tr { th { "" } th { "Line" } th { "Expectation" } th { "Found" } } }
                tbody {
                    @for e in &report.expectations {
                        tr.(if e.ok { "ok" } else { "failed" }) {
                            td { (if e.ok { "ok" } else { "FAIL" }) }
                            td { (e.line) }
                            td { (e.description) }
                            td { @if e.ok { (e.message) } @else { pre { (failure_text(e)) } } }
                        }
                    }
                }
            }
            @if failed > 0 {
                p { "Replay with " code { "TENANTLESS_SEED=" (report.seed) } "." }
            }
            @for (name, timeline) in &timelines {
                h3 { (name) }
                (timeline)
            }
        }
    }
}

/// The whole file.
pub fn document(sections: &[Markup]) -> String {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { "Tenantless scenario report" }
                style { (PreEscaped(server::console::CSS)) }
            }
            body {
                header { span.brand { "Tenantless" } span.muted { "scenario report" } }
                main {
                    @for s in sections { (s) }
                }
                script { (PreEscaped(server::console::JS)) }
            }
        }
    }
    .into_string()
}
