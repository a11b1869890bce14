//! Every message kind read from a fixture written in the shape of Microsoft's published
//! examples (MS-MDE2, MS-MDM, the EnterpriseDesktopAppManagement CSP page), then
//! written back and read again to the same value.

use syncml::dm::{AlertCode, Command, Data, StatusCode, SyncMl};
use syncml::mde2::{
    action, value, Discover, DiscoverResponse, Envelope, Fault, FaultSubcode, GetPolicies,
    GetPoliciesResponse, RequestSecurityToken, RequestSecurityTokenResponseCollection,
};
use syncml::msi_job::MsiInstallJob;
use syncml::provisioning::{CertStore, EnrollmentProvisioning, ProvisioningDoc};

fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn syncml(name: &str) -> SyncMl {
    let msg = SyncMl::parse(&fixture(name)).unwrap();
    assert_eq!(
        SyncMl::parse(msg.to_xml().as_bytes()).unwrap(),
        msg,
        "{name} re-reads"
    );
    msg
}

fn envelope<B: syncml::mde2::Body + PartialEq + std::fmt::Debug>(name: &str) -> Envelope<B> {
    let env = Envelope::<B>::parse(&fixture(name)).unwrap();
    assert_eq!(
        Envelope::<B>::parse(env.to_xml().as_bytes()).unwrap(),
        env,
        "{name} re-reads"
    );
    env
}

#[test]
fn discover_request() {
    let env = envelope::<Discover>("discover_request.xml");
    assert_eq!(env.header.action, action::DISCOVER);
    assert_eq!(
        env.header.message_id.as_deref(),
        Some("urn:uuid:748132ec-a575-4329-b01b-6171a9cf8478")
    );
    assert_eq!(env.header.reply_to.as_deref(), Some(value::ANONYMOUS));
    assert!(env
        .header
        .to
        .as_deref()
        .unwrap()
        .ends_with("/EnrollmentServer/Discovery.svc"));
    let d = env.body;
    assert_eq!(d.email_address, "user@contoso.com");
    assert_eq!(d.request_version, "6.0");
    assert_eq!(d.device_type, "CIMClient_Windows");
    assert_eq!(d.application_version, "10.0.22631.2861");
    assert_eq!(d.os_edition, "72");
    assert_eq!(d.auth_policies, ["OnPremise", "Federated"]);
}

#[test]
fn discover_request_with_other_prefixes_and_unknown_elements() {
    let env = envelope::<Discover>("discover_request_prefixes.xml");
    assert_eq!(env.header.action, action::DISCOVER);
    assert_eq!(
        env.body.email_address, "user@contoso.com",
        "white space around tokens is trimmed"
    );
    assert_eq!(env.body.request_version, "4.0");
    assert_eq!(env.body.auth_policies, ["OnPremise"]);
}

#[test]
fn discover_response() {
    let env = envelope::<DiscoverResponse>("discover_response.xml");
    assert_eq!(env.header.action, action::DISCOVER_RESPONSE);
    assert_eq!(
        env.header.relates_to.as_deref(),
        Some("urn:uuid:748132ec-a575-4329-b01b-6171a9cf8478")
    );
    assert_eq!(
        env.header.activity_id.as_deref(),
        Some("d9eb2fdd-e38a-46ee-bd93-aea9dc86a3b8")
    );
    assert_eq!(env.body.auth_policy, "OnPremise");
    assert_eq!(env.body.enrollment_version, "4.0");
    assert!(env
        .body
        .enrollment_policy_service_url
        .ends_with("/Policy.svc"));
    assert!(env.body.enrollment_service_url.ends_with("/Enrollment.svc"));
    assert_eq!(env.body.authentication_service_url, None);
}

#[test]
fn get_policies_request_with_username_token() {
    let env = envelope::<GetPolicies>("get_policies_request.xml");
    assert_eq!(env.header.action, action::GET_POLICIES);
    let token = env.header.security.unwrap().username_token.unwrap();
    assert_eq!(token.username, "user@contoso.com");
    assert_eq!(
        token.password, "s3cr&t",
        "entities in the password are resolved"
    );
    assert_eq!(
        env.body,
        GetPolicies::default(),
        "nil lastUpdate and preferredLanguage"
    );
}

