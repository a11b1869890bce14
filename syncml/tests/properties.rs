//! Property tests: every model survives model -> XML -> model unchanged, and every
//! parser answers any input with a value or an error, never a panic.

use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;
use syncml::dm::*;
use syncml::mde2::*;
use syncml::msi_job::MsiInstallJob;
use syncml::provisioning::*;
use syncml::xml::XmlWriter;

// ---- value strategies ----

/// Identifiers, codes and URIs: read with surrounding white space trimmed, so none here.
fn token() -> impl Strategy<Value = String> + Clone {
    "[A-Za-z0-9./_%{}?&<>\"'=:-]{0,12}"
}

fn non_empty_token() -> impl Strategy<Value = String> + Clone {
    "[A-Za-z0-9./_%{}?&<>\"'=:-]{1,12}"
}

/// Free text kept verbatim: any character XML can carry, markup and line ends included.
fn text() -> impl Strategy<Value = String> + Clone {
    "[\t\n\r -~\u{a0}-\u{d7ff}\u{e000}-\u{fffd}\u{10000}-\u{10ffff}]{0,24}"
}

/// A well-formed XML fragment with at least one element, as inline `Data` holds.
fn xml_fragment() -> impl Strategy<Value = String> + Clone {
    vec(
        ("[A-Za-z][A-Za-z0-9]{0,5}", text(), option::of(text())),
        1..3,
    )
    .prop_map(|elements| {
        let mut w = XmlWriter::new();
        for (name, body, attr) in elements {
            match attr {
                Some(a) => w.leaf(&name, &[("v", &a)], &body),
                None => w.leaf(&name, &[], &body),
            };
        }
        w.finish()
    })
}

fn location() -> BoxedStrategy<Location> {
    (token(), option::of(token()))
        .prop_map(|(loc_uri, loc_name)| Location { loc_uri, loc_name })
        .boxed()
}

fn meta() -> BoxedStrategy<Meta> {
    (
        option::of(token()),
        option::of(token()),
        option::of(token()),
        option::of(token()),
        option::of(token()),
        option::of(token()),
        option::of(token()),
    )
        .prop_map(
            |(format, type_, mark, size, next_nonce, max_msg_size, max_obj_size)| Meta {
                format,
                type_,
                mark,
                size,
                next_nonce,
                max_msg_size,
                max_obj_size,
            },
        )
        .boxed()
}

fn data() -> BoxedStrategy<Data> {
    prop_oneof![
        text().prop_map(Data::Text),
        xml_fragment().prop_map(Data::Xml)
    ]
    .boxed()
}

fn item() -> BoxedStrategy<Item> {
    (
        option::of(location()),
        option::of(location()),
        option::of(meta()),
        option::of(data()),
    )
        .prop_map(|(target, source, meta, data)| Item {
            target,
            source,
            meta,
            data,
        })
        .boxed()
}

fn item_command() -> BoxedStrategy<ItemCommand> {
    (
        token(),
        any::<bool>(),
        option::of(meta()),
        vec(item(), 0..3),
    )
        .prop_map(|(cmd_id, no_resp, meta, items)| ItemCommand {
            cmd_id,
            no_resp,
            meta,
            items,
        })
        .boxed()
}

fn leaf_command() -> BoxedStrategy<Command> {
    prop_oneof![
        (token(), any::<bool>(), token(), vec(item(), 0..2)).prop_map(
            |(cmd_id, no_resp, data, items)| Command::Alert(Alert {
                cmd_id,
                no_resp,
                data,
                items
            })
        ),
        item_command().prop_map(Command::Add),
        item_command().prop_map(Command::Replace),
        item_command().prop_map(Command::Get),
        item_command().prop_map(Command::Delete),
        item_command().prop_map(Command::Exec),
        item_command().prop_map(Command::Copy),
        (
            (token(), token(), token(), token()),
            vec(token(), 0..3),
            vec(token(), 0..3),
            option::of(meta()),
            token(),
            vec(item(), 0..2)
        )
            .prop_map(
                |((cmd_id, msg_ref, cmd_ref, cmd), target_refs, source_refs, chal, data, items)| {
                    Command::Status(Status {
                        cmd_id,
                        msg_ref,
                        cmd_ref,
                        cmd,
                        target_refs,
                        source_refs,
                        chal: chal.map(|meta| Chal { meta }),
                        data,
                        items,
                    })
                }
            ),
        (
            (token(), option::of(token()), token()),
            option::of(meta()),
            option::of(token()),
            option::of(token()),
            vec(item(), 0..3)
        )
            .prop_map(
                |((cmd_id, msg_ref, cmd_ref), meta, target_ref, source_ref, items)| {
                    Command::Results(Results {
                        cmd_id,
                        msg_ref,
                        cmd_ref,
                        meta,
                        target_ref,
                        source_ref,
                        items,
                    })
                }
            ),
    ]
    .boxed()
}

