//! MS-XCEP GetPolicies: the certificate policy the device's CSR must follow.

use super::{bool_text, ns, value, Body};
use crate::error::{Error, Result};
use crate::xml::{Element, XmlWriter};

/// `GetPolicies/client`: what the device already has (usually nothing).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GetPolicies {
    /// `client/lastUpdate`, absent when nil.
    pub last_update: Option<String>,
    /// `client/preferredLanguage`, absent when nil.
    pub preferred_language: Option<String>,
}

impl Body for GetPolicies {
    const ELEMENT: &'static str = "GetPolicies";

    fn read(el: &Element) -> Result<Self> {
        let client = el.child("client");
        Ok(GetPolicies {
            last_update: client.and_then(|c| c.child_value("lastUpdate")),
            preferred_language: client.and_then(|c| c.child_value("preferredLanguage")),
        })
    }

    fn write(&self, w: &mut XmlWriter) {
        w.open("GetPolicies", &[("xmlns", ns::POLICY)])
            .open("client", &[]);
        nillable(w, "lastUpdate", self.last_update.as_deref());
        nillable(w, "preferredLanguage", self.preferred_language.as_deref());
        w.close("client");
        nillable(w, "requestFilter", None);
        w.close("GetPolicies");
    }
}

/// One certificate enrollment policy (`policies/policy`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CertificatePolicy {
    /// `policyOIDReference`.
    pub policy_oid_reference: String,
    /// `attributes/commonName`.
    pub common_name: String,
    /// `attributes/policySchema` (3).
    pub policy_schema: u32,
    /// `certificateValidity/validityPeriodSeconds`.
    pub validity_period_seconds: u64,
    /// `certificateValidity/renewalPeriodSeconds`.
    pub renewal_period_seconds: u64,
    /// `permission/enroll`.
    pub enroll: bool,
    /// `permission/autoEnroll`.
    pub auto_enroll: bool,
    /// `privateKeyAttributes/minimalKeyLength` (2048).
    pub minimal_key_length: u32,
    /// `privateKeyAttributes/algorithmOIDReference`: the key algorithm's oID reference.
    pub algorithm_oid_reference: Option<String>,
    /// `revision/majorRevision`.
    pub major_revision: u32,
    /// `revision/minorRevision`.
    pub minor_revision: u32,
    /// `hashAlgorithmOIDReference`: the hash algorithm's oID reference.
    pub hash_algorithm_oid_reference: Option<String>,
}

/// An `oIDs/oID` entry that policies refer to.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Oid {
    /// `value`, e.g. `2.16.840.1.101.3.4.2.1`.
    pub value: String,
    /// `group` (1 hash, 3 public key, ...).
    pub group: u32,
    /// `oIDReferenceID`.
    pub reference_id: String,
    /// `defaultName`, e.g. `szOID_NIST_sha256`.
    pub default_name: String,
}

/// `GetPoliciesResponse`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GetPoliciesResponse {
    /// `response/policyID`.
    pub policy_id: String,
    /// `response/policies/policy`.
    pub policies: Vec<CertificatePolicy>,
    /// `oIDs/oID`.
    pub oids: Vec<Oid>,
}

impl GetPoliciesResponse {
    /// The complete policy a Windows client expects: schema 3, RSA with 2048-bit keys,
    /// SHA-256, and the given validity and renewal periods.
    pub fn windows(validity_period_seconds: u64, renewal_period_seconds: u64) -> Self {
        GetPoliciesResponse {
            policy_id: String::new(),
            policies: vec![CertificatePolicy {
                policy_oid_reference: "0".into(),
                common_name: "Tenantless device".into(),
                policy_schema: 3,
                validity_period_seconds,
                renewal_period_seconds,
                enroll: true,
                auto_enroll: false,
                minimal_key_length: 2048,
                algorithm_oid_reference: Some("1".into()),
                major_revision: 101,
                minor_revision: 0,
                hash_algorithm_oid_reference: Some("0".into()),
            }],
            oids: vec![
                Oid {
                    value: value::OID_SHA256.into(),
                    group: 1,
                    reference_id: "0".into(),
                    default_name: "szOID_NIST_sha256".into(),
                },
                Oid {
                    value: value::OID_RSA.into(),
                    group: 3,
                    reference_id: "1".into(),
                    default_name: "szOID_RSA_RSA".into(),
                },
            ],
        }
    }

    /// The OID a policy's hash algorithm reference points at.
    pub fn hash_algorithm(&self, policy: &CertificatePolicy) -> Option<&str> {
        let reference = policy.hash_algorithm_oid_reference.as_deref()?;
        self.oids
            .iter()
            .find(|o| o.reference_id == reference)
            .map(|o| o.value.as_str())
    }
}

impl Body for GetPoliciesResponse {
    const ELEMENT: &'static str = "GetPoliciesResponse";

    fn read(el: &Element) -> Result<Self> {
        let response = el.require("response")?;
        let policies = response
            .child("policies")
            .map(|p| p.children_named("policy").map(read_policy).collect())
            .transpose_vec()?;
        let oids = el
            .child("oIDs")
            .map(|o| {
                o.children_named("oID")
                    .map(|oid| {
                        Ok(Oid {
                            value: oid.child_text("value").unwrap_or_default(),
                            group: number(oid, "group")?.unwrap_or_default(),
                            reference_id: oid.child_text("oIDReferenceID").unwrap_or_default(),
                            default_name: oid.child_text("defaultName").unwrap_or_default(),
                        })
                    })
                    .collect()
            })
            .transpose_vec()?;
        Ok(GetPoliciesResponse {
            policy_id: response.child_text("policyID").unwrap_or_default(),
            policies,
            oids,
        })
    }

