//! The enrollment client, as Windows enrolls: discovery (GET, then POST), MS-XCEP
//! GetPolicies, and an MS-WSTEP RequestSecurityToken carrying a CSR with the device-id
//! extension (RSA-2048 like Windows by default; ECDSA P-256 with `fast_keys`). The
//! provisioning document's certificates, ADDR, APPAUTH credentials and poll settings
//! are kept in the agent's state and in the registry where Windows keeps enrollments.

use base64::Engine;
use chrono::{DateTime, Utc};
use rcgen::{
    CertificateParams, CustomExtension, DistinguishedName, DnType, ExtendedKeyUsagePurpose, KeyPair,
};
use syncml::mde2::{
    action, value, BinarySecurityToken, Body, ContextItem, Discover, DiscoverResponse, Envelope,
    GetPolicies, GetPoliciesResponse, Header, RequestSecurityToken,
    RequestSecurityTokenResponseCollection, Security, UsernameToken,
};
use syncml::provisioning::{CertStore, EnrollmentProvisioning, ProvisioningDoc};

use crate::device::{Device, RegValue};
use crate::error::AgentError;
use crate::http;
use crate::state::{AgentState, Enrollment};

/// The DER OID body of 1.3.6.1.4.1.311.66.1.0 for rcgen.
const DEVICE_ID_OID: &[u64] = &[1, 3, 6, 1, 4, 1, 311, 66, 1, 0];

/// What to enroll with.
#[derive(Debug, Clone)]
pub struct EnrollRequest {
    /// The server: a base URL (`https://host:port`) or the discovery URL itself.
    pub server: String,
    /// The user's e-mail address.
    pub user: String,
    /// The enrollment secret (the password).
    pub secret: String,
    /// CA certificates (PEM) to trust for the server.
    pub trusted_ca_pem: Vec<String>,
    /// Authenticate management sessions by digest instead of the client certificate.
    pub digest_only: bool,
}

fn discovery_url(server: &str) -> String {
    if server
        .to_lowercase()
        .contains("/enrollmentserver/discovery.svc")
    {
        server.to_owned()
    } else {
        format!(
            "{}/EnrollmentServer/Discovery.svc",
            server.trim_end_matches('/')
        )
    }
}

fn message_id(device: &Device, n: u8) -> String {
    let mut bytes = [0u8; 16];
    bytes[..15].copy_from_slice(
        &device.profile.device_id.as_bytes()[..15.min(device.profile.device_id.len())],
    );
    bytes[15] = n;
    format!(
        "urn:uuid:{}",
        uuid::Builder::from_random_bytes(bytes).into_uuid()
    )
}

async fn post<B: Body>(client: &reqwest::Client, url: &str, xml: String) -> Result<B, AgentError> {
    let response = client
        .post(url)
        .header("Content-Type", "application/soap+xml; charset=utf-8")
        .header("User-Agent", "ENROLLClient")
        .body(xml)
        .send()
        .await
        .map_err(|e| http::classify(url, e))?;
    let body = response.bytes().await.map_err(|e| http::classify(url, e))?;
    match Envelope::<B>::parse_reply(&body) {
        Ok(Ok(env)) => Ok(env.body),
        Ok(Err(fault)) => Err(AgentError::Fault {
            subcode: fault
                .body
                .subcode
                .map(|s| s.qualified())
                .unwrap_or_default(),
            reason: fault.body.reason,
        }),
        Err(e) => Err(AgentError::Protocol(format!("{url}: {e}"))),
    }
}

