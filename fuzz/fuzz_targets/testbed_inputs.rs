//! What people and tools type at Tenantless: scenario files (TOML), journal filters and
//! expectations (JSON, as `/testbed/verify` takes them), clock durations, and the IME
//! gateway's compressed policy payloads, read by the server and the agent.
#![no_main]

use libfuzzer_sys::fuzz_target;
use server::journal::{Expectation, Filter};

fuzz_target!(|data: &[u8]| {
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
    let _ = server::apps::policy::decompress(text);
    let _ = agent::ime::gateway::decompress(text);
});
