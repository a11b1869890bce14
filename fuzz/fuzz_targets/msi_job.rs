//! The MsiInstallJob of the EnterpriseDesktopAppManagement CSP.
#![no_main]

use libfuzzer_sys::fuzz_target;
use syncml::msi_job::MsiInstallJob;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = MsiInstallJob::parse(text);
    }
});
