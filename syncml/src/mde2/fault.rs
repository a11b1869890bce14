//! SOAP 1.2 faults as the enrollment service sends them.

use super::{ns, Body};
use crate::error::Result;
use crate::xml::{Element, XmlWriter};

/// The subcodes MS-MDE2 defines under `s:Receiver`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FaultSubcode {
    /// `s:MessageFormat`: the request could not be read.
    MessageFormat,
    /// `s:Authentication`: wrong credentials.
    Authentication,
    /// `s:Authorization`: the user may not enroll.
    Authorization,
    /// `s:CertificateRequest`: the CSR is unusable.
    CertificateRequest,
    /// `s:EnrollmentServer`: a server-side error.
    EnrollmentServer,
    /// `s:InternalServiceFault`.
    InternalServiceFault,
    /// `a:InvalidSecurity`: the security header is unusable.
    InvalidSecurity,
    /// Any other subcode, as written (without prefix).
    Other(String),
}

impl FaultSubcode {
    /// The qualified name written in `s:Subcode/s:Value`.
    pub fn qualified(&self) -> String {
        match self {
            FaultSubcode::MessageFormat => "s:MessageFormat".into(),
            FaultSubcode::Authentication => "s:Authentication".into(),
            FaultSubcode::Authorization => "s:Authorization".into(),
            FaultSubcode::CertificateRequest => "s:CertificateRequest".into(),
            FaultSubcode::EnrollmentServer => "s:EnrollmentServer".into(),
            FaultSubcode::InternalServiceFault => "s:InternalServiceFault".into(),
            FaultSubcode::InvalidSecurity => "a:InvalidSecurity".into(),
            FaultSubcode::Other(name) => format!("s:{name}"),
        }
    }

    /// Reads a subcode, whatever prefix it was written with.
    pub fn from_qualified(text: &str) -> Self {
        match local(text) {
            "MessageFormat" => FaultSubcode::MessageFormat,
            "Authentication" => FaultSubcode::Authentication,
            "Authorization" => FaultSubcode::Authorization,
            "CertificateRequest" => FaultSubcode::CertificateRequest,
            "EnrollmentServer" => FaultSubcode::EnrollmentServer,
            "InternalServiceFault" => FaultSubcode::InternalServiceFault,
            "InvalidSecurity" => FaultSubcode::InvalidSecurity,
            other => FaultSubcode::Other(other.to_owned()),
        }
    }
}

/// `s:Fault`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    /// The code's local name: `Receiver` or `Sender`.
    pub code: String,
    /// The subcode.
    pub subcode: Option<FaultSubcode>,
    /// `s:Reason/s:Text`: a human-readable explanation.
    pub reason: String,
    /// `s:Detail/DeviceEnrollmentServiceError`.
    pub detail: Option<FaultDetail>,
}

/// The enrollment service's error detail.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FaultDetail {
    /// `ErrorType`, e.g. `AuthenticationFailure`.
    pub error_type: String,
    /// `Message`.
    pub message: String,
    /// `TraceId`.
    pub trace_id: String,
}

impl Fault {
    /// A `s:Receiver` fault with this subcode and reason.
    pub fn receiver(subcode: FaultSubcode, reason: impl Into<String>) -> Self {
        Fault {
            code: "Receiver".into(),
            subcode: Some(subcode),
            reason: reason.into(),
            detail: None,
        }
    }
}

fn local(qualified: &str) -> &str {
    let trimmed = qualified.trim();
    trimmed.rsplit(':').next().unwrap_or(trimmed)
}

impl Body for Fault {
    const ELEMENT: &'static str = "Fault";

    fn read(el: &Element) -> Result<Self> {
        let code = el.child("Code");
        Ok(Fault {
            code: code
                .and_then(|c| c.child_text("Value"))
                .map(|v| local(&v).to_owned())
                .unwrap_or_default(),
            subcode: code
                .and_then(|c| c.child("Subcode"))
                .and_then(|s| s.child_text("Value"))
                .map(|v| FaultSubcode::from_qualified(&v)),
            reason: el
                .child("Reason")
                .and_then(|r| r.child_text("Text"))
                .unwrap_or_default(),
            detail: el
                .child("Detail")
                .and_then(|d| d.child("DeviceEnrollmentServiceError"))
                .map(|e| FaultDetail {
                    error_type: e.child_text("ErrorType").unwrap_or_default(),
                    message: e.child_text("Message").unwrap_or_default(),
                    trace_id: e.child_text("TraceId").unwrap_or_default(),
                }),
        })
    }

    fn write(&self, w: &mut XmlWriter) {
        w.open("s:Fault", &[]).open("s:Code", &[]).leaf(
            "s:Value",
            &[],
            &format!("s:{}", self.code),
        );
        if let Some(sub) = &self.subcode {
            w.open("s:Subcode", &[])
                .leaf("s:Value", &[], &sub.qualified())
                .close("s:Subcode");
        }
        w.close("s:Code")
            .open("s:Reason", &[])
            .leaf("s:Text", &[("xml:lang", "en-US")], &self.reason)
            .close("s:Reason");
        if let Some(d) = &self.detail {
            w.open("s:Detail", &[])
                .open("DeviceEnrollmentServiceError", &[("xmlns", ns::ENROLLMENT)])
                .leaf("ErrorType", &[], &d.error_type)
                .leaf("Message", &[], &d.message)
                .leaf("TraceId", &[], &d.trace_id)
                .close("DeviceEnrollmentServiceError")
                .close("s:Detail");
        }
        w.close("s:Fault");
    }
}