fn command() -> BoxedStrategy<Command> {
    leaf_command()
        .prop_recursive(3, 12, 4, |inner| {
            let container = |inner| {
                (token(), any::<bool>(), option::of(meta()), vec(inner, 0..4)).prop_map(
                    |(cmd_id, no_resp, meta, commands)| Container {
                        cmd_id,
                        no_resp,
                        meta,
                        commands,
                    },
                )
            };
            prop_oneof![
                container(inner.clone()).prop_map(Command::Atomic),
                container(inner).prop_map(Command::Sequence)
            ]
        })
        .boxed()
}

fn syncml_message() -> BoxedStrategy<SyncMl> {
    let hdr = (
        (token(), token(), token(), token()),
        option::of(location()),
        option::of(location()),
        option::of((option::of(meta()), token()).prop_map(|(meta, data)| Cred { meta, data })),
        option::of(meta()),
    )
        .prop_map(
            |((ver_dtd, ver_proto, session_id, msg_id), target, source, cred, meta)| SyncHdr {
                ver_dtd,
                ver_proto,
                session_id,
                msg_id,
                target,
                source,
                cred,
                meta,
            },
        );
    (hdr, vec(command(), 0..6), any::<bool>())
        .prop_map(|(hdr, commands, final_)| SyncMl {
            hdr,
            body: SyncBody { commands, final_ },
        })
        .boxed()
}

fn header() -> BoxedStrategy<Header> {
    let bst = (token(), token(), token()).prop_map(|(value_type, encoding_type, value)| {
        BinarySecurityToken {
            value_type,
            encoding_type,
            value,
        }
    });
    let security = (
        option::of(
            (token(), token()).prop_map(|(created, expires)| Timestamp { created, expires }),
        ),
        option::of(
            (token(), text()).prop_map(|(username, password)| UsernameToken { username, password }),
        ),
        option::of(bst),
    )
        .prop_map(
            |(timestamp, username_token, binary_security_token)| Security {
                timestamp,
                username_token,
                binary_security_token,
            },
        );
    (
        token(),
        option::of(token()),
        option::of(token()),
        option::of(token()),
        option::of(token()),
        option::of(token()),
        option::of(security),
    )
        .prop_map(
            |(action, message_id, relates_to, activity_id, reply_to, to, security)| Header {
                action,
                message_id,
                relates_to,
                activity_id,
                reply_to,
                to,
                security,
            },
        )
        .boxed()
}