    fn write(&self, w: &mut XmlWriter) {
        w.open("GetPoliciesResponse", &[("xmlns", ns::POLICY)])
            .open("response", &[])
            .leaf("policyID", &[], &self.policy_id);
        nillable(w, "policyFriendlyName", None);
        nillable(w, "nextUpdateHours", None);
        nillable(w, "policiesNotChanged", None);
        w.open("policies", &[]);
        for p in &self.policies {
            write_policy(w, p);
        }
        w.close("policies").close("response");
        nillable(w, "cAs", None);
        w.open("oIDs", &[]);
        for oid in &self.oids {
            w.open("oID", &[])
                .leaf("value", &[], &oid.value)
                .leaf("group", &[], &oid.group.to_string())
                .leaf("oIDReferenceID", &[], &oid.reference_id)
                .leaf("defaultName", &[], &oid.default_name)
                .close("oID");
        }
        w.close("oIDs").close("GetPoliciesResponse");
    }
}

fn read_policy(p: &Element) -> Result<CertificatePolicy> {
    let attrs = p.require("attributes")?;
    let validity = attrs.child("certificateValidity");
    let permission = attrs.child("permission");
    let key = attrs.child("privateKeyAttributes");
    let revision = attrs.child("revision");
    let flag = |el: Option<&Element>, name: &str| {
        el.and_then(|e| e.child_value(name))
            .is_some_and(|v| v.eq_ignore_ascii_case("true"))
    };
    Ok(CertificatePolicy {
        policy_oid_reference: p.child_text("policyOIDReference").unwrap_or_default(),
        common_name: attrs.child_text("commonName").unwrap_or_default(),
        policy_schema: number(attrs, "policySchema")?.unwrap_or_default(),
        validity_period_seconds: opt_number(validity, "validityPeriodSeconds")?,
        renewal_period_seconds: opt_number(validity, "renewalPeriodSeconds")?,
        enroll: flag(permission, "enroll"),
        auto_enroll: flag(permission, "autoEnroll"),
        minimal_key_length: opt_number(key, "minimalKeyLength")?,
        algorithm_oid_reference: key.and_then(|k| k.child_value("algorithmOIDReference")),
        major_revision: opt_number(revision, "majorRevision")?,
        minor_revision: opt_number(revision, "minorRevision")?,
        hash_algorithm_oid_reference: attrs.child_value("hashAlgorithmOIDReference"),
    })
}

fn write_policy(w: &mut XmlWriter, p: &CertificatePolicy) {
    w.open("policy", &[])
        .leaf("policyOIDReference", &[], &p.policy_oid_reference);
    nillable(w, "cAs", None);
    w.open("attributes", &[])
        .leaf("commonName", &[], &p.common_name)
        .leaf("policySchema", &[], &p.policy_schema.to_string())
        .open("certificateValidity", &[])
        .leaf(
            "validityPeriodSeconds",
            &[],
            &p.validity_period_seconds.to_string(),
        )
        .leaf(
            "renewalPeriodSeconds",
            &[],
            &p.renewal_period_seconds.to_string(),
        )
        .close("certificateValidity")
        .open("permission", &[])
        .leaf("enroll", &[], bool_text(p.enroll))
        .leaf("autoEnroll", &[], bool_text(p.auto_enroll))
        .close("permission")
        .open("privateKeyAttributes", &[])
        .leaf("minimalKeyLength", &[], &p.minimal_key_length.to_string());
    nillable(w, "keySpec", None);
    nillable(w, "keyUsageProperty", None);
    nillable(w, "permissions", None);
    nillable(
        w,
        "algorithmOIDReference",
        p.algorithm_oid_reference.as_deref(),
    );
    nillable(w, "cryptoProviders", None);
    w.close("privateKeyAttributes")
        .open("revision", &[])
        .leaf("majorRevision", &[], &p.major_revision.to_string())
        .leaf("minorRevision", &[], &p.minor_revision.to_string())
        .close("revision");
    for nil in [
        "supersededPolicies",
        "privateKeyFlags",
        "subjectNameFlags",
        "enrollmentFlags",
        "generalFlags",
    ] {
        nillable(w, nil, None);
    }
    nillable(
        w,
        "hashAlgorithmOIDReference",
        p.hash_algorithm_oid_reference.as_deref(),
    );
    for nil in ["rARequirements", "keyArchivalAttributes", "extensions"] {
        nillable(w, nil, None);
    }
    w.close("attributes").close("policy");
}

/// `<name>value</name>`, or `<name xsi:nil="true"/>` without a value.
fn nillable(w: &mut XmlWriter, name: &str, value: Option<&str>) {
    match value {
        Some(v) => w.leaf(name, &[], v),
        None => w.empty(name, &[("xsi:nil", "true")]),
    };
}

fn number<T: std::str::FromStr>(el: &Element, name: &str) -> Result<Option<T>> {
    match el.child_value(name) {
        None => Ok(None),
        Some(text) => text
            .parse()
            .map(Some)
            .map_err(|_| Error::invalid(name, &text, "not a number")),
    }
}

fn opt_number<T: std::str::FromStr + Default>(el: Option<&Element>, name: &str) -> Result<T> {
    match el {
        Some(el) => number(el, name).map(Option::unwrap_or_default),
        None => Ok(T::default()),
    }
}

/// `Option<Iterator of Result>` collected into `Result<Vec>` (empty when absent).
trait TransposeVec<T> {
    fn transpose_vec(self) -> Result<Vec<T>>;
}

impl<T> TransposeVec<T> for Option<Result<Vec<T>>> {
    fn transpose_vec(self) -> Result<Vec<T>> {
        self.unwrap_or_else(|| Ok(Vec::new()))
    }
}
