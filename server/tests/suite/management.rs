//! OMA-DM management sessions against the real HTTPS listener: mTLS and digest
//! authentication, the command queue, and the IME's delivery.

use crate::common;

use base64::Engine;
use common::*;
use serde_json::json;
use sha2::{Digest, Sha256};
use syncml::dm::*;
use syncml::msi_job::MsiInstallJob;
use syncml::sim_msi::SimulatedMsi;

const DEVICE: &str = "0B9A7C6D-1E2F-4A3B-8C5D-6E7F8A9B0C1D";

fn mdm_url(server: &server::RunningServer) -> String {
    format!(
        "{}/ManagementServer/MDM.svc?mode=Maintenance&Platform=WoA",
        server.base_url
    )
}

/// A session's first message from an enrolled device with its certificate.
async fn open(
    server: &server::RunningServer,
    e: &Enrolled,
    session: &str,
) -> (reqwest::Client, SyncMl, SyncMl) {
    let client = https(server.ca_pem(), Some((&e.cert_der, &e.key_pkcs8)));
    let p1 = package1(&e.device_id, session, &mdm_url(server), None);
    let reply = exchange(&client, &mdm_url(server), &p1).await;
    (client, p1, reply)
}

#[tokio::test]
async fn package_one_over_mtls_records_devinfo_and_ends_when_nothing_is_queued() {
    let (server, _dir) = start().await;
    let e = enroll(&server, DEVICE).await;
    let (_, p1, reply) = open(&server, &e, "1A").await;
    let hdr = header_status(&reply);
    assert_eq!(hdr.data, "200");
    assert_eq!(hdr.msg_ref, "1");
    assert_eq!(reply.hdr.session_id, "1A", "the opaque SessionID is echoed");
    assert_eq!(reply.hdr.msg_id, "1");
    assert_eq!(
        reply.hdr.target.as_ref().unwrap().loc_uri,
        DEVICE,
        "Target and Source mirrored"
    );
    assert!(reply.body.final_);
    // A status for each client command, then nothing else: the session ends.
    let acked: Vec<_> = reply
        .body
        .commands
        .iter()
        .filter_map(|c| match c {
            Command::Status(s) if s.cmd_ref != "0" => {
                Some((s.cmd_ref.as_str(), s.cmd.as_str(), s.data.as_str()))
            }
            _ => None,
        })
        .collect();
    assert_eq!(
        acked,
        [
            ("2", "Alert", "200"),
            ("3", "Alert", "200"),
            ("4", "Replace", "200")
        ]
    );
    assert!(commands(&reply).is_empty());
    let _ = p1;

    let admin = admin(&server);
    let (_, device) = admin
        .get(&format!("/beta/deviceManagement/managedDevices/{DEVICE}"))
        .await;
    assert_eq!(device["manufacturer"], "Microsoft Corporation");
    assert_eq!(device["model"], "Virtual Machine");
    assert_eq!(device["@tenantless.details"]["language"], "en-US");
    assert_eq!(device["lastSyncDateTime"], "2026-11-24T09:00:00.000Z");
    let (_, sessions) = admin
        .get(&format!(
            "/beta/deviceManagement/managedDevices/{DEVICE}/sessions"
        ))
        .await;
    let session = &sessions["value"][0];
    assert_eq!(session["auth"], "certificate");
    assert_eq!(session["outcome"], "completed");
    let (_, messages) = admin
        .get(&format!("/tenantless/sessions/{}/messages", session["id"]))
        .await;
    let directions: Vec<_> = messages["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["direction"].as_str().unwrap())
        .collect();
    assert_eq!(directions, ["in", "out"]);
    assert!(messages["value"][0]["body"]
        .as_str()
        .unwrap()
        .contains("./DevInfo/Man"));
    assert_eq!(admin.events(DEVICE, "session_ended").await.len(), 1);
    server.stop().await;
}

#[tokio::test]
async fn digest_authentication_challenges_then_accepts() {
    let (server, _dir) = start().await;
    let e = enroll(&server, DEVICE).await;
    let client = https(server.ca_pem(), None); // no client certificate
    let url = mdm_url(&server);

    // No Cred: 407 with a fresh nonce.
    let reply = exchange(&client, &url, &package1(DEVICE, "2", &url, None)).await;
    let hdr = header_status(&reply);
    assert_eq!(hdr.data, "407");
    let chal = &hdr.chal.as_ref().expect("a challenge").meta;
    assert_eq!(chal.type_.as_deref(), Some(AUTH_MD5));
    assert_eq!(chal.format.as_deref(), Some("b64"));
    let nonce = base64::engine::general_purpose::STANDARD
        .decode(chal.next_nonce.as_ref().unwrap())
        .unwrap();
    assert!(commands(&reply).is_empty());

    // Wrong Cred: 401 with another challenge.
    let cred = |secret: &str, nonce: &[u8]| Cred {
        meta: Some(Meta {
            format: Some("b64".into()),
            type_: Some(AUTH_MD5.into()),
            ..Meta::default()
        }),
        data: md5_credential(&e.provisioning.client_auth.name, secret, nonce),
    };
    let reply = exchange(
        &client,
        &url,
        &package1(DEVICE, "2", &url, Some(cred("wrong", &nonce))),
    )
    .await;
    let hdr = header_status(&reply);
    assert_eq!(hdr.data, "401");
    let nonce = base64::engine::general_purpose::STANDARD
        .decode(hdr.chal.as_ref().unwrap().meta.next_nonce.as_ref().unwrap())
        .unwrap();

    // The right digest over the latest nonce: 212, with the nonce for the next one.
    let right = cred(&e.provisioning.client_auth.secret, &nonce);
    let reply = exchange(
        &client,
        &url,
        &package1(DEVICE, "2", &url, Some(right.clone())),
    )
    .await;
    let hdr = header_status(&reply);
    assert_eq!(hdr.data, "212");
    let next_nonce = hdr.chal.as_ref().and_then(|c| c.meta.next_nonce.clone());
    assert!(
        next_nonce.is_some(),
        "an accepted digest comes with a new nonce"
    );

    // The same digest again (someone who read it off the wire): refused.
    let replayed = exchange(&client, &url, &package1(DEVICE, "3", &url, Some(right))).await;
    assert_eq!(header_status(&replayed).data, "401");

    // The digest is not kept where the admin API shows messages.
    let (_, events) = admin(&server)
        .get(&format!("/testbed/events?device={DEVICE}&kind=message_in"))
        .await;
    let raw = events.to_string();
    assert!(raw.contains("(redacted)"), "{raw}");
    let digest = md5_credential(
        &e.provisioning.client_auth.name,
        &e.provisioning.client_auth.secret,
        &nonce,
    );
    assert!(!raw.contains(&digest), "the digest is in the journal");
    let (_, sessions) = admin(&server)
        .get(&format!(
            "/beta/deviceManagement/managedDevices/{DEVICE}/sessions"
        ))
        .await;
    assert_eq!(sessions["value"][0]["auth"], "digest");

    // A device that never enrolled: 401, and nothing else happens.
    let stranger = "11111111-2222-3333-4444-555555555555";
    let reply = exchange(&client, &url, &package1(stranger, "1", &url, None)).await;
    assert_eq!(header_status(&reply).data, "401");
    server.stop().await;
}

#[tokio::test]
async fn a_queued_get_is_delivered_and_its_results_stored() {
    let (server, _dir) = start().await;
    let e = enroll(&server, DEVICE).await;
    let admin = admin(&server);
    let (status, queued) = admin
        .post(
            &format!("/beta/deviceManagement/managedDevices/{DEVICE}/commands"),
            json!({ "verb": "Get", "items": [{ "target": "./DevDetail/SwV" }, { "target": "./DevDetail/Ext/Microsoft/DeviceName" }] }),
        )
        .await;
    assert_eq!(status, 201, "{queued}");
    assert_eq!(queued["state"], "pending");

    let (client, p1, reply) = open(&server, &e, "3").await;
    let cmds = commands(&reply);
    assert_eq!(cmds.len(), 1);
    let Command::Get(get) = cmds[0] else {
        panic!("{:?}", cmds[0])
    };
    assert_eq!(
        get.items[0].target.as_ref().unwrap().loc_uri,
        "./DevDetail/SwV"
    );

    let values = |uri: &str| match uri {
        "./DevDetail/SwV" => Some("10.0.26100.1".to_owned()),
        "./DevDetail/Ext/Microsoft/DeviceName" => Some("DESKTOP-RENAMED".to_owned()),
        _ => None,
    };
    let second = answer(&p1, &reply, "2", |_| 200, values, vec![]);
    let end = exchange(&client, &mdm_url(&server), &second).await;
    assert!(commands(&end).is_empty(), "statuses only: the session ends");
    assert_eq!(end.hdr.msg_id, "2");

    let (_, done) = admin
        .get(&format!(
            "/beta/deviceManagement/managedDevices/{DEVICE}/commands/{}",
            queued["id"]
        ))
        .await;
    assert_eq!(done["state"], "completed");
    assert_eq!(done["status"], 200);
    assert_eq!(done["results"]["items"][0]["uri"], "./DevDetail/SwV");
    assert_eq!(done["results"]["items"][0]["data"], "10.0.26100.1");
    let (_, device) = admin
        .get(&format!("/beta/deviceManagement/managedDevices/{DEVICE}"))
        .await;
    assert_eq!(
        device["osVersion"], "10.0.26100.1",
        "DevDetail results update the device"
    );
    assert_eq!(device["deviceName"], "DESKTOP-RENAMED");
    let kinds: Vec<_> = admin
        .get(&format!("/testbed/events?device={DEVICE}"))
        .await
        .1["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap().to_owned())
        .collect();
    for kind in [
        "command_queued",
        "command_delivered",
        "command_status",
        "command_result",
    ] {
        assert!(
            kinds.iter().any(|k| k == kind),
            "{kind} missing from {kinds:?}"
        );
    }
    server.stop().await;
}

#[tokio::test]
async fn a_command_without_a_status_is_sent_again_at_the_next_session() {
    let (server, _dir) = start().await;
    let e = enroll(&server, DEVICE).await;
    let admin = admin(&server);
    admin
        .post(
            &format!("/beta/deviceManagement/managedDevices/{DEVICE}/commands"),
            json!({ "verb": "Replace", "items": [{ "target": "./Vendor/MSFT/Policy/Config/Tenantless/A", "format": "int", "data": "1" }] }),
        )
        .await;
    // First session: the device aborts before answering.
    let (client, p1, reply) = open(&server, &e, "4").await;
    assert_eq!(commands(&reply).len(), 1);
    let abort = SyncMl {
        hdr: SyncHdr {
            msg_id: "2".into(),
            ..p1.hdr.clone()
        },
        body: SyncBody {
            commands: vec![Command::Alert(Alert {
                cmd_id: "2".into(),
                data: "1223".into(),
                ..Alert::default()
            })],
            final_: true,
        },
    };
    let end = exchange(&client, &mdm_url(&server), &abort).await;
    assert!(commands(&end).is_empty());
    let ended = admin.events(DEVICE, "session_ended").await;
    assert_eq!(ended[0]["payload"]["outcome"], "aborted");

    // Next session: the same command again, now answered.
    let (client, p1, reply) = open(&server, &e, "5").await;
    let cmds = commands(&reply);
    assert_eq!(cmds.len(), 1, "re-sent");
    assert!(matches!(cmds[0], Command::Replace(_)));
    exchange(
        &client,
        &mdm_url(&server),
        &answer(&p1, &reply, "2", |_| 200, |_| None, vec![]),
    )
    .await;
    let (_, list) = admin
        .get(&format!(
            "/beta/deviceManagement/managedDevices/{DEVICE}/commands"
        ))
        .await;
    assert_eq!(list["value"][0]["deliveries"], 2);
    assert_eq!(list["value"][0]["state"], "completed");

    // And not a third time.
    let (_, _, reply) = open(&server, &e, "6").await;
    assert!(commands(&reply).is_empty());
    server.stop().await;
}

#[tokio::test]
async fn an_add_that_already_exists_is_retried_once_as_replace() {
    let (server, _dir) = start().await;
    let e = enroll(&server, DEVICE).await;
    let admin = admin(&server);
    let target = "./Vendor/MSFT/Policy/Config/Tenantless/B";
    admin
        .post(
            &format!("/beta/deviceManagement/managedDevices/{DEVICE}/commands"),
            json!({ "verb": "Add", "items": [{ "target": target, "format": "chr", "data": "x" }] }),
        )
        .await;
    let (client, p1, reply) = open(&server, &e, "7").await;
    let code = |c: &Command| {
        if matches!(c, Command::Add(_)) {
            418
        } else {
            200
        }
    };
    let next = exchange(
        &client,
        &mdm_url(&server),
        &answer(&p1, &reply, "2", code, |_| None, vec![]),
    )
    .await;
    let cmds = commands(&next);
    assert_eq!(cmds.len(), 1, "the Replace follows in the same session");
    let Command::Replace(replace) = cmds[0] else {
        panic!("{:?}", cmds[0])
    };
    assert_eq!(replace.items[0].target.as_ref().unwrap().loc_uri, target);
    assert_eq!(replace.items[0].data_text(), Some("x"));
    let answered = answer(&p1, &next, "3", |_| 418, |_| None, vec![]);
    let end = exchange(&client, &mdm_url(&server), &answered).await;
    assert!(commands(&end).is_empty(), "retried once only");
    let (_, list) = admin
        .get(&format!(
            "/beta/deviceManagement/managedDevices/{DEVICE}/commands"
        ))
        .await;
    let list = list["value"].as_array().unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(
        (list[0]["verb"].as_str(), list[0]["status"].as_i64()),
        (Some("Add"), Some(418))
    );
    assert_eq!(
        (list[1]["verb"].as_str(), list[1]["origin"].as_str()),
        (Some("Replace"), Some("retry"))
    );
    assert_eq!(list[1]["retryOf"], list[0]["id"]);
    server.stop().await;
}

#[tokio::test]
async fn an_atomic_keeps_its_inner_statuses() {
    let (server, _dir) = start().await;
    let e = enroll(&server, DEVICE).await;
    let admin = admin(&server);
    let (status, _) = admin
        .post(
            &format!("/beta/deviceManagement/managedDevices/{DEVICE}/commands"),
            json!({ "verb": "Atomic", "commands": [
                { "verb": "Add", "items": [{ "target": "./Vendor/MSFT/Tenantless/X", "data": "1" }] },
                { "syncml": "<Delete><CmdID>1</CmdID><Item><Target><LocURI>./Vendor/MSFT/Tenantless/Missing</LocURI></Target></Item></Delete>" }
            ] }),
        )
        .await;
    assert_eq!(status, 201);
    let (client, p1, reply) = open(&server, &e, "8").await;
    let Command::Atomic(atomic) = commands(&reply)[0] else {
        panic!()
    };
    assert_eq!(atomic.commands.len(), 2);
    let ids: Vec<u32> = std::iter::once(atomic.cmd_id.as_str())
        .chain(atomic.commands.iter().map(Command::cmd_id))
        .map(|id| id.parse().unwrap())
        .collect();
    assert!(
        ids.windows(2).all(|w| w[1] == w[0] + 1),
        "nested commands numbered in order: {ids:?}"
    );
    let code = |c: &Command| match c {
        Command::Atomic(_) => 507,
        Command::Add(_) => 216,
        _ => 404,
    };
    exchange(
        &client,
        &mdm_url(&server),
        &answer(&p1, &reply, "2", code, |_| None, vec![]),
    )
    .await;
    let (_, list) = admin
        .get(&format!(
            "/beta/deviceManagement/managedDevices/{DEVICE}/commands"
        ))
        .await;
    let atomic = &list["value"][0];
    assert_eq!(atomic["status"], 507);
    let inner: Vec<_> = atomic["results"]["statuses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["status"].as_i64().unwrap())
        .collect();
    assert_eq!(inner, [216, 404]);
    server.stop().await;
}

#[tokio::test]
async fn bad_input_gets_status_400_and_the_server_keeps_serving() {
    let (server, _dir) = start().await;
    let e = enroll(&server, DEVICE).await;
    let client = https(server.ca_pem(), Some((&e.cert_der, &e.key_pkcs8)));
    for junk in [
        "",
        "<SyncML>",
        "<SyncML><SyncHdr/></SyncML>",
        "not xml at all",
        "<a/>",
    ] {
        let r = client
            .post(mdm_url(&server))
            .body(junk)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
        assert_eq!(
            r.headers()["content-type"].to_str().unwrap(),
            CONTENT_TYPE,
            "answered in SyncML"
        );
        let reply = SyncMl::parse(&r.bytes().await.unwrap()).unwrap();
        assert_eq!(header_status(&reply).data, "400", "{junk:?}");
        assert!(reply.body.final_);
    }
    // A well-formed message with an unexpected command gets 406 for it, the rest 200.
    let mut p1 = package1(DEVICE, "9", &mdm_url(&server), None);
    p1.body.commands.push(Command::Get(ItemCommand {
        cmd_id: "5".into(),
        items: vec![Item::target("./Vendor/MSFT/Whatever")],
        ..ItemCommand::default()
    }));
    let reply = exchange(&client, &mdm_url(&server), &p1).await;
    let get_status = reply.body.commands.iter().find_map(|c| match c {
        Command::Status(s) if s.cmd_ref == "5" => Some(s.data.clone()),
        _ => None,
    });
    assert_eq!(get_status.as_deref(), Some("406"));
    assert_eq!(admin(&server).events("", "refused").await.len(), 5);
    server.stop().await;
}

#[tokio::test]
async fn the_ime_is_delivered_by_enterprise_desktop_app_management_and_upgraded() {
    let (server, _dir) = start().await;
    let e = enroll(&server, DEVICE).await;
    let admin = admin(&server);
    let (status, body) = admin
        .post(
            &format!(
                "/beta/deviceManagement/managedDevices/{DEVICE}/requireIntuneManagementExtension"
            ),
            json!({}),
        )
        .await;
    assert_eq!((status, body["queued"].as_bool()), (202, Some(true)));
    // Asking twice queues nothing more.
    let (_, body) = admin
        .post(
            &format!(
                "/beta/deviceManagement/managedDevices/{DEVICE}/requireIntuneManagementExtension"
            ),
            json!({}),
        )
        .await;
    assert_eq!(body["queued"], false);

    let (client, p1, reply) = open(&server, &e, "A").await;
    let cmds = commands(&reply);
    assert_eq!(cmds.len(), 2);
    let uri = "./Device/Vendor/MSFT/EnterpriseDesktopAppManagement/MSI/%7B6D2F2E4B-3C1A-4E8D-9B7F-1A2B3C4D5E6F%7D/DownloadInstall";
    let Command::Add(add) = cmds[0] else { panic!() };
    assert_eq!(add.items[0].target.as_ref().unwrap().loc_uri, uri);
    let Command::Exec(exec) = cmds[1] else {
        panic!()
    };
    let item = &exec.items[0];
    assert_eq!(item.target.as_ref().unwrap().loc_uri, uri);
    assert_eq!(item.meta.as_ref().unwrap().format.as_deref(), Some("xml"));
    let job = MsiInstallJob::parse(item.data_text().unwrap()).unwrap();
    assert_eq!(job.id, "{6D2F2E4B-3C1A-4E8D-9B7F-1A2B3C4D5E6F}");
    assert_eq!(job.product_version, server::config::DEFAULT_IME_VERSION);

    // The content is there, and its hash is the one in the job.
    let msi = client
        .get(&job.content_urls[0])
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(hex::encode_upper(Sha256::digest(&msi)), job.file_hash);
    let package = SimulatedMsi::parse(&msi).unwrap();
    assert_eq!(
        package.product_name,
        "Microsoft Intune Management Extension"
    );
    assert_eq!(package.product_version, job.product_version);

    // Add 200, Exec 202: installing. Then a new session with the completion alert.
    exchange(
        &client,
        &mdm_url(&server),
        &answer(
            &p1,
            &reply,
            "2",
            |c| {
                if matches!(c, Command::Exec(_)) {
                    202
                } else {
                    200
                }
            },
            |_| None,
            vec![],
        ),
    )
    .await;
    let (_, device) = admin
        .get(&format!("/beta/deviceManagement/managedDevices/{DEVICE}"))
        .await;
    assert_eq!(device["@tenantless.details"]["imeState"], "installing");

    let mut done = package1(DEVICE, "B", &mdm_url(&server), None);
    done.body.commands.push(Command::Alert(Alert {
        cmd_id: "5".into(),
        data: "1226".into(),
        items: vec![Item {
            source: Some(Location::uri(uri)),
            meta: Some(Meta {
                type_: Some("Reversed-Domain-Name:com.microsoft.mdm.win32csp_install".into()),
                format: Some("int".into()),
                mark: Some("informational".into()),
                ..Meta::default()
            }),
            data: Some(Data::Text("0".into())),
            ..Item::default()
        }],
        ..Alert::default()
    }));
    exchange(&client, &mdm_url(&server), &done).await;
    let (_, device) = admin
        .get(&format!("/beta/deviceManagement/managedDevices/{DEVICE}"))
        .await;
    assert_eq!(device["@tenantless.details"]["imeState"], "installed");
    assert_eq!(
        device["@tenantless.details"]["imeVersion"],
        server::config::DEFAULT_IME_VERSION
    );
    let steps: Vec<_> = admin
        .events(DEVICE, "ime_install")
        .await
        .iter()
        .map(|e| e["payload"]["state"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(steps, ["queued", "installing", "installed"]);

    // A newer IME rolls out the same way.
    let (status, ime) = admin
        .put("/tenantless/ime", json!({ "version": "1.95.0.0" }))
        .await;
    assert_eq!((status, ime["queuedDevices"].as_i64()), (200, Some(1)));
    let (_, _, reply) = open(&server, &e, "C").await;
    let Command::Exec(exec) = commands(&reply)[1] else {
        panic!()
    };
    let job = MsiInstallJob::parse(exec.items[0].data_text().unwrap()).unwrap();
    assert_eq!(job.product_version, "1.95.0.0");
    assert!(job.content_urls[0].contains("/1.95.0.0/"));
    server.stop().await;
}

#[tokio::test]
async fn the_admin_api_wants_its_token() {
    let (server, _dir) = start().await;
    let http = reqwest::Client::new();
    let base = format!("http://{}", server.admin_addr);
    let r = http
        .get(format!("{base}/beta/deviceManagement/managedDevices"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    assert_eq!(r.headers()["content-type"], "application/json");
    let r = http
        .get(format!("{base}/beta/deviceManagement/managedDevices"))
        .bearer_auth("nope")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let (status, body) = admin(&server)
        .get("/beta/deviceManagement/managedDevices/NOPE")
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("ResourceNotFound"))
    );
    let (status, body) = admin(&server)
        .post(
            "/beta/deviceManagement/managedDevices/NOPE/commands",
            json!({ "verb": "Get" }),
        )
        .await;
    assert_eq!(status, 404, "{body}");
    enroll(&server, DEVICE).await;
    let (status, body) = admin(&server)
        .post(
            &format!("/beta/deviceManagement/managedDevices/{DEVICE}/commands"),
            json!({ "verb": "Frobnicate" }),
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["code"], "BadRequest", "{body}");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("Frobnicate"));
    let (status, _) = admin(&server)
        .post(
            &format!("/beta/deviceManagement/managedDevices/{DEVICE}/commands"),
            json!({ "syncml": "<Get><CmdID>1" }),
        )
        .await;
    assert_eq!(status, 400);
    let health = http
        .get(format!("{base}/testbed/health"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status().as_u16(), 200);
    server.stop().await;
}

#[tokio::test]
async fn a_session_id_is_not_a_credential() {
    let (server, _dir) = start().await;
    let e = enroll(&server, DEVICE).await;
    admin(&server)
        .post(
            &format!("/beta/deviceManagement/managedDevices/{DEVICE}/commands"),
            json!({ "verb": "Get", "items": [{ "target": "./DevDetail/SwV" }] }),
        )
        .await;
    // The device opens session 1 with its certificate; the queued Get keeps it open.
    let (_, _, reply) = open(&server, &e, "1").await;
    assert_eq!(commands(&reply).len(), 1);

    // Someone without certificate or credentials names the device and its SessionID.
    let stranger = https(server.ca_pem(), None);
    let url = mdm_url(&server);
    let mut forged = package1(DEVICE, "1", &url, None);
    forged.hdr.msg_id = "2".into();
    let forged = SyncMl::parse(
        forged
            .to_xml()
            .replace("Virtual Machine", "Forged")
            .as_bytes(),
    )
    .unwrap();
    let reply = exchange(&stranger, &url, &forged).await;
    assert_eq!(header_status(&reply).data, "407");
    assert!(commands(&reply).is_empty(), "no command reaches a stranger");
    let (_, device) = admin(&server)
        .get(&format!("/beta/deviceManagement/managedDevices/{DEVICE}"))
        .await;
    assert_ne!(device["model"], "Forged", "{device}");
    server.stop().await;
}

#[tokio::test]
async fn the_clock_refuses_what_it_cannot_do_and_strangers_cannot_follow_it() {
    let (server, _dir) = start().await;
    let admin = admin(&server);
    for by in ["99999999999999d", "9223372036854775807s", "20000d"] {
        let (status, body) = admin
            .post("/testbed/clock/advance", json!({ "by": by }))
            .await;
        assert_eq!(status, 400, "{by}: {body}");
    }
    let (status, _) = admin
        .post("/testbed/clock/advance", json!({ "by": "1h" }))
        .await;
    assert_eq!(status, 200, "the server is still there");

    // On the device listener: the time for anyone, following for enrolled devices.
    let stranger = https(server.ca_pem(), None);
    let url = format!("{}/testbed/clock", server.base_url);
    let r = stranger.get(&url).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let r = stranger
        .get(format!("{url}?follower=x&until=2026-11-25T00:00:00.000Z"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    server.stop().await;
}

#[tokio::test]
async fn a_flood_of_strangers_messages_does_not_fill_the_database() {
    let (server, dir) = start().await;
    let client = https(server.ca_pem(), None);
    let url = mdm_url(&server);
    let size = || {
        ["tenantless.db", "tenantless.db-wal"]
            .iter()
            .map(|f| std::fs::metadata(dir.path().join(f)).map_or(0, |m| m.len()))
            .sum::<u64>()
    };
    let before = size();
    let garbage = "<SyncML>".to_owned() + &"x".repeat(1_500_000);
    let huge_id = "D".repeat(1_000_000);
    for i in 0..20 {
        let body = if i % 2 == 0 {
            garbage.clone()
        } else {
            package1(&huge_id, "1", &url, None).to_xml()
        };
        let r = client
            .post(&url)
            .header("Content-Type", CONTENT_TYPE)
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
    }
    let grown = size().saturating_sub(before);
    assert!(
        grown < 1_000_000,
        "20 posts of 1-1.5 MB grew the database by {grown} bytes"
    );
    let refused = admin(&server).events("", "refused").await;
    assert_eq!(refused.len(), 20);
    assert!(refused.iter().all(|e| e["payload"]["reason"]
        .as_str()
        .is_some_and(|r| r.len() < 300)));
    server.stop().await;
}

/// One admin request with a raw client: status, headers and JSON body.
async fn raw(
    server: &server::RunningServer,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<(&str, Vec<u8>)>,
) -> (u16, reqwest::header::HeaderMap, serde_json::Value) {
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut req = reqwest::Client::new()
        .request(method, format!("http://{}{path}", server.admin_addr))
        .header("client-request-id", "5f0c8a52-4d1b-4f4e-9a51-0c7a3f5e2b11");
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    if let Some((content_type, bytes)) = body {
        req = req.header("content-type", content_type).body(bytes);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    (
        status,
        headers,
        r.json().await.unwrap_or(serde_json::Value::Null),
    )
}

#[tokio::test]
async fn the_admin_api_answers_on_both_graph_roots_with_request_ids() {
    let (server, _dir) = start().await;
    enroll(&server, DEVICE).await;
    for path in [
        "/beta/deviceManagement/managedDevices",
        "/v1.0/deviceManagement/managedDevices",
        "/v1.0/deviceManagement/managedDevices/",
    ] {
        let (status, headers, body) = raw(&server, "GET", path, Some(TOKEN), None).await;
        assert_eq!(status, 200, "{path}: {body}");
        assert_eq!(body["value"][0]["id"], DEVICE, "{path}");
        let request_id = headers["request-id"].to_str().unwrap();
        assert!(uuid::Uuid::parse_str(request_id).is_ok(), "{request_id}");
        assert_eq!(
            headers["client-request-id"],
            "5f0c8a52-4d1b-4f4e-9a51-0c7a3f5e2b11"
        );
    }
}

#[tokio::test]
async fn a_created_entity_has_a_location_and_graphs_common_properties() {
    let (server, _dir) = start().await;
    let script = json!({
        "@odata.type": "#microsoft.graph.deviceManagementScript",
        "displayName": "Contoso baseline",
        "scriptContent": "V3JpdGUtSG9zdCAnaGkn",
        "runAsAccount": "system",
        "fileName": "baseline.ps1",
    });
    let bytes = serde_json::to_vec(&script).unwrap();
    let (status, headers, body) = raw(
        &server,
        "POST",
        "/v1.0/deviceManagement/deviceManagementScripts/",
        Some(TOKEN),
        Some(("application/json", bytes)),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let id = body["id"].as_str().unwrap();
    assert_eq!(
        headers["location"],
        format!(
            "http://{}/v1.0/deviceManagement/deviceManagementScripts/{id}",
            server.admin_addr
        )
        .as_str()
    );
    assert_eq!(body["roleScopeTagIds"], json!(["0"]));
    assert!(body["lastModifiedDateTime"].is_string(), "{body}");
    assert!(
        body.get("tenantless").is_none(),
        "Tenantless facts are an annotation: {body}"
    );
    assert_eq!(body["@tenantless.details"]["revision"], 1, "{body}");

    let (status, _, one) = raw(
        &server,
        "GET",
        &format!("/v1.0/deviceManagement/deviceManagementScripts/{id}"),
        Some(TOKEN),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        one["@odata.type"],
        "#microsoft.graph.deviceManagementScript"
    );
}

#[tokio::test]
async fn every_admin_failure_is_a_graph_error() {
    let (server, _dir) = start().await;
    let big = vec![b' '; 3 * 1024 * 1024];
    // Method, path, token, body (content type and bytes), then the status and code.
    type Body<'a> = Option<(&'a str, Vec<u8>)>;
    type Case<'a> = (&'a str, &'a str, Option<&'a str>, Body<'a>, u16, &'a str);
    let cases: Vec<Case> = vec![
        (
            "GET",
            "/beta/deviceManagement/managedDevices/0000-NOPE",
            Some(TOKEN),
            None,
            404,
            "ResourceNotFound",
        ),
        (
            "GET",
            "/beta/deviceManagement/nothingHere",
            Some(TOKEN),
            None,
            404,
            "ResourceNotFound",
        ),
        (
            "GET",
            "/beta/deviceManagement/managedDevices",
            None,
            None,
            401,
            "InvalidAuthenticationToken",
        ),
        (
            "PUT",
            "/v1.0/deviceManagement/managedDevices",
            Some(TOKEN),
            None,
            405,
            "MethodNotAllowed",
        ),
        (
            "PUT",
            "/tenantless/ime",
            Some(TOKEN),
            Some(("text/plain", b"1.2.3.4".to_vec())),
            415,
            "UnsupportedMediaType",
        ),
        (
            "PUT",
            "/tenantless/ime",
            Some(TOKEN),
            Some(("application/json", b"{\"version\":".to_vec())),
            400,
            "BadRequest",
        ),
        (
            "PUT",
            "/tenantless/ime",
            Some(TOKEN),
            Some(("application/json", big)),
            413,
            "RequestEntityTooLarge",
        ),
        (
            "GET",
            "/testbed/events?limit=many",
            Some(TOKEN),
            None,
            400,
            "BadRequest",
        ),
    ];
    for (method, path, token, body, want_status, want_code) in cases {
        let (status, headers, answer) = raw(&server, method, path, token, body).await;
        assert_eq!(status, want_status, "{method} {path}: {answer}");
        assert_eq!(
            headers["content-type"], "application/json",
            "{method} {path}"
        );
        let error = &answer["error"];
        assert_eq!(error["code"], want_code, "{method} {path}: {answer}");
        assert!(
            error["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{method} {path}: {answer}"
        );
        let inner = &error["innerError"];
        assert_eq!(inner["request-id"], headers["request-id"].to_str().unwrap());
        assert_eq!(
            inner["client-request-id"],
            "5f0c8a52-4d1b-4f4e-9a51-0c7a3f5e2b11"
        );
        assert!(inner["date"].as_str().is_some_and(|d| d.starts_with("20")));
    }
}

#[tokio::test]
async fn a_batch_runs_each_request_with_its_own_answer_and_dependencies() {
    let (server, _dir) = start().await;
    enroll(&server, DEVICE).await;
    let batch = json!({ "requests": [
        { "id": "1", "method": "GET", "url": "/deviceManagement/managedDevices?$select=deviceName" },
        { "id": "2", "method": "GET", "url": "https://graph.microsoft.com/v1.0/deviceManagement/managedDevices/NOPE" },
        { "id": "3", "method": "GET", "url": "deviceManagement/managedDevices", "dependsOn": ["2"] },
        { "id": "4", "method": "POST", "url": "/deviceManagement/deviceManagementScripts",
          "headers": { "Content-Type": "application/json" },
          "body": { "displayName": "Batched", "scriptContent": "V3JpdGUtSG9zdA==", "runAsAccount": "system", "fileName": "b.ps1" } },
    ]});
    let (status, _, answer) = raw(
        &server,
        "POST",
        "/v1.0/$batch",
        Some(TOKEN),
        Some(("application/json", serde_json::to_vec(&batch).unwrap())),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    let by_id = |id: &str| {
        answer["responses"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["id"] == id)
            .unwrap()
            .clone()
    };
    assert_eq!(by_id("1")["status"], 200);
    assert_eq!(by_id("1")["body"]["value"][0]["id"], DEVICE);
    assert!(by_id("1")["body"]["value"][0].get("osVersion").is_none());
    assert_eq!(by_id("2")["status"], 404);
    assert_eq!(by_id("2")["body"]["error"]["code"], "ResourceNotFound");
    assert_eq!(by_id("3")["status"], 424, "{}", by_id("3"));
    assert_eq!(by_id("3")["body"]["error"]["code"], "FailedDependency");
    assert_eq!(by_id("4")["status"], 201, "{}", by_id("4"));
    assert!(by_id("4")["headers"]["location"]
        .as_str()
        .is_some_and(|l| l.contains("/v1.0/deviceManagement/deviceManagementScripts/")));

    // The script the batch created is there (its request committed).
    let (_, scripts) = admin(&server)
        .get("/beta/deviceManagement/deviceManagementScripts")
        .await;
    assert_eq!(scripts["value"][0]["displayName"], "Batched");

    let too_many: Vec<_> = (0..21)
        .map(|i| json!({ "id": i.to_string(), "method": "GET", "url": "/deviceManagement/managedDevices" }))
        .collect();
    let (status, _, answer) = raw(
        &server,
        "POST",
        "/beta/$batch",
        Some(TOKEN),
        Some((
            "application/json",
            serde_json::to_vec(&json!({ "requests": too_many })).unwrap(),
        )),
    )
    .await;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (400, Some("BadRequest"))
    );
    let (status, _, _) = raw(
        &server,
        "POST",
        "/beta/$batch",
        None,
        Some(("application/json", serde_json::to_vec(&batch).unwrap())),
    )
    .await;
    assert_eq!(status, 401, "a batch needs the token like any request");
}

#[tokio::test]
async fn an_app_signs_in_with_client_credentials_as_with_entra_id() {
    let (server, _dir) = start().await;
    enroll(&server, DEVICE).await;
    let http = reqwest::Client::new();
    let base = format!("http://{}", server.admin_addr);
    let config: serde_json::Value = http
        .get(format!(
            "{base}/contoso.onmicrosoft.com/v2.0/.well-known/openid-configuration"
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let endpoint = config["token_endpoint"].as_str().unwrap().to_owned();
    assert_eq!(
        endpoint,
        format!("{base}/contoso.onmicrosoft.com/oauth2/v2.0/token")
    );
    assert!(config["authorization_endpoint"].is_string());
    let ask = |form: Vec<(&'static str, &'static str)>| {
        let http = http.clone();
        let endpoint = endpoint.clone();
        async move {
            let body = form_urlencoded::Serializer::new(String::new())
                .extend_pairs(form)
                .finish();
            let r = http
                .post(&endpoint)
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body)
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            (status, r.json::<serde_json::Value>().await.unwrap())
        }
    };
    let good = vec![
        ("grant_type", "client_credentials"),
        ("client_id", server::config::DEFAULT_ADMIN_CLIENT_ID),
        ("client_secret", TOKEN),
        ("scope", "https://graph.microsoft.com/.default"),
    ];
    let (status, body) = ask(good.clone()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3599);
    let token = body["access_token"].as_str().unwrap().to_owned();
    let claims = token.split('.').nth(1).unwrap();
    let claims: serde_json::Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(claims)
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        (&claims["aud"], &claims["tid"], &claims["idtyp"]),
        (
            &json!("https://graph.microsoft.com"),
            &json!("contoso.onmicrosoft.com"),
            &json!("app")
        )
    );
    let (status, _, body) = raw(
        &server,
        "GET",
        "/beta/deviceManagement/managedDevices",
        Some(&token),
        None,
    )
    .await;
    assert_eq!(status, 200, "the token opens the admin API: {body}");
    assert_eq!(body["value"][0]["id"], DEVICE);
    let mut forged = token.clone();
    forged.push('x');
    let (status, _, _) = raw(
        &server,
        "GET",
        "/beta/deviceManagement/managedDevices",
        Some(&forged),
        None,
    )
    .await;
    assert_eq!(status, 401, "an altered token does not");

    // Entra's errors, in Entra's shape (not Graph's).
    for (form, want_status, error, code) in [
        (
            vec![
                ("grant_type", "client_credentials"),
                ("client_id", server::config::DEFAULT_ADMIN_CLIENT_ID),
                ("client_secret", "wrong"),
                ("scope", "https://graph.microsoft.com/.default"),
            ],
            401,
            "invalid_client",
            7000215,
        ),
        (
            vec![
                ("grant_type", "client_credentials"),
                ("client_id", "someone-else"),
                ("client_secret", TOKEN),
                ("scope", "https://graph.microsoft.com/.default"),
            ],
            400,
            "unauthorized_client",
            700016,
        ),
        (
            vec![("grant_type", "password"), ("client_id", "tenantless")],
            400,
            "unsupported_grant_type",
            70003,
        ),
        (
            vec![
                ("grant_type", "client_credentials"),
                ("client_id", server::config::DEFAULT_ADMIN_CLIENT_ID),
                ("client_secret", TOKEN),
                ("scope", "User.Read"),
            ],
            400,
            "invalid_scope",
            1002012,
        ),
    ] {
        let (status, body) = ask(form).await;
        assert_eq!(status, want_status, "{body}");
        assert_eq!(body["error"], error, "{body}");
        assert_eq!(body["error_codes"], json!([code]), "{body}");
        assert!(body["error_description"]
            .as_str()
            .unwrap()
            .starts_with(&format!("AADSTS{code}: ")));
        assert!(body.get("innerError").is_none() && body["error"].is_string());
    }
    server.stop().await;
}

#[tokio::test]
async fn throttling_on_purpose_refuses_with_retry_after_and_records_whether_the_client_waited() {
    let (server, _dir) = start().await;
    enroll(&server, DEVICE).await;
    let admin = admin(&server);
    let devices = "/v1.0/deviceManagement/managedDevices";
    let (status, body) = admin
        .put(
            "/tenantless/throttling",
            json!({ "seed": 3, "rules": [{ "pattern": "/deviceManagement/managedDevices", "status": 503, "retryAfter": 2, "limit": 1 }] }),
        )
        .await;
    assert_eq!(status, 200, "{body}");

    // A stranger is neither refused nor remembered: the token comes first.
    let (status, _, _) = raw(&server, "GET", devices, None, None).await;
    assert_eq!(status, 401);

    let (status, headers, body) = raw(&server, "GET", devices, Some(TOKEN), None).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(headers["retry-after"], "2");
    assert_eq!(body["error"]["code"], "ServiceUnavailable", "{body}");
    // Retried at once, against the advice; the rule's limit is spent, so it passes.
    let (status, _, body) = raw(&server, "GET", devices, Some(TOKEN), None).await;
    assert_eq!(status, 200, "{body}");
    let (_, refused) = admin.get("/testbed/events?kind=throttled").await;
    assert_eq!(refused["value"].as_array().unwrap().len(), 1, "{refused}");
    assert_eq!(refused["value"][0]["payload"]["status"], 503);
    let (_, retried) = admin.get("/testbed/events?kind=throttle_retry").await;
    let retry = &retried["value"][0]["payload"];
    assert_eq!(retry["honoured"], false, "{retried}");
    assert_eq!(retry["retryAfter"], 2);
    let (_, setting) = admin.get("/tenantless/throttling").await;
    assert_eq!(setting["rules"][0]["refused"], 1, "{setting}");

    for wrong in [
        json!({ "rules": [{ "pattern": "*", "status": 500 }] }),
        json!({ "rules": [{ "pattern": "*", "rate": 2 }] }),
        json!({ "rules": [{ "pattern": "" }] }),
        json!({ "rules": [{ "pattern": "*", "colour": "red" }] }),
    ] {
        let (status, body) = admin.put("/tenantless/throttling", wrong).await;
        assert_eq!(status, 400, "{body}");
    }
    let (status, _) = admin.delete("/tenantless/throttling").await;
    assert_eq!(status, 204);
    let (_, setting) = admin.get("/tenantless/throttling").await;
    assert!(setting.is_null());
    server.stop().await;
}