fn round_trips<B: Body + PartialEq + std::fmt::Debug + Clone>(
    header: Header,
    body: B,
) -> Result<(), TestCaseError> {
    let env = Envelope::new(header, body);
    let xml = env.to_xml();
    let back = Envelope::<B>::parse(xml.as_bytes())
        .map_err(|e| TestCaseError::fail(format!("{e}\n{xml}")))?;
    prop_assert_eq!(back, env);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn syncml_round_trips(msg in syncml_message()) {
        let xml = msg.to_xml();
        let back = SyncMl::parse(xml.as_bytes()).map_err(|e| TestCaseError::fail(format!("{e}\n{xml}")))?;
        prop_assert_eq!(back, msg);
    }

    #[test]
    fn a_command_round_trips_alone(c in command()) {
        let xml = c.to_xml();
        prop_assert_eq!(Command::parse(&xml).map_err(|e| TestCaseError::fail(format!("{e}\n{xml}")))?, c);
    }

    #[test]
    fn discover_round_trips(h in header(), f in vec(token(), 6), policies in vec(token(), 0..3)) {
        round_trips(h, Discover {
            email_address: f[0].clone(),
            request_version: f[1].clone(),
            device_type: f[2].clone(),
            application_version: f[3].clone(),
            os_edition: f[4].clone(),
            auth_policies: policies,
        })?;
    }

    #[test]
    fn discover_response_round_trips(h in header(), f in vec(token(), 4), auth in option::of(non_empty_token())) {
        round_trips(h, DiscoverResponse {
            auth_policy: f[0].clone(),
            enrollment_version: f[1].clone(),
            enrollment_policy_service_url: f[2].clone(),
            enrollment_service_url: f[3].clone(),
            authentication_service_url: auth,
        })?;
    }

    #[test]
    fn get_policies_round_trips(h in header(), a in option::of(non_empty_token()), b in option::of(non_empty_token())) {
        round_trips(h, GetPolicies { last_update: a, preferred_language: b })?;
    }

    #[test]
    fn get_policies_response_round_trips(
        h in header(),
        id in token(),
        policies in vec((token(), token(), any::<(u32, u64, u64, bool, bool, u32, u32, u32)>(), option::of(non_empty_token()), option::of(non_empty_token())), 0..3),
        oids in vec((token(), any::<u32>(), token(), token()), 0..3),
    ) {
        let policies = policies.into_iter().map(|(r, cn, (schema, v, rn, e, ae, k, maj, min), alg, hash)| CertificatePolicy {
            policy_oid_reference: r,
            common_name: cn,
            policy_schema: schema,
            validity_period_seconds: v,
            renewal_period_seconds: rn,
            enroll: e,
            auto_enroll: ae,
            minimal_key_length: k,
            algorithm_oid_reference: alg,
            major_revision: maj,
            minor_revision: min,
            hash_algorithm_oid_reference: hash,
        }).collect();
        let oids = oids.into_iter().map(|(value, group, reference_id, default_name)| Oid { value, group, reference_id, default_name }).collect();
        round_trips(h, GetPoliciesResponse { policy_id: id, policies, oids })?;
    }

    #[test]
    fn request_security_token_round_trips(h in header(), f in vec(token(), 5), ctx in vec((token(), token()), 0..5)) {
        round_trips(h, RequestSecurityToken {
            token_type: f[0].clone(),
            request_type: f[1].clone(),
            binary_security_token: BinarySecurityToken { value_type: f[2].clone(), encoding_type: f[3].clone(), value: f[4].clone() },
            additional_context: ctx.into_iter().map(|(name, value)| ContextItem { name, value }).collect(),
        })?;
    }

    #[test]
    fn rstrc_round_trips(h in header(), f in vec(token(), 6)) {
        round_trips(h, RequestSecurityTokenResponseCollection {
            token_type: f[0].clone(),
            disposition_message: f[1].clone(),
            requested_token: BinarySecurityToken { value_type: f[2].clone(), encoding_type: f[3].clone(), value: f[4].clone() },
            request_id: f[5].clone(),
        })?;
    }

    #[test]
    fn fault_round_trips(
        h in header(),
        code in "[A-Za-z]{0,8}",
        sub in option::of(prop_oneof![
            Just(FaultSubcode::MessageFormat), Just(FaultSubcode::Authentication),
            Just(FaultSubcode::Authorization), Just(FaultSubcode::CertificateRequest),
            Just(FaultSubcode::EnrollmentServer), Just(FaultSubcode::InternalServiceFault),
            Just(FaultSubcode::InvalidSecurity), "X[A-Za-z]{0,6}".prop_map(FaultSubcode::Other),
        ]),
        reason in token(),
        detail in option::of((token(), token(), token())),
    ) {
        round_trips(h, Fault {
            code,
            subcode: sub,
            reason,
            detail: detail.map(|(error_type, message, trace_id)| FaultDetail { error_type, message, trace_id }),
        })?;
    }

    #[test]
    fn provisioning_doc_round_trips(version in text(), chars in vec(characteristic(), 0..4)) {
        let doc = ProvisioningDoc { version, characteristics: chars };
        let xml = doc.to_xml();
        let back = ProvisioningDoc::parse(xml.as_bytes()).map_err(|e| TestCaseError::fail(format!("{e}\n{xml}")))?;
        prop_assert_eq!(back, doc);
    }

    #[test]
    fn enrollment_provisioning_round_trips(p in enrollment()) {
        let xml = p.to_doc().to_xml();
        let doc = ProvisioningDoc::parse(xml.as_bytes()).map_err(|e| TestCaseError::fail(format!("{e}\n{xml}")))?;
        prop_assert_eq!(EnrollmentProvisioning::from_doc(&doc).map_err(|e| TestCaseError::fail(e.to_string()))?, p);
    }

    #[test]
    fn msi_install_job_round_trips(f in vec(token(), 4), urls in vec(token(), 0..3), n in any::<(u32, u32, u32)>()) {
        let job = MsiInstallJob {
            id: f[0].clone(),
            product_version: f[1].clone(),
            content_urls: urls,
            file_hash: f[2].clone(),
            command_line: f[3].clone(),
            timeout_minutes: n.0,
            retry_count: n.1,
            retry_interval_minutes: n.2,
        };
        prop_assert_eq!(MsiInstallJob::parse(&job.to_xml()).map_err(|e| TestCaseError::fail(e.to_string()))?, job);
    }

    #[test]
    fn digest_is_base64_of_sixteen_bytes(name in text(), secret in text(), nonce in vec(any::<u8>(), 0..32)) {
        use base64::Engine;
        let cred = md5_credential(&name, &secret, &nonce);
        prop_assert_eq!(base64::engine::general_purpose::STANDARD.decode(cred).unwrap().len(), 16);
    }
}

