//! The OpenAPI document at `/openapi.json` is kept true two ways: every operation it
//! names is served (the router knows its path and method), and schemathesis (pinned in
//! `tests/openapi/requirements.txt`, made by `scripts/schemathesis-env.sh`) generates
//! requests from it and finds no 5xx and no answer that breaks the document's schemas.
//! Without `TENANTLESS_SCHEMATHESIS` the second says so and passes, unless
//! `TENANTLESS_REQUIRE_SCHEMATHESIS=1` (which `.ci/run` sets).

use crate::common;

use common::*;

/// The message of the router's own 404, for a path no route has.
const NO_ROUTE: &str = "Resource not found for the segment";

#[tokio::test]
async fn every_documented_operation_is_served() {
    let (server, _dir) = start().await;
    let admin = admin(&server);
    let (status, document) = admin.get("/openapi.json").await;
    assert_eq!(status, 200);
    assert_eq!(document["openapi"], "3.0.3");
    let paths = document["paths"].as_object().unwrap();
    let documented: usize = paths.values().map(|p| p.as_object().unwrap().len()).sum();
    assert_eq!(documented, server::admin::openapi::OPERATIONS.len());
    for op in server::admin::openapi::OPERATIONS {
        let path = op
            .path
            .split('/')
            .map(|s| if s.starts_with('{') { "x" } else { s })
            .collect::<Vec<_>>()
            .join("/");
        let method = reqwest::Method::from_bytes(op.method.as_bytes()).unwrap();
        let answer = admin
            .http
            .request(method, format!("{}{path}", admin.base))
            .bearer_auth(TOKEN)
            .header("content-type", "application/json")
            .body("{}")
            .send()
            .await
            .unwrap();
        let status = answer.status().as_u16();
        let body = answer.text().await.unwrap();
        assert_ne!(status, 405, "{} {}: {body}", op.method, op.path);
        assert!(
            !body.contains(NO_ROUTE),
            "{} {} is documented but not served: {body}",
            op.method,
            op.path
        );
        assert!(status < 500, "{} {}: {status} {body}", op.method, op.path);
    }
    server.stop().await;
}

fn schemathesis() -> Option<std::path::PathBuf> {
    let found = std::env::var_os("TENANTLESS_SCHEMATHESIS")
        .map(std::path::PathBuf::from)
        .filter(|p| p.exists());
    if found.is_none() {
        assert!(
            std::env::var("TENANTLESS_REQUIRE_SCHEMATHESIS").as_deref() != Ok("1"),
            "TENANTLESS_REQUIRE_SCHEMATHESIS=1 but TENANTLESS_SCHEMATHESIS names no schemathesis \
             (scripts/schemathesis-env.sh makes one)"
        );
        eprintln!("skipped: no schemathesis (run scripts/schemathesis-env.sh)");
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_no_server_error_and_no_answer_that_breaks_the_document() {
    let Some(schemathesis) = schemathesis() else {
        return;
    };
    let (server, dir) = start().await;
    let url = format!("http://{}/openapi.json", server.admin_addr);
    let scratch = dir.path().join("schemathesis");
    std::fs::create_dir_all(&scratch).unwrap();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(schemathesis)
            // Its cache and reports stay in the test's folder.
            .current_dir(&scratch)
            .arg("run")
            .arg(url)
            .args(["--header", &format!("Authorization: Bearer {TOKEN}")])
            .args(["--checks", "not_a_server_error,response_schema_conformance"])
            .args(["--max-examples", "10", "--seed", "1", "--no-shrink"])
            // Throttling on purpose answers 503 by design.
            .args(["--exclude-path", "/tenantless/throttling"])
            .output()
    })
    .await
    .unwrap()
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}");
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("passed"), "{stdout}");
    server.stop().await;
}
