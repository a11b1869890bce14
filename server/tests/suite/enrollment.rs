//! MS-MDE2 enrollment against the real HTTPS listener.

use crate::common;

use base64::Engine;
use common::*;
use rsa::pkcs8::EncodePrivateKey;
use rustls::pki_types::pem::PemObject;
use syncml::mde2::*;
use syncml::provisioning::{CertStore, ProvisioningDoc};
use x509_parser::prelude::{FromDer, X509Certificate};

const DEVICE: &str = "B1C43CD5-0434-4AAB-8981-0A6EAC236955";

#[tokio::test]
async fn discovery_get_then_post() {
    let (server, _dir) = start().await;
    let client = https(server.ca_pem(), None);
    let url = format!("{}/EnrollmentServer/Discovery.svc", server.base_url);
    let get = client.get(&url).send().await.unwrap();
    assert_eq!(get.status().as_u16(), 200);

    let request = Envelope::new(
        header(action::DISCOVER, &url, None),
        Discover {
            email_address: "user@contoso.com".into(),
            request_version: "6.0".into(),
            device_type: "CIMClient_Windows".into(),
            application_version: "10.0.22631.2861".into(),
            os_edition: "72".into(),
            auth_policies: vec!["OnPremise".into(), "Federated".into()],
        },
    );
    let (status, length, body) = post_soap(&client, &url, request.to_xml()).await;
    assert_eq!(status, 200);
    assert_eq!(
        length,
        Some(body.len() as u64),
        "responses carry Content-Length"
    );
    let env = Envelope::<DiscoverResponse>::parse(body.as_bytes()).unwrap();
    assert_eq!(env.header.action, action::DISCOVER_RESPONSE);
    assert_eq!(env.header.relates_to, request.header.message_id);
    assert_eq!(env.body.auth_policy, "OnPremise");
    assert_eq!(
        env.body.enrollment_policy_service_url,
        format!("{}/EnrollmentServer/Policy.svc", server.base_url)
    );
    assert_eq!(
        env.body.enrollment_service_url,
        format!("{}/EnrollmentServer/Enrollment.svc", server.base_url)
    );
    server.stop().await;
}

#[tokio::test]
async fn policy_needs_the_enrollment_secret() {
    let (server, _dir) = start().await;
    let client = https(server.ca_pem(), None);
    let url = format!("{}/EnrollmentServer/Policy.svc", server.base_url);
    let ask = |secret: Option<&'static str>| {
        Envelope::new(
            header(
                action::GET_POLICIES,
                &url,
                secret.map(|s| ("user@contoso.com", s)),
            ),
            GetPolicies::default(),
        )
        .to_xml()
    };

    let (status, _, body) = post_soap(&client, &url, ask(Some(SECRET))).await;
    assert_eq!(status, 200, "{body}");
    let env = Envelope::<GetPoliciesResponse>::parse(body.as_bytes()).unwrap();
    let policy = &env.body.policies[0];
    assert_eq!(policy.policy_schema, 3);
    assert_eq!(policy.minimal_key_length, 2048);
    assert_eq!(env.body.hash_algorithm(policy), Some(value::OID_SHA256));
    assert!(policy.validity_period_seconds > policy.renewal_period_seconds);

    let (status, _, body) = post_soap(&client, &url, ask(Some("wrong"))).await;
    assert_eq!(status, 500);
    let fault = Envelope::<Fault>::parse(body.as_bytes()).unwrap();
    assert_eq!(fault.body.subcode, Some(FaultSubcode::Authentication));
    assert_eq!(fault.header.action, action::GET_POLICIES_RESPONSE);

    let (_, _, body) = post_soap(&client, &url, ask(None)).await;
    assert_eq!(
        Envelope::<Fault>::parse(body.as_bytes())
            .unwrap()
            .body
            .subcode,
        Some(FaultSubcode::InvalidSecurity)
    );

    let refused = admin(&server).events("", "refused").await;
    assert_eq!(refused.len(), 2, "{refused:?}");
    server.stop().await;
}