fn characteristic() -> impl Strategy<Value = Characteristic> {
    let parm =
        (text(), option::of(text()), option::of(text())).prop_map(|(name, value, datatype)| Parm {
            name,
            value,
            datatype,
        });
    let leaf = (text(), vec(parm.clone(), 0..3)).prop_map(|(type_, parms)| Characteristic {
        type_,
        parms,
        children: vec![],
    });
    leaf.prop_recursive(3, 16, 3, move |inner| {
        (text(), vec(parm.clone(), 0..3), vec(inner, 0..3)).prop_map(|(type_, parms, children)| {
            Characteristic {
                type_,
                parms,
                children,
            }
        })
    })
}

fn enrollment() -> impl Strategy<Value = EnrollmentProvisioning> {
    let cert = (text(), text()).prop_map(|(thumbprint, encoded)| StoredCert {
        thumbprint,
        encoded,
    });
    let auth = |level: &'static str| {
        (text(), text(), text(), text()).prop_map(move |(auth_type, name, secret, data)| AppAuth {
            level: level.into(),
            auth_type,
            name,
            secret,
            data,
        })
    };
    (
        (
            cert.clone(),
            cert,
            prop_oneof![Just(CertStore::User), Just(CertStore::System)],
        ),
        option::of(any::<(bool, u32, u32)>().prop_map(
            |(robo_support, renew_period, retry_interval)| RenewSettings {
                robo_support,
                renew_period,
                retry_interval,
            },
        )),
        ("[A-Za-z0-9 ._-]{0,12}", text(), text(), text()),
        any::<(u32, u32, u32)>(),
        (auth("CLIENT"), auth("APPSRV")),
        text(),
        (any::<[u32; 6]>(), any::<bool>()),
    )
        .prop_map(
            |(
                (root_ca, client_cert, store),
                renew,
                (provider_id, name, addr, criteria),
                backoff,
                (client_auth, server_auth),
                entdmid,
                (poll, on_login),
            )| {
                EnrollmentProvisioning {
                    root_ca,
                    client_cert,
                    client_store: Some(store),
                    renew,
                    provider_id,
                    name,
                    addr,
                    ssl_client_cert_search_criteria: criteria,
                    conn_retry_freq: backoff.0,
                    initial_backoff_time: backoff.1,
                    max_backoff_time: backoff.2,
                    client_auth,
                    server_auth,
                    entdmid,
                    poll: PollSettings {
                        number_of_first_retries: poll[0],
                        interval_for_first_set_of_retries: poll[1],
                        number_of_second_retries: poll[2],
                        interval_for_second_set_of_retries: poll[3],
                        number_of_remaining_scheduled_retries: poll[4],
                        interval_for_remaining_scheduled_retries: poll[5],
                        poll_on_login: on_login,
                    },
                }
            },
        )
}

