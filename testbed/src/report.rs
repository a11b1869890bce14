//! Reports of scenario runs: JSON, and JUnit XML (one test case per expectation, with
//! the near-miss diagnostics in the failure text) that CI systems read.

use syncml::xml::XmlWriter;

use crate::scenario::{ExpectationResult, ScenarioReport};

/// The reports as JSON.
pub fn json(reports: &[ScenarioReport]) -> String {
    let passed = reports.iter().filter(|r| r.passed()).count();
    serde_json::to_string_pretty(&serde_json::json!({
        "scenarios": reports,
        "passed": passed,
        "failed": reports.len() - passed,
    }))
    .unwrap_or_default()
}

/// A failed expectation explained: what was found and the closest events.
pub fn failure_text(e: &ExpectationResult) -> String {
    let mut text = e.message.clone();
    if !e.near_misses.is_empty() {
        text.push_str("\nclosest events:");
        for m in &e.near_misses {
            text.push_str(&format!(
                "\n  #{} {} {} {} - missed: {}",
                m.event.seq,
                m.event.at,
                m.event.kind,
                m.event.payload,
                m.missed.join(", ")
            ));
        }
    }
    text
}

/// The reports as JUnit XML: a test suite per scenario, a test case per expectation.
pub fn junit(reports: &[ScenarioReport]) -> String {
    let mut w = XmlWriter::new();
    w.declaration();
    let tests: usize = reports.iter().map(|r| r.expectations.len()).sum();
    let failures: usize = reports
        .iter()
        .map(|r| r.expectations.iter().filter(|e| !e.ok).count())
        .sum();
    w.open(
        "testsuites",
        &[
            ("name", "tenantless"),
            ("tests", &tests.to_string()),
            ("failures", &failures.to_string()),
        ],
    );
    for r in reports {
        let failed = r.expectations.iter().filter(|e| !e.ok).count();
        w.open(
            "testsuite",
            &[
                ("name", &r.name),
                ("tests", &r.expectations.len().to_string()),
                ("failures", &failed.to_string()),
                ("time", &format!("{:.3}", r.wall_ms as f64 / 1000.0)),
            ],
        );
        w.open("properties", &[])
            .empty("property", &[("name", "file"), ("value", &r.file)])
            .empty(
                "property",
                &[("name", "seed"), ("value", &r.seed.to_string())],
            )
            .close("properties");
        for e in &r.expectations {
            let name = format!("line {}: {}", e.line, e.description);
            if e.ok {
                w.empty("testcase", &[("name", &name), ("classname", &r.file)]);
            } else {
                w.open("testcase", &[("name", &name), ("classname", &r.file)])
                    .leaf(
                        "failure",
                        &[("message", &e.message), ("type", "expectation")],
                        &failure_text(e),
                    )
                    .close("testcase");
            }
        }
        w.close("testsuite");
    }
    w.close("testsuites");
    w.finish()
}
