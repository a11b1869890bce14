//! What people and tools type at Tenantless: scenario files (TOML), journal filters and
//! expectations (JSON, as `/testbed/verify` takes them), clock durations, the IME
//! gateway's compressed policy payloads, read by the server and the agent, the admin
//! API's OData query strings (`$filter`, `$orderby`, `$top`...), the throttling
//! settings it takes, and the OAuth token endpoint's form and Basic credentials.
#![no_main]

use libfuzzer_sys::fuzz_target;
use server::journal::{Expectation, Filter};

fuzz_target!(|data: &[u8]| {
    let _ = server::admin::oauth::TokenRequest::parse(data);
    if let Ok(mut throttling) = server::admin::throttle::Throttling::parse(data) {
        let _ = throttling.refuses("GET", "/beta/deviceManagement/managedDevices?$top=1");
    }
    let Ok(text) = std::str::from_utf8(data) else {
        let _ = serde_json::from_slice::<Filter>(data);
        return;
    };
    let _ = toml::from_str::<testbed::scenario::Scenario>(text);
    if let Ok(filter) = serde_json::from_str::<Filter>(text) {
        let _ = filter.query(10);
    }
    let _ = serde_json::from_str::<Expectation>(text);
    let _ = server::worldclock::parse_duration(text);
    let _ = server::admin::oauth::basic_credentials(text);
    let _ = server::apps::policy::decompress(text);
    let _ = agent::ime::gateway::decompress(text);
    let entity = serde_json::json!({ "deviceName": "PC-01", "n": 3, "a": { "b": null } });
    if let Ok(filter) = server::odata::filter::parse(text) {
        let _ = filter.matches(&entity);
    }
    if let Ok(options) = server::odata::Options::parse(text, Default::default(), String::new()) {
        let collection = server::odata::Collection {
            context: "c",
            expandable: &[],
            searchable: &["deviceName"],
        };
        let _ = options.page(vec![entity.clone(), entity], &collection);
    }
});
