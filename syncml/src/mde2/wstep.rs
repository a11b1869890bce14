//! MS-WSTEP: the certificate request and the response that carries the provisioning
//! document.

use super::{ns, value, BinarySecurityToken, Body};
use crate::error::Result;
use crate::xml::{Element, XmlWriter};

/// `ac:ContextItem`: one fact about the device.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ContextItem {
    /// `Name`, e.g. `DeviceID`, `HWDevID`, `EnrollmentType`, `MAC`.
    pub name: String,
    /// `ac:Value`.
    pub value: String,
}

/// `wst:RequestSecurityToken`: the device's CSR and context.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RequestSecurityToken {
    /// `wst:TokenType`.
    pub token_type: String,
    /// `wst:RequestType`: Issue, Renew or Recovery.
    pub request_type: String,
    /// `wsse:BinarySecurityToken`: the base64 PKCS#10 request.
    pub binary_security_token: BinarySecurityToken,
    /// `ac:AdditionalContext/ac:ContextItem`s, in order (`MAC` repeats).
    pub additional_context: Vec<ContextItem>,
}

impl RequestSecurityToken {
    /// The first context item with this name.
    pub fn context(&self, name: &str) -> Option<&str> {
        self.additional_context
            .iter()
            .find(|c| c.name == name)
            .map(|c| c.value.as_str())
    }
}

impl Body for RequestSecurityToken {
    const ELEMENT: &'static str = "RequestSecurityToken";

    fn read(el: &Element) -> Result<Self> {
        Ok(RequestSecurityToken {
            token_type: el.child_text("TokenType").unwrap_or_default(),
            request_type: el.child_text("RequestType").unwrap_or_default(),
            binary_security_token: BinarySecurityToken::read(el.require("BinarySecurityToken")?),
            additional_context: el
                .child("AdditionalContext")
                .map(|ac| {
                    ac.children_named("ContextItem")
                        .map(|item| ContextItem {
                            name: item.attr("Name").unwrap_or_default().trim().to_owned(),
                            value: item.child_text("Value").unwrap_or_default(),
                        })
                        .collect()
                })
                .unwrap_or_default(),
        })
    }

    fn write(&self, w: &mut XmlWriter) {
        w.open(
            "wst:RequestSecurityToken",
            &[
                ("xmlns:wst", ns::WST),
                ("xmlns:wsse", ns::WSSE),
                ("xmlns:ac", ns::AC),
            ],
        )
        .leaf("wst:TokenType", &[], &self.token_type)
        .leaf("wst:RequestType", &[], &self.request_type);
        self.binary_security_token
            .write(w, "wsse:BinarySecurityToken", false);
        w.open("ac:AdditionalContext", &[]);
        for item in &self.additional_context {
            w.open("ac:ContextItem", &[("Name", &item.name)])
                .leaf("ac:Value", &[], &item.value)
                .close("ac:ContextItem");
        }
        w.close("ac:AdditionalContext")
            .close("wst:RequestSecurityToken");
    }
}

/// `RequestSecurityTokenResponseCollection`: the issued provisioning document.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RequestSecurityTokenResponseCollection {
    /// `TokenType`.
    pub token_type: String,
    /// `DispositionMessage` (empty on success).
    pub disposition_message: String,
    /// `RequestedSecurityToken/BinarySecurityToken`: the base64 provisioning document.
    pub requested_token: BinarySecurityToken,
    /// `RequestID` (0).
    pub request_id: String,
}

impl RequestSecurityTokenResponseCollection {
    /// A successful response carrying a provisioning document.
    pub fn provisioning(document_xml: &str) -> Self {
        RequestSecurityTokenResponseCollection {
            token_type: value::DEVICE_ENROLLMENT_TOKEN.into(),
            disposition_message: String::new(),
            requested_token: BinarySecurityToken::base64(
                value::PROVISION_DOC,
                document_xml.as_bytes(),
            ),
            request_id: "0".into(),
        }
    }
}

impl Body for RequestSecurityTokenResponseCollection {
    const ELEMENT: &'static str = "RequestSecurityTokenResponseCollection";

    fn read(el: &Element) -> Result<Self> {
        let r = el.require("RequestSecurityTokenResponse")?;
        Ok(RequestSecurityTokenResponseCollection {
            token_type: r.child_text("TokenType").unwrap_or_default(),
            disposition_message: r.child_text("DispositionMessage").unwrap_or_default(),
            requested_token: BinarySecurityToken::read(
                r.require("RequestedSecurityToken")?
                    .require("BinarySecurityToken")?,
            ),
            request_id: r.child_text("RequestID").unwrap_or_default(),
        })
    }

    fn write(&self, w: &mut XmlWriter) {
        w.open(
            "RequestSecurityTokenResponseCollection",
            &[("xmlns", ns::WST)],
        )
        .open("RequestSecurityTokenResponse", &[])
        .leaf("TokenType", &[], &self.token_type)
        .leaf(
            "DispositionMessage",
            &[("xmlns", ns::ENROLLMENT)],
            &self.disposition_message,
        )
        .open("RequestedSecurityToken", &[]);
        self.requested_token.write(w, "BinarySecurityToken", true);
        w.close("RequestedSecurityToken")
            .leaf("RequestID", &[("xmlns", ns::ENROLLMENT)], &self.request_id)
            .close("RequestSecurityTokenResponse")
            .close("RequestSecurityTokenResponseCollection");
    }
}
