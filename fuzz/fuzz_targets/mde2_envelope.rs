//! MS-MDE2 SOAP envelopes, as a client or the server reads them.
#![no_main]

use libfuzzer_sys::fuzz_target;
use syncml::mde2::*;

fuzz_target!(|data: &[u8]| {
    let _ = Envelope::<Discover>::parse(data);
    let _ = Envelope::<GetPolicies>::parse(data);
    let _ = Envelope::<RequestSecurityToken>::parse(data)
        .map(|e| e.body.binary_security_token.decode());
    let _ = Envelope::<DiscoverResponse>::parse_reply(data);
    let _ = Envelope::<GetPoliciesResponse>::parse_reply(data);
    let _ = Envelope::<RequestSecurityTokenResponseCollection>::parse_reply(data);
});
