//! MS-MDE2 enrollment: the SOAP 1.2 envelope with WS-Addressing and WS-Security
//! headers, and the bodies of its three calls (Discover, MS-XCEP GetPolicies, MS-WSTEP
//! RequestSecurityToken) and their faults.

mod discovery;
mod envelope;
mod fault;
mod policy;
mod wstep;

pub use discovery::{Discover, DiscoverResponse};
pub use envelope::{
    BinarySecurityToken, Body, Envelope, Header, Reply, Security, Timestamp, UsernameToken,
};
pub use fault::{Fault, FaultDetail, FaultSubcode};
pub use policy::{CertificatePolicy, GetPolicies, GetPoliciesResponse, Oid};
pub use wstep::{ContextItem, RequestSecurityToken, RequestSecurityTokenResponseCollection};

/// Namespaces used on the wire.
pub mod ns {
    /// SOAP 1.2 envelope.
    pub const SOAP: &str = "http://www.w3.org/2003/05/soap-envelope";
    /// WS-Addressing.
    pub const ADDRESSING: &str = "http://www.w3.org/2005/08/addressing";
    /// WS-Security extensions (`wsse`).
    pub const WSSE: &str =
        "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd";
    /// WS-Security utility (`u`).
    pub const WSU: &str =
        "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd";
    /// WS-Trust (`wst`).
    pub const WST: &str = "http://docs.oasis-open.org/ws-sx/ws-trust/200512";
    /// Additional context (`ac`).
    pub const AC: &str = "http://schemas.xmlsoap.org/ws/2006/12/authorization";
    /// XML Schema instance (`xsi`).
    pub const XSI: &str = "http://www.w3.org/2001/XMLSchema-instance";
    /// The discovery service's body namespace.
    pub const DISCOVERY: &str =
        "http://schemas.microsoft.com/windows/management/2012/01/enrollment";
    /// MS-XCEP policy body namespace.
    pub const POLICY: &str = "http://schemas.microsoft.com/windows/pki/2009/01/enrollmentpolicy";
    /// MS-WSTEP enrollment namespace (DispositionMessage, RequestID, faults' detail).
    pub const ENROLLMENT: &str = "http://schemas.microsoft.com/windows/pki/2009/01/enrollment";
}

/// WS-Addressing actions of the three calls and their responses.
pub mod action {
    /// Discover request.
    pub const DISCOVER: &str =
        "http://schemas.microsoft.com/windows/management/2012/01/enrollment/IDiscoveryService/Discover";
    /// Discover response.
    pub const DISCOVER_RESPONSE: &str = "http://schemas.microsoft.com/windows/management/2012/01/enrollment/IDiscoveryService/DiscoverResponse";
    /// GetPolicies request.
    pub const GET_POLICIES: &str =
        "http://schemas.microsoft.com/windows/pki/2009/01/enrollmentpolicy/IPolicy/GetPolicies";
    /// GetPolicies response.
    pub const GET_POLICIES_RESPONSE: &str =
        "http://schemas.microsoft.com/windows/pki/2009/01/enrollmentpolicy/IPolicy/GetPoliciesResponse";
    /// RequestSecurityToken.
    pub const RST: &str = "http://schemas.microsoft.com/windows/pki/2009/01/enrollment/RST/wstep";
    /// RequestSecurityTokenResponseCollection.
    pub const RSTRC: &str =
        "http://schemas.microsoft.com/windows/pki/2009/01/enrollment/RSTRC/wstep";
}

/// Well-known values in enrollment messages.
pub mod value {
    /// The WS-Addressing anonymous reply address.
    pub const ANONYMOUS: &str = "http://www.w3.org/2005/08/addressing/anonymous";
    /// `wsse:Password` Type for clear-text passwords.
    pub const PASSWORD_TEXT: &str =
        "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0#PasswordText";
    /// `BinarySecurityToken` EncodingType for base64.
    pub const BASE64_BINARY: &str =
        "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd#base64binary";
    /// `BinarySecurityToken` ValueType of a PKCS#10 request.
    pub const PKCS10: &str = "http://schemas.microsoft.com/windows/pki/2009/01/enrollment#PKCS10";
    /// `BinarySecurityToken` ValueType of the provisioning document.
    pub const PROVISION_DOC: &str =
        "http://schemas.microsoft.com/5.0.0.0/ConfigurationManager/Enrollment/DeviceEnrollmentProvisionDoc";
    /// `BinarySecurityToken` ValueType of a federated user token.
    pub const USER_TOKEN: &str =
        "http://schemas.microsoft.com/5.0.0.0/ConfigurationManager/Enrollment/DeviceEnrollmentUserToken";
    /// TokenType of device enrollment.
    pub const DEVICE_ENROLLMENT_TOKEN: &str =
        "http://schemas.microsoft.com/5.0.0.0/ConfigurationManager/Enrollment/DeviceEnrollmentToken";
    /// RequestType Issue (first enrollment).
    pub const REQUEST_ISSUE: &str = "http://docs.oasis-open.org/ws-sx/ws-trust/200512/Issue";
    /// RequestType Renew.
    pub const REQUEST_RENEW: &str =
        "http://schemas.microsoft.com/windows/pki/2009/01/enrollment/Renew";
    /// RequestType Recovery.
    pub const REQUEST_RECOVERY: &str =
        "http://schemas.microsoft.com/windows/pki/2009/01/enrollment/Recovery";
    /// The SHA-256 hash algorithm OID.
    pub const OID_SHA256: &str = "2.16.840.1.101.3.4.2.1";
    /// The RSA public key algorithm OID.
    pub const OID_RSA: &str = "1.2.840.113549.1.1.1";
    /// The CSR extension Windows uses for the device id.
    pub const OID_DEVICE_ID: &str = "1.3.6.1.4.1.311.66.1.0";
}

pub(crate) fn bool_text(b: bool) -> &'static str {
    if b {
        "true"
    } else {
        "false"
    }
}