#[test]
fn get_policies_response() {
    let env = envelope::<GetPoliciesResponse>("get_policies_response.xml");
    let r = &env.body;
    assert_eq!(r.policies.len(), 1);
    let p = &r.policies[0];
    assert_eq!(p.policy_schema, 3);
    assert_eq!(p.minimal_key_length, 2048);
    assert_eq!(p.validity_period_seconds, 1_209_600);
    assert_eq!(p.renewal_period_seconds, 172_800);
    assert!(p.enroll && !p.auto_enroll);
    assert_eq!(p.algorithm_oid_reference, None);
    assert_eq!(r.hash_algorithm(p), Some(value::OID_SHA256));

    // The policy the server emits is complete and reads back the same.
    let ours = Envelope::new(
        Default::default(),
        GetPoliciesResponse::windows(31_536_000, 3_600),
    );
    let back = Envelope::<GetPoliciesResponse>::parse(ours.to_xml().as_bytes()).unwrap();
    assert_eq!(back, ours);
    assert_eq!(
        back.body.hash_algorithm(&back.body.policies[0]),
        Some(value::OID_SHA256)
    );
}

#[test]
fn request_security_token() {
    let env = envelope::<RequestSecurityToken>("rst_request.xml");
    assert_eq!(env.header.action, action::RST);
    let rst = env.body;
    assert_eq!(rst.token_type, value::DEVICE_ENROLLMENT_TOKEN);
    assert_eq!(rst.request_type, value::REQUEST_ISSUE);
    assert_eq!(rst.binary_security_token.value_type, value::PKCS10);
    assert_eq!(
        rst.binary_security_token.encoding_type,
        value::BASE64_BINARY
    );
    let der = rst.binary_security_token.decode().unwrap();
    assert!(
        der.starts_with(b"MIICzjCCAbYCAQAwLTErMCkGA1UEAxMiQjFDNDNDRDUtMDQzNC0"),
        "line-wrapped base64 decodes"
    );
    assert_eq!(
        rst.context("DeviceID"),
        Some("B1C43CD5-0434-4AAB-8981-0A6EAC236955")
    );
    assert_eq!(rst.context("EnrollmentType"), Some("Full"));
    assert_eq!(rst.context("HWDevID").map(str::len), Some(64));
    let macs: Vec<_> = rst
        .additional_context
        .iter()
        .filter(|c| c.name == "MAC")
        .map(|c| c.value.as_str())
        .collect();
    assert_eq!(
        macs,
        ["00-15-5D-01-02-03", "00-15-5D-0A-0B-0C"],
        "repeated MAC items keep their order"
    );
    assert_eq!(rst.additional_context.len(), 15);
}

#[test]
fn request_security_token_response_collection() {
    let env = envelope::<RequestSecurityTokenResponseCollection>("rstrc_response.xml");
    assert_eq!(env.header.action, action::RSTRC);
    let ts = env.header.security.unwrap().timestamp.unwrap();
    assert_eq!(ts.created, "2026-11-24T10:00:00.000Z");
    assert_eq!(ts.expires, "2026-11-24T10:05:00.000Z");
    assert_eq!(env.body.request_id, "0");
    assert_eq!(env.body.disposition_message, "");
    assert_eq!(env.body.requested_token.value_type, value::PROVISION_DOC);
    let doc = env.body.requested_token.decode().unwrap();
    assert_eq!(
        doc,
        br#"<wap-provisioningdoc version="1.1"></wap-provisioningdoc>"#
    );
}