#[tokio::test]
async fn enroll_signs_the_csr_and_returns_a_complete_provisioning_document() {
    let (server, _dir) = start().await;
    let enrolled = enroll(&server, DEVICE).await;
    let p = &enrolled.provisioning;

    // The client certificate chains to the CA the server published, names the device,
    // and is for client authentication.
    let ca_der =
        rustls::pki_types::CertificateDer::from_pem_slice(server.ca_pem().as_bytes()).unwrap();
    let (_, ca) = X509Certificate::from_der(&ca_der).unwrap();
    let (_, cert) = X509Certificate::from_der(&enrolled.cert_der).unwrap();
    cert.verify_signature(Some(ca.public_key()))
        .expect("signed by the CA");
    assert_eq!(cert.issuer(), ca.subject());
    assert_eq!(
        cert.subject()
            .iter_common_name()
            .next()
            .unwrap()
            .as_str()
            .unwrap(),
        DEVICE
    );
    let eku = cert.extended_key_usage().unwrap().unwrap().value;
    assert!(eku.client_auth);

    let ca_pem_on_disk = std::fs::read_to_string(_dir.path().join("pki/ca.pem")).unwrap();
    assert_eq!(ca_pem_on_disk, server.ca_pem());
    assert_eq!(p.root_ca.thumbprint, server::pki::thumbprint(&ca_der));
    assert_eq!(
        p.client_cert.thumbprint,
        server::pki::thumbprint(&enrolled.cert_der)
    );
    assert_eq!(p.client_store, Some(CertStore::User));
    assert_eq!(
        p.addr,
        format!("{}/ManagementServer/MDM.svc", server.base_url)
    );
    assert!(p.ssl_client_cert_search_criteria.contains(DEVICE));
    assert_eq!(
        (p.client_auth.level.as_str(), p.server_auth.level.as_str()),
        ("CLIENT", "APPSRV")
    );
    assert!(
        !p.client_auth.data.is_empty() && !p.server_auth.data.is_empty(),
        "Windows 11 needs AAUTHDATA"
    );
    assert_ne!(p.client_auth.data, p.server_auth.data, "independent nonces");
    assert!(!p.client_auth.secret.is_empty());
    assert_eq!(p.poll.interval_for_remaining_scheduled_retries, 480);

    let (_, device) = admin(&server)
        .get(&format!("/beta/deviceManagement/managedDevices/{DEVICE}"))
        .await;
    assert_eq!(device["deviceName"], "DESKTOP-TEST01");
    assert_eq!(device["userPrincipalName"], "user@contoso.com");
    assert_eq!(device["osVersion"], "10.0.22631.2861");
    let enrolled_events = admin(&server).events(DEVICE, "enrolled").await;
    assert_eq!(enrolled_events.len(), 1);
    assert_eq!(
        enrolled_events[0]["payload"]["thumbprint"],
        p.client_cert.thumbprint
    );
    server.stop().await;
}

fn rsa_key() -> (rsa::RsaPrivateKey, rcgen::KeyPair) {
    let mut rng = rand_core_06::OsRng;
    let key = rsa::RsaPrivateKey::new(&mut rng, 2048).unwrap();
    let der = key.to_pkcs8_der().unwrap();
    let pair = rcgen::KeyPair::try_from(der.as_bytes()).unwrap();
    (key, pair)
}

fn der_len(len: usize) -> Vec<u8> {
    match len {
        0..=127 => vec![len as u8],
        128..=255 => vec![0x81, len as u8],
        _ => vec![0x82, (len >> 8) as u8, len as u8],
    }
}

fn der(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    out.extend(der_len(content.len()));
    out.extend_from_slice(content);
    out
}

/// Re-signs a CSR's request info with SHA-1 RSA under the given algorithm OID (DER).
fn sha1_csr(key: &rsa::RsaPrivateKey, csr_der: &[u8], oid_der: &[u8]) -> Vec<u8> {
    use sha1::{Digest, Sha1};
    let (_, csr) =
        x509_parser::certification_request::X509CertificationRequest::from_der(csr_der).unwrap();
    let info = csr.certification_request_info.raw;
    let signature = key
        .sign(rsa::Pkcs1v15Sign::new::<Sha1>(), &Sha1::digest(info))
        .unwrap();
    let mut alg = oid_der.to_vec();
    alg.extend_from_slice(&[0x05, 0x00]);
    let mut bits = vec![0];
    bits.extend(signature);
    let mut body = info.to_vec();
    body.extend(der(0x30, &alg));
    body.extend(der(0x03, &bits));
    der(0x30, &body)
}