/// Runs the three enrollment calls and records the result.
pub async fn enroll(
    device: &mut Device,
    state: &mut AgentState,
    req: &EnrollRequest,
    now: DateTime<Utc>,
) -> Result<(), AgentError> {
    let client = http::client(&req.trusted_ca_pem, None)?;
    let discovery = discovery_url(&req.server);
    client
        .get(&discovery)
        .send()
        .await
        .map_err(|e| http::classify(&discovery, e))?;
    let header = |act: &str, to: &str, n: u8, secured: bool| Header {
        action: act.into(),
        message_id: Some(message_id(device, n)),
        reply_to: Some(value::ANONYMOUS.into()),
        to: Some(to.into()),
        security: secured.then(|| Security {
            username_token: Some(UsernameToken {
                username: req.user.clone(),
                password: req.secret.clone(),
            }),
            ..Security::default()
        }),
        ..Header::default()
    };
    let p = device.profile.clone();
    let discover = Discover {
        email_address: req.user.clone(),
        request_version: "6.0".into(),
        device_type: "CIMClient_Windows".into(),
        application_version: p.os_version.clone(),
        os_edition: p.os_edition.to_string(),
        auth_policies: vec!["OnPremise".into(), "Federated".into()],
    };
    let found: DiscoverResponse = post(
        &client,
        &discovery,
        Envelope::new(header(action::DISCOVER, &discovery, 1, false), discover).to_xml(),
    )
    .await?;
    if !found.auth_policy.eq_ignore_ascii_case("OnPremise") {
        return Err(AgentError::Protocol(format!(
            "the server wants {} authentication; only OnPremise is supported",
            found.auth_policy
        )));
    }

    let policy_url = found.enrollment_policy_service_url.clone();
    let policies: GetPoliciesResponse = post(
        &client,
        &policy_url,
        Envelope::new(
            header(action::GET_POLICIES, &policy_url, 2, true),
            GetPolicies::default(),
        )
        .to_xml(),
    )
    .await?;
    let min_bits = policies
        .policies
        .first()
        .map(|p| p.minimal_key_length)
        .unwrap_or(2048);

    let key = if p.fast_keys {
        KeyPair::generate().map_err(|e| AgentError::Config(format!("key: {e}")))?
    } else {
        rsa_key(min_bits.max(2048) as usize)?
    };
    let csr = csr(&key, &p.device_id)?;

    let ctx = |name: &str, value: String| ContextItem {
        name: name.into(),
        value,
    };
    let mut context = vec![
        ctx("UXInitiated", "true".into()),
        ctx("HWDevID", p.hw_dev_id.clone()),
        ctx("Locale", p.language.clone()),
        ctx("TargetedUserLoggedIn", "true".into()),
        ctx("OSEdition", p.os_edition.to_string()),
        ctx("DeviceName", p.device_name.clone()),
    ];
    for mac in &p.mac_addresses {
        context.push(ctx("MAC", mac.clone()));
    }
    context.extend([
        ctx("DeviceID", p.device_id.clone()),
        ctx("EnrollmentType", "Full".into()),
        ctx("DeviceType", "CIMClient_Windows".into()),
        ctx("OSVersion", p.os_version.clone()),
        ctx("ApplicationVersion", p.os_version.clone()),
        ctx("NotInOobe", "true".into()),
        ctx("RequestVersion", "6.0".into()),
    ]);
    let rst = RequestSecurityToken {
        token_type: value::DEVICE_ENROLLMENT_TOKEN.into(),
        request_type: value::REQUEST_ISSUE.into(),
        binary_security_token: BinarySecurityToken::base64(value::PKCS10, &csr),
        additional_context: context,
    };
    let enroll_url = found.enrollment_service_url.clone();
    let issued: RequestSecurityTokenResponseCollection = post(
        &client,
        &enroll_url,
        Envelope::new(header(action::RST, &enroll_url, 3, true), rst).to_xml(),
    )
    .await?;
    let doc_bytes = issued
        .requested_token
        .decode()
        .map_err(|e| AgentError::Protocol(format!("provisioning document: {e}")))?;
    let doc = ProvisioningDoc::parse(&doc_bytes)
        .map_err(|e| AgentError::Protocol(format!("provisioning document: {e}")))?;
    let prov = EnrollmentProvisioning::from_doc(&doc)
        .map_err(|e| AgentError::Protocol(format!("provisioning document: {e}")))?;

    let b64 = base64::engine::general_purpose::STANDARD;
    let root_der = b64
        .decode(&prov.root_ca.encoded)
        .map_err(|e| AgentError::Protocol(format!("root certificate: {e}")))?;
    let mut trusted = req.trusted_ca_pem.clone();
    trusted.push(pem("CERTIFICATE", &root_der));
    let enrollment = Enrollment {
        id: uuid::Builder::from_random_bytes(sha_bytes(&format!(
            "{}{}",
            p.device_id, prov.client_cert.thumbprint
        )))
        .into_uuid()
        .to_string()
        .to_uppercase(),
        discovery_url: discovery,
        addr: prov.addr.clone(),
        provider_id: prov.provider_id.clone(),
        trusted_ca_pem: trusted,
        cert_b64: prov.client_cert.encoded.clone(),
        key_b64: b64.encode(key.serialize_der()),
        thumbprint: prov.client_cert.thumbprint.clone(),
        client_name: prov.client_auth.name.clone(),
        client_secret: prov.client_auth.secret.clone(),
        client_nonce: prov.client_auth.data.clone(),
        poll: prov.poll.clone(),
        upn: req.user.clone(),
        enrolled_at: now,
        digest_only: req.digest_only,
    };
    record_in_registry(device, &enrollment, &prov, &root_der);
    state.enrollment = Some(enrollment);
    state.sessions = 0;
    state.next_poll = Some(now);
    device.save()?;
    Ok(())
}