// ---- no panics ----

/// Feeds one input to every parser in the crate; only a panic fails.
fn every_parser(bytes: &[u8]) {
    let _ = syncml::xml::decode(bytes).map(|t| syncml::xml::parse(&t));
    let _ = SyncMl::parse(bytes);
    let _ = Envelope::<Discover>::parse(bytes);
    let _ = Envelope::<DiscoverResponse>::parse_reply(bytes);
    let _ = Envelope::<GetPolicies>::parse(bytes);
    let _ = Envelope::<GetPoliciesResponse>::parse_reply(bytes);
    if let Ok(env) = Envelope::<RequestSecurityToken>::parse(bytes) {
        let _ = env.body.binary_security_token.decode();
    }
    let _ = Envelope::<RequestSecurityTokenResponseCollection>::parse_reply(bytes);
    let _ = Envelope::<Fault>::parse(bytes);
    if let Ok(doc) = ProvisioningDoc::parse(bytes) {
        let _ = EnrollmentProvisioning::from_doc(&doc);
    }
    let text = String::from_utf8_lossy(bytes);
    let _ = MsiInstallJob::parse(&text);
    let _ = Command::parse(&text);
    let _ = syncml::sim_msi::SimulatedMsi::parse(bytes);
    if let Ok(package) = syncml::intunewin::open(bytes) {
        let _ = syncml::intunewin::decrypt(&package.encrypted, &package.detection.encryption);
        if let Ok(mut check) = syncml::intunewin::ContentCheck::new(&package.detection.encryption) {
            check.update(&package.encrypted);
            let _ = check.finish();
        }
    }
    let _ = syncml::intunewin::extract(bytes);
}

const FIXTURES: &[&str] = &[
    "discover_request.xml",
    "discover_request_prefixes.xml",
    "discover_response.xml",
    "get_policies_request.xml",
    "get_policies_response.xml",
    "rst_request.xml",
    "rstrc_response.xml",
    "fault_authentication.xml",
    "fault_invalid_security.xml",
    "provisioning_doc.xml",
    "syncml_package1.xml",
    "syncml_challenge.xml",
    "syncml_with_cred.xml",
    "syncml_server_commands.xml",
    "syncml_client_results.xml",
    "syncml_install_alert.xml",
    "msi_install_job.xml",
];

fn fixtures() -> Vec<Vec<u8>> {
    FIXTURES
        .iter()
        .map(|name| {
            let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
            std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
        })
        .collect()
}

#[derive(Debug, Clone)]
enum Mutation {
    Flip(usize, u8),
    Delete(usize, usize),
    Insert(usize, Vec<u8>),
    Truncate(usize),
    Duplicate(usize, usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let snippet = prop_oneof![
        vec(any::<u8>(), 1..8),
        Just(b"<".to_vec()),
        Just(b"</SyncBody>".to_vec()),
        Just(b"<Item><Data>".to_vec()),
        Just(b"&amp".to_vec()),
        Just(b"&#xD800;".to_vec()),
        Just(b"<![CDATA[".to_vec()),
        Just(b"\xFF\xFE".to_vec()),
        Just(b"<Atomic><CmdID>1</CmdID>".to_vec()),
    ];
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(p, b)| Mutation::Flip(p, b)),
        (any::<usize>(), 1usize..64).prop_map(|(p, n)| Mutation::Delete(p, n)),
        (any::<usize>(), snippet).prop_map(|(p, s)| Mutation::Insert(p, s)),
        any::<usize>().prop_map(Mutation::Truncate),
        (any::<usize>(), 1usize..200).prop_map(|(p, n)| Mutation::Duplicate(p, n)),
    ]
}

