//! `.intunewin` packages (zip, Detection.xml, encrypted content) and simulated MSIs.
#![no_main]

use libfuzzer_sys::fuzz_target;
use syncml::intunewin::{open, Detection};
use syncml::sim_msi::SimulatedMsi;

fuzz_target!(|data: &[u8]| {
    let _ = open(data);
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = Detection::parse(text);
    }
    let _ = SimulatedMsi::parse(data);
});