#[test]
fn soap_faults() {
    let env = envelope::<Fault>("fault_authentication.xml");
    assert_eq!(env.body.code, "Receiver");
    assert_eq!(env.body.subcode, Some(FaultSubcode::Authentication));
    assert_eq!(
        env.body.reason,
        "The user name or enrollment secret is not valid."
    );
    assert_eq!(
        env.body.detail.as_ref().unwrap().error_type,
        "AuthenticationFailure"
    );

    let env = envelope::<Fault>("fault_invalid_security.xml");
    assert_eq!(env.body.subcode, Some(FaultSubcode::InvalidSecurity));
    assert!(env
        .to_xml()
        .contains("<s:Value>a:InvalidSecurity</s:Value>"));

    // A client expecting a response gets the fault instead.
    let reply = Envelope::<RequestSecurityTokenResponseCollection>::parse_reply(&fixture(
        "fault_authentication.xml",
    ))
    .unwrap();
    assert_eq!(
        reply.unwrap_err().body.subcode,
        Some(FaultSubcode::Authentication)
    );
    let reply = Envelope::<RequestSecurityTokenResponseCollection>::parse_reply(&fixture(
        "rstrc_response.xml",
    ))
    .unwrap();
    assert!(reply.is_ok());
    // And a fault is not mistaken for the body asked for.
    assert!(Envelope::<DiscoverResponse>::parse(&fixture("fault_authentication.xml")).is_err());
}

#[test]
fn provisioning_document() {
    let doc = ProvisioningDoc::parse(&fixture("provisioning_doc.xml")).unwrap();
    assert_eq!(doc.version, "1.1");
    assert_eq!(
        ProvisioningDoc::parse(doc.to_xml().as_bytes()).unwrap(),
        doc
    );
    let p = EnrollmentProvisioning::from_doc(&doc).unwrap();
    assert_eq!(
        p.root_ca.thumbprint,
        "031336C933CC7E228B88880D78824FB2909A0A2F"
    );
    assert_eq!(
        p.client_cert.thumbprint,
        "F9A4F20FC50D990FDD0E3DB9AFCBF401818D5462"
    );
    assert_eq!(p.client_store, Some(CertStore::User));
    assert_eq!(p.renew.as_ref().unwrap().renew_period, 60);
    assert_eq!(
        p.addr,
        "https://mdm.contoso.com:8443/ManagementServer/MDM.svc"
    );
    assert_eq!(
        p.ssl_client_cert_search_criteria,
        "Subject=CN%3dB1C43CD5-0434-4AAB-8981-0A6EAC236955&Stores=MY%5CUser"
    );
    assert_eq!(p.client_auth.level, "CLIENT");
    assert_eq!(p.client_auth.secret, "client-secret-1");
    assert_eq!(p.server_auth.level, "APPSRV");
    assert_eq!(p.server_auth.data, "bm9uY2Utc2VydmVy");
    assert_eq!(p.entdmid, "B1C43CD5-0434-4AAB-8981-0A6EAC236955");
    assert_eq!(p.poll.interval_for_remaining_scheduled_retries, 480);
    assert!(p.poll.poll_on_login);

    // What we emit carries exactly the four known top-level characteristics and reads
    // back to the same enrollment.
    let ours = p.to_doc();
    let types: Vec<_> = ours
        .characteristics
        .iter()
        .map(|c| c.type_.as_str())
        .collect();
    assert_eq!(
        types,
        [
            "CertificateStore",
            "CertificateStore",
            "APPLICATION",
            "DMClient"
        ]
    );
    let reread = ProvisioningDoc::parse(ours.to_xml().as_bytes()).unwrap();
    assert_eq!(EnrollmentProvisioning::from_doc(&reread).unwrap(), p);
}