#[tokio::test]
async fn accepts_the_rsa_csrs_windows_sends_including_sha1_identifiers() {
    let (server, _dir) = start().await;
    let client = https(server.ca_pem(), None);
    let url = format!("{}/EnrollmentServer/Enrollment.svc", server.base_url);
    let (key, pair) = rsa_key();
    let sha256 = csr(&pair, DEVICE);
    let sha1_pkcs = sha1_csr(
        &key,
        &sha256,
        &[
            0x06, 0x09, 0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x01, 0x05,
        ],
    );
    let sha1_oiw = sha1_csr(&key, &sha256, &[0x06, 0x05, 0x2B, 0x0E, 0x03, 0x02, 0x1D]);
    for (name, csr) in [
        ("sha256RSA", sha256),
        ("sha1RSA", sha1_pkcs),
        ("OIW sha1RSA", sha1_oiw),
    ] {
        let checked = server::pki::verify_csr(&csr).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(
            checked.device_id.as_deref(),
            Some(DEVICE),
            "{name}: extension read"
        );
        let (status, _, body) = post_soap(&client, &url, rst(&csr, DEVICE, SECRET, &url)).await;
        assert_eq!(status, 200, "{name}: {body}");
        // The id is free to enroll again once an admin deleted the device.
        let (status, _) = admin(&server)
            .delete(&format!("/beta/deviceManagement/managedDevices/{DEVICE}"))
            .await;
        assert_eq!(status, 204, "{name}");
    }
    let (status, _, body) = post_soap(
        &client,
        &url,
        rst(&csr(&pair, DEVICE), DEVICE, SECRET, &url),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    // Each enrollment is journaled; the device is listed once.
    let (_, devices) = admin(&server)
        .get("/beta/deviceManagement/managedDevices")
        .await;
    assert_eq!(devices["value"].as_array().unwrap().len(), 1);
    assert_eq!(admin(&server).events(DEVICE, "enrolled").await.len(), 4);
    server.stop().await;
}

#[tokio::test]
async fn a_tampered_csr_is_refused_with_a_certificate_request_fault() {
    let (server, _dir) = start().await;
    let client = https(server.ca_pem(), None);
    let url = format!("{}/EnrollmentServer/Enrollment.svc", server.base_url);
    let key = rcgen::KeyPair::generate().unwrap();
    let mut csr_der = csr(&key, DEVICE);
    let n = csr_der.len();
    csr_der[n - 10] ^= 0x55; // inside the signature

    let (status, _, body) = post_soap(&client, &url, rst(&csr_der, DEVICE, SECRET, &url)).await;
    assert_eq!(status, 500);
    let fault = Envelope::<Fault>::parse(body.as_bytes()).unwrap();
    assert_eq!(fault.body.subcode, Some(FaultSubcode::CertificateRequest));
    assert_eq!(fault.header.action, action::RSTRC);

    let (_, _, body) = post_soap(&client, &url, rst(b"not a CSR", DEVICE, SECRET, &url)).await;
    assert_eq!(
        Envelope::<Fault>::parse(body.as_bytes())
            .unwrap()
            .body
            .subcode,
        Some(FaultSubcode::CertificateRequest)
    );
    let (_, _, body) = post_soap(
        &client,
        &url,
        rst(&csr(&key, DEVICE), DEVICE, "wrong", &url),
    )
    .await;
    assert_eq!(
        Envelope::<Fault>::parse(body.as_bytes())
            .unwrap()
            .body
            .subcode,
        Some(FaultSubcode::Authentication)
    );

    let (_, devices) = admin(&server)
        .get("/beta/deviceManagement/managedDevices")
        .await;
    assert!(
        devices["value"].as_array().unwrap().is_empty(),
        "nothing was enrolled"
    );
    server.stop().await;
}

#[tokio::test]
async fn garbage_gets_a_message_format_fault_and_the_server_stays_up() {
    let (server, _dir) = start().await;
    let client = https(server.ca_pem(), None);
    for path in ["Discovery.svc", "Policy.svc", "Enrollment.svc"] {
        let url = format!("{}/EnrollmentServer/{path}", server.base_url);
        for junk in ["", "<s:Envelope", "{\"json\": true}", "<a/>", "\u{0}\u{1}"] {
            let (status, _, body) = post_soap(&client, &url, junk.into()).await;
            assert_eq!(status, 500, "{path} {junk:?}");
            let fault = Envelope::<Fault>::parse(body.as_bytes()).expect("a SOAP fault");
            assert_eq!(
                fault.body.subcode,
                Some(FaultSubcode::MessageFormat),
                "{path} {junk:?}"
            );
        }
    }
    // Still serving.
    enroll(&server, DEVICE).await;
    server.stop().await;
}

#[tokio::test]
async fn the_provisioning_document_reads_back_as_emitted() {
    let (server, _dir) = start().await;
    let client = https(server.ca_pem(), None);
    let url = format!("{}/EnrollmentServer/Enrollment.svc", server.base_url);
    let key = rcgen::KeyPair::generate().unwrap();
    let (_, _, body) =
        post_soap(&client, &url, rst(&csr(&key, DEVICE), DEVICE, SECRET, &url)).await;
    let env = Envelope::<RequestSecurityTokenResponseCollection>::parse(body.as_bytes()).unwrap();
    assert_eq!(env.body.requested_token.value_type, value::PROVISION_DOC);
    assert_eq!(env.body.request_id, "0");
    let ts = env.header.security.unwrap().timestamp.unwrap();
    assert_eq!(
        ts.created, "2026-11-24T09:00:00.000Z",
        "stamped by the server's clock"
    );
    let xml = String::from_utf8(env.body.requested_token.decode().unwrap()).unwrap();
    let doc = ProvisioningDoc::parse(xml.as_bytes()).unwrap();
    let top: Vec<_> = doc
        .characteristics
        .iter()
        .map(|c| c.type_.as_str())
        .collect();
    assert_eq!(
        top,
        [
            "CertificateStore",
            "CertificateStore",
            "APPLICATION",
            "DMClient"
        ]
    );
    let cert = base64::engine::general_purpose::STANDARD
        .decode(
            syncml::provisioning::EnrollmentProvisioning::from_doc(&doc)
                .unwrap()
                .client_cert
                .encoded,
        )
        .unwrap();
    assert_eq!(server::pki::common_name(&cert).as_deref(), Some(DEVICE));
    server.stop().await;
}

#[tokio::test]
async fn renewal_is_authenticated_by_the_current_certificate() {
    let (server, _dir) = start().await;
    let first = enroll(&server, DEVICE).await;
    let client = https(server.ca_pem(), Some((&first.cert_der, &first.key_pkcs8)));
    let url = format!("{}/EnrollmentServer/Enrollment.svc", server.base_url);
    let key = rcgen::KeyPair::generate().unwrap();
    let mut env = Envelope::<RequestSecurityToken>::parse(
        rst(&csr(&key, DEVICE), "", SECRET, &url).as_bytes(),
    )
    .unwrap();
    env.header.security = None; // no UsernameToken: the TLS client certificate speaks
    env.body.request_type = value::REQUEST_RENEW.into();
    let (status, _, body) = post_soap(&client, &url, env.to_xml()).await;
    assert_eq!(status, 200, "{body}");
    let renewed = admin(&server).events(DEVICE, "enrolled").await;
    assert_eq!(renewed.len(), 2);
    assert_eq!(renewed[1]["payload"]["requestType"], "Renew");
    assert_eq!(renewed[1]["payload"]["user"], "user@contoso.com");

    // Without a certificate, a renewal needs the secret like anything else.
    let anonymous = https(server.ca_pem(), None);
    let (status, _, body) = post_soap(&anonymous, &url, env.to_xml()).await;
    assert_eq!(status, 500);
    assert_eq!(
        Envelope::<Fault>::parse(body.as_bytes())
            .unwrap()
            .body
            .subcode,
        Some(FaultSubcode::InvalidSecurity)
    );
    server.stop().await;
}

/// A management session's header status for a device's certificate.
async fn session_status(server: &server::RunningServer, e: &Enrolled, session: &str) -> String {
    let client = https(server.ca_pem(), Some((&e.cert_der, &e.key_pkcs8)));
    let url = format!("{}/ManagementServer/MDM.svc", server.base_url);
    let reply = exchange(&client, &url, &package1(&e.device_id, session, &url, None)).await;
    header_status(&reply).data.clone()
}

#[tokio::test]
async fn the_enrollment_secret_does_not_take_an_enrolled_device_over() {
    let (server, _dir) = start().await;
    let owner = enroll(&server, DEVICE).await;
    let url = format!("{}/EnrollmentServer/Enrollment.svc", server.base_url);

    // Someone with the secret asks for the same DeviceID: refused, the record untouched.
    let key = rcgen::KeyPair::generate().unwrap();
    let stranger = https(server.ca_pem(), None);
    let xml = rst(&csr(&key, DEVICE), DEVICE, SECRET, &url)
        .replace("user@contoso.com", "mallory@contoso.com");
    let (status, _, body) = post_soap(&stranger, &url, xml.clone()).await;
    assert_eq!(status, 500, "{body}");
    assert_eq!(
        Envelope::<Fault>::parse(body.as_bytes())
            .unwrap()
            .body
            .subcode,
        Some(FaultSubcode::Authorization)
    );
    let (_, device) = admin(&server)
        .get(&format!("/beta/deviceManagement/managedDevices/{DEVICE}"))
        .await;
    assert_eq!(device["userPrincipalName"], "user@contoso.com", "{device}");
    assert_eq!(session_status(&server, &owner, "1").await, "200");

    // The device itself may enroll again (it shows its certificate): the old one is
    // revoked and refused from then on; the new one works.
    let again = https(server.ca_pem(), Some((&owner.cert_der, &owner.key_pkcs8)));
    let (status, _, body) =
        post_soap(&again, &url, rst(&csr(&key, DEVICE), DEVICE, SECRET, &url)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(session_status(&server, &owner, "2").await, "401");

    // An admin deletes it: its certificates stop working and the id is free again.
    let renewed = enroll_after_delete(&server).await;
    assert_eq!(session_status(&server, &renewed, "3").await, "200");
    server.stop().await;
}

async fn enroll_after_delete(server: &server::RunningServer) -> Enrolled {
    let (status, _) = admin(server)
        .delete(&format!("/beta/deviceManagement/managedDevices/{DEVICE}"))
        .await;
    assert_eq!(status, 204);
    enroll(server, DEVICE).await
}

#[tokio::test]
async fn a_device_id_from_the_csr_is_normalised_and_odd_ones_are_refused() {
    let (server, _dir) = start().await;
    let url = format!("{}/EnrollmentServer/Enrollment.svc", server.base_url);
    let client = https(server.ca_pem(), None);
    let lower = DEVICE.to_lowercase();
    let key = rcgen::KeyPair::generate().unwrap();
    // No DeviceID in the request: the CSR's extension (lower case) names the device.
    let xml = rst(&csr(&key, &lower), "", SECRET, &url);
    let (status, _, body) = post_soap(&client, &url, xml).await;
    assert_eq!(status, 200, "{body}");
    let (_, devices) = admin(&server)
        .get("/beta/deviceManagement/managedDevices")
        .await;
    assert_eq!(devices["value"][0]["id"], DEVICE);

    for odd in ["x".repeat(65), "a b".to_owned(), "<script>".to_owned()] {
        let xml = rst(&csr(&key, DEVICE), &odd, SECRET, &url);
        let (status, _, body) = post_soap(&client, &url, xml).await;
        assert_eq!(status, 500, "{odd}: {body}");
        assert_eq!(
            Envelope::<Fault>::parse(body.as_bytes())
                .unwrap()
                .body
                .subcode,
            Some(FaultSubcode::MessageFormat),
            "{odd}"
        );
    }
    server.stop().await;
}
