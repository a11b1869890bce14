//! The discovery call: which authentication policy, and where the other services are.

use super::{ns, Body};
use crate::error::Result;
use crate::xml::{Element, XmlWriter};

/// `Discover/request`: what the device says about itself.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Discover {
    /// `EmailAddress`: the user enrolling.
    pub email_address: String,
    /// `RequestVersion`: 4.0, 5.0, 6.0 or 9.0 are seen.
    pub request_version: String,
    /// `DeviceType`: `CIMClient_Windows`.
    pub device_type: String,
    /// `ApplicationVersion`: the OS build, e.g. `10.0.22631.0`.
    pub application_version: String,
    /// `OSEdition`: the SKU number.
    pub os_edition: String,
    /// `AuthPolicies/AuthPolicy`: OnPremise, Federated, Certificate.
    pub auth_policies: Vec<String>,
}

impl Body for Discover {
    const ELEMENT: &'static str = "Discover";

    fn read(el: &Element) -> Result<Self> {
        let req = el.require("request")?;
        Ok(Discover {
            email_address: req.child_text("EmailAddress").unwrap_or_default(),
            request_version: req.child_text("RequestVersion").unwrap_or_default(),
            device_type: req.child_text("DeviceType").unwrap_or_default(),
            application_version: req.child_text("ApplicationVersion").unwrap_or_default(),
            os_edition: req.child_text("OSEdition").unwrap_or_default(),
            auth_policies: req
                .child("AuthPolicies")
                .map(|p| {
                    p.children_named("AuthPolicy")
                        .map(|a| a.text().trim().to_owned())
                        .collect()
                })
                .unwrap_or_default(),
        })
    }

    fn write(&self, w: &mut XmlWriter) {
        w.open("Discover", &[("xmlns", ns::DISCOVERY)])
            .open("request", &[("xmlns:i", ns::XSI)])
            .leaf("EmailAddress", &[], &self.email_address)
            .leaf("RequestVersion", &[], &self.request_version)
            .leaf("DeviceType", &[], &self.device_type)
            .leaf("ApplicationVersion", &[], &self.application_version)
            .leaf("OSEdition", &[], &self.os_edition)
            .open("AuthPolicies", &[]);
        for policy in &self.auth_policies {
            w.leaf("AuthPolicy", &[], policy);
        }
        w.close("AuthPolicies").close("request").close("Discover");
    }
}

/// `DiscoverResponse/DiscoverResult`: the policy to use and the service addresses.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DiscoverResponse {
    /// `AuthPolicy`: OnPremise or Federated.
    pub auth_policy: String,
    /// `EnrollmentVersion`.
    pub enrollment_version: String,
    /// `EnrollmentPolicyServiceUrl`: where GetPolicies goes.
    pub enrollment_policy_service_url: String,
    /// `EnrollmentServiceUrl`: where RequestSecurityToken goes.
    pub enrollment_service_url: String,
    /// `AuthenticationServiceUrl`: only for Federated.
    pub authentication_service_url: Option<String>,
}

impl Body for DiscoverResponse {
    const ELEMENT: &'static str = "DiscoverResponse";

    fn read(el: &Element) -> Result<Self> {
        let r = el.require("DiscoverResult")?;
        Ok(DiscoverResponse {
            auth_policy: r.child_text("AuthPolicy").unwrap_or_default(),
            enrollment_version: r.child_text("EnrollmentVersion").unwrap_or_default(),
            enrollment_policy_service_url: r.require_text("EnrollmentPolicyServiceUrl")?,
            enrollment_service_url: r.require_text("EnrollmentServiceUrl")?,
            authentication_service_url: r.child_value("AuthenticationServiceUrl"),
        })
    }

    fn write(&self, w: &mut XmlWriter) {
        w.open("DiscoverResponse", &[("xmlns", ns::DISCOVERY)])
            .open("DiscoverResult", &[])
            .leaf("AuthPolicy", &[], &self.auth_policy)
            .leaf("EnrollmentVersion", &[], &self.enrollment_version)
            .leaf(
                "EnrollmentPolicyServiceUrl",
                &[],
                &self.enrollment_policy_service_url,
            )
            .leaf("EnrollmentServiceUrl", &[], &self.enrollment_service_url)
            .leaf_opt(
                "AuthenticationServiceUrl",
                self.authentication_service_url.as_deref(),
            )
            .close("DiscoverResult")
            .close("DiscoverResponse");
    }
}