#[test]
fn syncml_package_one() {
    let msg = syncml("syncml_package1.xml");
    assert_eq!(msg.hdr.ver_dtd, "1.2");
    assert_eq!(msg.hdr.ver_proto, "DM/1.2");
    assert_eq!(msg.hdr.session_id, "1A", "session ids are opaque strings");
    assert_eq!(msg.hdr.msg_id, "1");
    assert!(msg
        .hdr
        .target
        .as_ref()
        .unwrap()
        .loc_uri
        .ends_with("?mode=Maintenance&Platform=WoA"));
    assert!(msg.body.final_);
    let cmds = &msg.body.commands;
    assert_eq!(cmds.len(), 3);
    let Command::Alert(a) = &cmds[0] else {
        panic!("{:?}", cmds[0])
    };
    assert_eq!(a.code(), Some(AlertCode::ClientInitiated));
    let Command::Alert(login) = &cmds[1] else {
        panic!()
    };
    assert_eq!(login.code(), Some(AlertCode::ClientEvent));
    assert_eq!(
        login.items[0].meta.as_ref().unwrap().type_.as_deref(),
        Some("com.microsoft/MDM/LoginStatus")
    );
    assert_eq!(login.items[0].data_text(), Some("user"));
    let Command::Replace(devinfo) = &cmds[2] else {
        panic!()
    };
    let man = devinfo
        .items
        .iter()
        .find(|i| i.source.as_ref().unwrap().loc_uri == "./DevInfo/Man")
        .unwrap();
    assert_eq!(man.data_text(), Some("Microsoft Corporation"));
    assert_eq!(devinfo.items.len(), 6);
}

#[test]
fn syncml_package_one_in_utf16_with_a_prefix() {
    let text = String::from_utf8(fixture("syncml_package1.xml")).unwrap();
    let prefixed = text
        .replace(
            "<SyncML xmlns=\"SYNCML:SYNCML1.2\">",
            "<?xml version=\"1.0\" encoding=\"utf-16\"?><m:SyncML xmlns:m=\"SYNCML:SYNCML1.2\">",
        )
        .replace("</SyncML>", "</m:SyncML>");
    let mut utf16 = vec![0xFF, 0xFE];
    utf16.extend(prefixed.encode_utf16().flat_map(u16::to_le_bytes));
    assert_eq!(
        SyncMl::parse(&utf16).unwrap(),
        SyncMl::parse(&fixture("syncml_package1.xml")).unwrap()
    );
}

#[test]
fn syncml_challenge_and_credentials() {
    let msg = syncml("syncml_challenge.xml");
    let Command::Status(s) = &msg.body.commands[0] else {
        panic!()
    };
    assert_eq!(s.code(), Some(StatusCode::AuthenticationRequired));
    assert_eq!(s.cmd, "SyncHdr");
    let meta = &s.chal.as_ref().unwrap().meta;
    assert_eq!(meta.type_.as_deref(), Some(syncml::dm::AUTH_MD5));
    assert_eq!(meta.next_nonce.as_deref(), Some("ZG9udC1yZXVzZS1tZQ=="));

    let msg = syncml("syncml_with_cred.xml");
    assert_eq!(msg.hdr.session_id, "0");
    let cred = msg.hdr.cred.as_ref().unwrap();
    assert_eq!(
        cred.data,
        syncml::dm::md5_credential("user", "pass", b"nonce")
    );
    assert_eq!(
        msg.hdr.meta.as_ref().unwrap().max_msg_size.as_deref(),
        Some("512000")
    );
    assert_eq!(
        msg.hdr.source.as_ref().unwrap().loc_name.as_deref(),
        Some("B1C43CD5-0434-4AAB-8981-0A6EAC236955")
    );
}

#[test]
fn syncml_server_commands() {
    let msg = syncml("syncml_server_commands.xml");
    let names: Vec<_> = msg.body.commands.iter().map(Command::name).collect();
    assert_eq!(
        names,
        ["Status", "Status", "Status", "Get", "Add", "Atomic", "Add", "Exec", "Copy"]
    );
    let Command::Status(replace_status) = &msg.body.commands[2] else {
        panic!()
    };
    assert_eq!(
        replace_status.source_refs,
        ["./DevInfo/DevId", "./DevInfo/Man"]
    );
    let Command::Atomic(atomic) = &msg.body.commands[5] else {
        panic!()
    };
    let Command::Replace(r) = &atomic.commands[0] else {
        panic!()
    };
    assert_eq!(r.items[0].data, Some(Data::Text("a < b".into())));
    let Command::Sequence(seq) = &atomic.commands[1] else {
        panic!()
    };
    assert_eq!(seq.commands[0].name(), "Delete");
    let Command::Exec(exec) = &msg.body.commands[7] else {
        panic!()
    };
    assert_eq!(
        exec.items[0].meta.as_ref().unwrap().format.as_deref(),
        Some("xml")
    );
    let Some(Data::Xml(job)) = &exec.items[0].data else {
        panic!("inline XML kept as XML")
    };
    let job = MsiInstallJob::parse(job).unwrap();
    assert_eq!(job.id, "{AF9257BA-6BBD-4624-AA9B-0182D50292C3}");
    assert_eq!(job.retry_count, 3);
    let Command::Copy(copy) = &msg.body.commands[8] else {
        panic!()
    };
    assert!(copy.items[0].source.is_some() && copy.items[0].target.is_some());
}