/// Where Windows keeps an enrollment, its certificates and its DM account.
fn record_in_registry(
    device: &mut Device,
    e: &Enrollment,
    prov: &EnrollmentProvisioning,
    root_der: &[u8],
) {
    let sid = device.user_sid();
    let reg = &mut device.registry;
    let key = format!(r"HKLM\SOFTWARE\Microsoft\Enrollments\{}", e.id);
    reg.set(
        &key,
        "DiscoveryServiceFullURL",
        RegValue::Sz(e.discovery_url.clone()),
    );
    reg.set(&key, "EnrollmentState", RegValue::Dword(1));
    reg.set(&key, "EnrollmentType", RegValue::Dword(6));
    reg.set(&key, "ProviderID", RegValue::Sz(e.provider_id.clone()));
    reg.set(&key, "UPN", RegValue::Sz(e.upn.clone()));
    reg.set(&key, "SID", RegValue::Sz(sid));
    reg.set(
        &key,
        "DMPCertThumbPrint",
        RegValue::Sz(e.thumbprint.clone()),
    );
    let dm = format!(r"{key}\DMClient\{}", e.provider_id);
    reg.set(&dm, "EntDMID", RegValue::Sz(prov.entdmid.clone()));
    reg.set(
        &dm,
        "PollOnLogin",
        RegValue::Dword(u32::from(prov.poll.poll_on_login)),
    );
    let poll = format!(r"{dm}\Poll");
    let p = &prov.poll;
    for (name, value) in p.numbers() {
        reg.set(&poll, name, RegValue::Dword(value));
    }
    reg.set(
        &format!(
            r"HKLM\SOFTWARE\Microsoft\Provisioning\OMADM\Accounts\{}",
            e.id
        ),
        "Addr",
        RegValue::Sz(e.addr.clone()),
    );
    let b64 = base64::engine::general_purpose::STANDARD;
    let my = match prov.client_store {
        Some(CertStore::System) => {
            r"HKLM\SOFTWARE\Microsoft\SystemCertificates\MY\Certificates".to_owned()
        }
        _ => r"HKCU\Software\Microsoft\SystemCertificates\My\Certificates".to_owned(),
    };
    if let Ok(der) = b64.decode(&e.cert_b64) {
        reg.set(
            &format!(r"{my}\{}", e.thumbprint),
            "Blob",
            RegValue::Binary(der),
        );
    }
    reg.set(
        &format!(
            r"HKLM\SOFTWARE\Microsoft\SystemCertificates\ROOT\Certificates\{}",
            prov.root_ca.thumbprint
        ),
        "Blob",
        RegValue::Binary(root_der.to_vec()),
    );
}

fn rsa_key(bits: usize) -> Result<KeyPair, AgentError> {
    use rsa::pkcs8::EncodePrivateKey;
    let key = rsa::RsaPrivateKey::new(&mut rand_core_06::OsRng, bits)
        .map_err(|e| AgentError::Config(format!("RSA key: {e}")))?;
    let der = key
        .to_pkcs8_der()
        .map_err(|e| AgentError::Config(format!("RSA key: {e}")))?;
    KeyPair::try_from(der.as_bytes()).map_err(|e| AgentError::Config(format!("RSA key: {e}")))
}

/// A PKCS#10 request as Windows makes it: subject CN = the device id, clientAuth EKU,
/// and the device id in extension 1.3.6.1.4.1.311.66.1.0 (an OCTET STRING).
pub fn csr(key: &KeyPair, device_id: &str) -> Result<Vec<u8>, AgentError> {
    let mut params = CertificateParams::new(Vec::<String>::new())
        .map_err(|e| AgentError::Config(e.to_string()))?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, device_id);
    params.distinguished_name = dn;
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let mut value = vec![0x04, device_id.len() as u8];
    value.extend_from_slice(device_id.as_bytes());
    params
        .custom_extensions
        .push(CustomExtension::from_oid_content(DEVICE_ID_OID, value));
    let request = params
        .serialize_request(key)
        .map_err(|e| AgentError::Config(format!("CSR: {e}")))?;
    Ok(request.der().to_vec())
}

fn pem(label: &str, der: &[u8]) -> String {
    let body = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in body.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

fn sha_bytes(text: &str) -> [u8; 16] {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(text.as_bytes());
    let mut out = [0u8; 16];
    out.copy_from_slice(&digest[..16]);
    out
}