fn apply(bytes: &mut Vec<u8>, m: &Mutation) {
    let len = bytes.len().max(1);
    match m {
        Mutation::Flip(p, b) => {
            if let Some(x) = bytes.get_mut(p % len) {
                *x ^= b | 1;
            }
        }
        Mutation::Delete(p, n) => {
            let start = (p % len).min(bytes.len());
            let end = (start + n).min(bytes.len());
            bytes.drain(start..end);
        }
        Mutation::Insert(p, s) => {
            let at = (p % len).min(bytes.len());
            bytes.splice(at..at, s.iter().copied());
        }
        Mutation::Truncate(p) => bytes.truncate(p % len),
        Mutation::Duplicate(p, n) => {
            let start = (p % len).min(bytes.len());
            let end = (start + n).min(bytes.len());
            let copy = bytes[start..end].to_vec();
            bytes.splice(start..start, copy);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in vec(any::<u8>(), 0..512)) {
        every_parser(&bytes);
    }

    #[test]
    fn xml_like_noise_never_panics(
        s in "(<[A-Za-z:]{1,8}( [a-z:]{1,4}=\"[^\"<]{0,4}\")?/?>|</[A-Za-z:]{1,8}>|[A-Za-z0-9 &;#<>\\]\\[!-]{0,5}){0,40}"
    ) {
        every_parser(s.as_bytes());
    }

    #[test]
    fn mutated_fixtures_never_panic(which in any::<prop::sample::Index>(), mutations in vec(mutation(), 1..6)) {
        let all = fixtures();
        let mut bytes = which.get(&all).clone();
        for m in &mutations {
            apply(&mut bytes, m);
        }
        every_parser(&bytes);
    }

    #[test]
    fn deep_nesting_is_refused_not_overflowed(depth in 100usize..5000, name in "(Atomic|Sequence|characteristic|a)") {
        let open = format!("<{name}>");
        let close = format!("</{name}>");
        let doc = format!(
            "<SyncML><SyncHdr><SessionID>1</SessionID><MsgID>1</MsgID></SyncHdr><SyncBody>{}{}</SyncBody></SyncML>",
            open.repeat(depth),
            close.repeat(depth)
        );
        every_parser(doc.as_bytes());
    }
}

/// A package's encrypted file, a few bytes of it changed or not, and where it is cut.
fn content_in_pieces() -> impl Strategy<Value = (Vec<u8>, Option<(usize, u8)>, Vec<usize>)> {
    (
        vec(any::<u8>(), 0..300),
        option::of((any::<usize>(), 1u8..=255)),
        vec(1usize..70, 1..6),
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    /// The check over pieces (an upload in blocks) gives [`decrypt`]'s verdict, however
    /// the content is cut and whatever was changed in it.
    #[test]
    fn the_content_check_in_pieces_agrees_with_decrypt((plain, flip, cuts) in content_in_pieces()) {
        use syncml::intunewin::{decrypt, encrypt, ContentCheck, Keys};
        let keys = Keys { encryption_key: [7; 32], mac_key: [9; 32], iv: [5; 16] };
        let (mut encrypted, info) = encrypt(&plain, &keys);
        if let Some((at, bits)) = flip {
            let at = at % encrypted.len();
            encrypted[at] ^= bits;
        }
        let mut check = ContentCheck::new(&info).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let mut rest = encrypted.as_slice();
        for cut in cuts.iter().cycle() {
            if rest.is_empty() {
                break;
            }
            let (piece, after) = rest.split_at((*cut).min(rest.len()));
            check.update(piece);
            rest = after;
        }
        prop_assert_eq!(check.len(), encrypted.len() as u64);
        prop_assert_eq!(check.finish(), decrypt(&encrypted, &info).map(|_| ()));
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    /// Sealing in pieces makes the file and EncryptionInfo [`encrypt`] makes at once.
    #[test]
    fn sealing_in_pieces_agrees_with_encrypt(plain in vec(any::<u8>(), 0..300), cuts in vec(1usize..70, 1..6)) {
        use syncml::intunewin::{encrypt, ContentSeal, Keys};
        let keys = Keys { encryption_key: [3; 32], mac_key: [4; 32], iv: [6; 16] };
        let mut seal = ContentSeal::new(&keys);
        let mut body = Vec::new();
        let mut rest = plain.as_slice();
        for cut in cuts.iter().cycle() {
            if rest.is_empty() {
                break;
            }
            let (piece, after) = rest.split_at((*cut).min(rest.len()));
            body.extend(seal.update(piece));
            rest = after;
        }
        let (tail, mut file, info) = seal.finish();
        file.extend(body);
        file.extend(tail);
        prop_assert_eq!((file, info), encrypt(&plain, &keys));
    }
}
