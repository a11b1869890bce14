//! SyncML DM messages from a device or server: any bytes give a message or an error,
//! and a message read back from its own XML is the same message.
#![no_main]

use libfuzzer_sys::fuzz_target;
use syncml::dm::{Command, SyncMl};

fuzz_target!(|data: &[u8]| {
    if let Ok(msg) = SyncMl::parse(data) {
        let again = SyncMl::parse(msg.to_xml().as_bytes()).expect("our own XML reads back");
        assert_eq!(again, msg, "a message survives its own XML");
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = Command::parse(text);
    }
});