#[test]
fn syncml_client_statuses_and_results() {
    let msg = syncml("syncml_client_results.xml");
    let codes: Vec<_> = msg
        .body
        .commands
        .iter()
        .filter_map(|c| match c {
            Command::Status(s) => s.code(),
            _ => None,
        })
        .collect();
    use StatusCode::*;
    assert_eq!(
        codes,
        [
            Ok,
            Ok,
            AlreadyExists,
            AtomicFailed,
            AtomicRollbackOk,
            NotFound,
            AcceptedForProcessing
        ]
    );
    let Command::Results(results) = &msg.body.commands[7] else {
        panic!()
    };
    assert_eq!(results.cmd_ref, "4");
    assert_eq!(results.items[0].data_text(), Some("10.0.22631.2861"));
    assert_eq!(
        results.items[1].data_text(),
        Some("DESKTOP-<T3N4NT1>"),
        "CDATA is read as text"
    );
}

#[test]
fn syncml_alerts_install_completion_generic_and_abort() {
    let msg = syncml("syncml_install_alert.xml");
    let codes: Vec<_> = msg
        .body
        .commands
        .iter()
        .filter_map(|c| match c {
            Command::Alert(a) => a.code(),
            _ => None,
        })
        .collect();
    assert_eq!(
        codes,
        [
            AlertCode::ClientInitiated,
            AlertCode::ClientEvent,
            AlertCode::GenericAlert,
            AlertCode::SessionAbort
        ]
    );
    let Command::Alert(done) = &msg.body.commands[1] else {
        panic!()
    };
    let item = &done.items[0];
    let meta = item.meta.as_ref().unwrap();
    assert_eq!(
        meta.type_.as_deref(),
        Some("Reversed-Domain-Name:com.microsoft.mdm.win32csp_install")
    );
    assert_eq!(meta.format.as_deref(), Some("int"));
    assert_eq!(meta.mark.as_deref(), Some("informational"));
    assert!(item
        .source
        .as_ref()
        .unwrap()
        .loc_uri
        .ends_with("%7D/DownloadInstall"));
    assert_eq!(item.data_text(), Some("0"));
}

#[test]
fn msi_install_job_inline_and_escaped() {
    let text = String::from_utf8(fixture("msi_install_job.xml")).unwrap();
    let job = MsiInstallJob::parse(&text).unwrap();
    assert_eq!(job.product_version, "1.0.0.0");
    assert_eq!(job.content_urls.len(), 2);
    assert_eq!(job.file_hash.len(), 64);
    assert_eq!(job.command_line, "/quiet");
    assert_eq!(
        (
            job.timeout_minutes,
            job.retry_count,
            job.retry_interval_minutes
        ),
        (5, 3, 5)
    );
    assert_eq!(MsiInstallJob::parse(&job.to_xml()).unwrap(), job);

    // The same job carried as escaped text in Data reads the same.
    let escaped = syncml::xml::escape_text(&text);
    let msg = format!(
        "<SyncML><SyncHdr><SessionID>1</SessionID><MsgID>1</MsgID></SyncHdr><SyncBody><Exec><CmdID>2</CmdID><Item><Data>{escaped}</Data></Item></Exec></SyncBody></SyncML>"
    );
    let msg = SyncMl::parse(msg.as_bytes()).unwrap();
    let Command::Exec(exec) = &msg.body.commands[0] else {
        panic!()
    };
    assert_eq!(
        MsiInstallJob::parse(exec.items[0].data_text().unwrap()).unwrap(),
        job
    );
}
