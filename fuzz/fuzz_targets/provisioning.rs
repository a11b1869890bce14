//! The wap-provisioningdoc an enrollment returns, and the enrollment read out of it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use syncml::provisioning::{EnrollmentProvisioning, ProvisioningDoc};

fuzz_target!(|data: &[u8]| {
    if let Ok(doc) = ProvisioningDoc::parse(data) {
        let _ = EnrollmentProvisioning::from_doc(&doc);
        let _ = doc.to_xml();
    }
});
