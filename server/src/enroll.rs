//! MS-MDE2 enrollment: discovery (GET and POST), MS-XCEP GetPolicies and MS-WSTEP
//! RequestSecurityToken. OnPremise authentication: any user name with the enrollment
//! secret. Every failure is a SOAP fault with the spec's subcode.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Router};
use base64::Engine;
use chrono::Duration;
use syncml::mde2::{
    action, value, Body, Discover, DiscoverResponse, Envelope, Fault, FaultDetail, FaultSubcode,
    GetPolicies, GetPoliciesResponse, Header, RequestSecurityToken,
    RequestSecurityTokenResponseCollection, Security, Timestamp,
};
use syncml::provisioning::{
    AppAuth, CertStore, EnrollmentProvisioning, PollSettings, RenewSettings, StoredCert,
};

use crate::clock;
use crate::journal::Event;
use crate::pki;
use crate::state::Shared;
use crate::storage::{CertificateRow, Device};
use crate::tls::PeerCertificate;

/// Discovery path.
pub const DISCOVERY_PATH: &str = "/EnrollmentServer/Discovery.svc";
/// MS-XCEP policy path.
pub const POLICY_PATH: &str = "/EnrollmentServer/Policy.svc";
/// MS-WSTEP enrollment path.
pub const ENROLLMENT_PATH: &str = "/EnrollmentServer/Enrollment.svc";
/// The management (OMA-DM) path, the provisioning document's ADDR.
pub const MANAGEMENT_PATH: &str = "/ManagementServer/MDM.svc";
/// The provider id in the provisioning document.
pub const PROVIDER_ID: &str = "Tenantless";

/// Device certificates' validity.
const CERT_VALIDITY_DAYS: i64 = 365;

/// The enrollment routes.
pub fn routes() -> Router<Shared> {
    Router::new()
        .route(DISCOVERY_PATH, get(discovery_probe).post(discover))
        .route(POLICY_PATH, axum::routing::post(policies))
        .route(ENROLLMENT_PATH, axum::routing::post(enroll))
}

/// A SOAP fault with the MS-MDE2 subcode, answered with HTTP 500 as SOAP 1.2 binds
/// `Receiver` faults.
struct SoapFault {
    action: &'static str,
    relates_to: Option<String>,
    subcode: FaultSubcode,
    reason: String,
}

impl SoapFault {
    fn new(
        action: &'static str,
        relates_to: Option<String>,
        subcode: FaultSubcode,
        reason: impl Into<String>,
    ) -> Self {
        SoapFault {
            action,
            relates_to,
            subcode,
            reason: reason.into(),
        }
    }
}

impl IntoResponse for SoapFault {
    fn into_response(self) -> Response {
        let error_type = match self.subcode {
            FaultSubcode::Authentication => "AuthenticationFailure",
            FaultSubcode::Authorization => "AuthorizationFailure",
            FaultSubcode::CertificateRequest => "CertificateRequestFailure",
            FaultSubcode::MessageFormat => "MessageFormatError",
            _ => "EnrollmentServerError",
        };
        let fault = Fault {
            detail: Some(FaultDetail {
                error_type: error_type.into(),
                message: self.reason.clone(),
                trace_id: String::new(),
            }),
            ..Fault::receiver(self.subcode, self.reason)
        };
        let header = Header {
            action: self.action.into(),
            relates_to: self.relates_to,
            ..Header::default()
        };
        soap(
            StatusCode::INTERNAL_SERVER_ERROR,
            Envelope::new(header, fault).to_xml(),
        )
    }
}

/// The fault for an enrollment whose records could not be committed: the client tries
/// again.
pub(crate) fn not_committed_fault() -> Response {
    SoapFault::new(
        "http://schemas.microsoft.com/windows/pki/2009/01/enrollment/RSTRC/wstep",
        None,
        FaultSubcode::InternalServiceFault,
        "the enrollment could not be recorded; try again",
    )
    .into_response()
}

fn soap(status: StatusCode, xml: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/soap+xml; charset=utf-8")],
        xml,
    )
        .into_response()
}

fn reply<B: Body>(request: &Header, action: &str, body: B) -> Response {
    let header = Header {
        action: action.into(),
        relates_to: request.message_id.clone(),
        ..Header::default()
    };
    soap(StatusCode::OK, Envelope::new(header, body).to_xml())
}

/// Reads the request, or answers with a MessageFormat fault.
async fn read<B: Body>(
    state: &Shared,
    bytes: &[u8],
    fault_action: &'static str,
) -> Result<Envelope<B>, SoapFault> {
    match Envelope::<B>::parse(bytes) {
        Ok(env) => Ok(env),
        Err(e) => {
            refuse(state, fault_action, "MessageFormat", &e.to_string()).await;
            Err(SoapFault::new(
                fault_action,
                None,
                FaultSubcode::MessageFormat,
                format!("the request could not be read: {e}"),
            ))
        }
    }
}

async fn refuse(state: &Shared, endpoint: &str, code: &str, reason: &str) {
    let event = Event::refused(endpoint, code, reason);
    if let Err(e) = state.journal.record("", &event).await {
        tracing::error!("journal: {e}");
    }
}

/// The device id an enrollment is for, validated and upper-cased once, here: the
/// renewing device's, else the request's `DeviceID`, else the CSR's device-id
/// extension, else a new GUID.
fn requested_device_id(
    state: &Shared,
    renewing: Option<String>,
    rst: &RequestSecurityToken,
    csr: &pki::VerifiedCsr,
) -> Result<String, String> {
    if let Some(id) = renewing {
        return Ok(id);
    }
    let asked = rst
        .context("DeviceID")
        .filter(|id| !id.trim().is_empty())
        .map(str::to_owned)
        .or_else(|| csr.device_id.clone());
    match asked {
        Some(id) => normalize_device_id(&id).ok_or_else(|| {
            let shown: String = id.chars().take(80).collect();
            format!("device id {shown:?} is not 1 to {MAX_DEVICE_ID} letters, digits, '-', '_', '.', '{{' or '}}'")
        }),
        None => Ok(state.random_guid()),
    }
}

/// The longest device id accepted (a GUID in braces is 38).
pub const MAX_DEVICE_ID: usize = 64;

/// A device id as the server keeps it: trimmed and upper-case; `None` when empty, longer
/// than [`MAX_DEVICE_ID`] or holding other characters than letters, digits and `-_.{}`.
pub fn normalize_device_id(raw: &str) -> Option<String> {
    let id = raw.trim().to_uppercase();
    let allowed = |c: char| c.is_ascii_alphanumeric() || "-_.{}".contains(c);
    (!id.is_empty() && id.len() <= MAX_DEVICE_ID && id.chars().all(allowed)).then_some(id)
}

/// True when the enrollment request came over a connection that presented a current
/// certificate of `device_id`: the device itself enrolls again.
async fn holds_certificate_of(state: &Shared, peer: &PeerCertificate, device_id: &str) -> bool {
    let Some(cert) = &peer.0 else {
        return false;
    };
    matches!(
        state.store.device_for_thumbprint(&pki::thumbprint(cert)).await,
        Ok(Some(holder)) if holder == device_id
    )
}

/// Checks the OnPremise UsernameToken against the enrollment secret.
async fn authenticate(
    state: &Shared,
    header: &Header,
    fault_action: &'static str,
) -> Result<String, SoapFault> {
    let relates = header.message_id.clone();
    let Some(token) = header
        .security
        .as_ref()
        .and_then(|s| s.username_token.as_ref())
    else {
        refuse(state, fault_action, "InvalidSecurity", "no UsernameToken").await;
        return Err(SoapFault::new(
            fault_action,
            relates,
            FaultSubcode::InvalidSecurity,
            "The request has no wsse:UsernameToken.",
        ));
    };
    if !crate::secret::matches(&token.password, &state.config.enroll_secret) {
        refuse(
            state,
            fault_action,
            "Authentication",
            &format!("wrong secret for {}", token.username),
        )
        .await;
        return Err(SoapFault::new(
            fault_action,
            relates,
            FaultSubcode::Authentication,
            "The user name or enrollment secret is not valid.",
        ));
    }
    Ok(token.username.clone())
}

async fn discovery_probe() -> impl IntoResponse {
    StatusCode::OK
}

async fn discover(State(state): State<Shared>, body: Bytes) -> Response {
    let env = match read::<Discover>(&state, &body, action::DISCOVER_RESPONSE).await {
        Ok(env) => env,
        Err(fault) => return fault.into_response(),
    };
    let base = &state.base_url;
    let response = DiscoverResponse {
        auth_policy: "OnPremise".into(),
        enrollment_version: "4.0".into(),
        enrollment_policy_service_url: format!("{base}{POLICY_PATH}"),
        enrollment_service_url: format!("{base}{ENROLLMENT_PATH}"),
        authentication_service_url: None,
    };
    reply(&env.header, action::DISCOVER_RESPONSE, response)
}

async fn policies(State(state): State<Shared>, body: Bytes) -> Response {
    let result = async {
        let env = read::<GetPolicies>(&state, &body, action::GET_POLICIES_RESPONSE).await?;
        authenticate(&state, &env.header, action::GET_POLICIES_RESPONSE).await?;
        Ok::<_, SoapFault>(env)
    }
    .await;
    match result {
        Ok(env) => reply(
            &env.header,
            action::GET_POLICIES_RESPONSE,
            GetPoliciesResponse::windows(CERT_VALIDITY_DAYS as u64 * 86_400, 60 * 86_400),
        ),
        Err(fault) => fault.into_response(),
    }
}

async fn enroll(
    State(state): State<Shared>,
    peer: Option<Extension<PeerCertificate>>,
    body: Bytes,
) -> Response {
    let peer = peer.map(|Extension(p)| p).unwrap_or_default();
    match enroll_inner(&state, &peer, &body).await {
        Ok(response) => response,
        Err(fault) => fault.into_response(),
    }
}

/// One enrollment request, step by step: who asks, what they ask for, the certificate,
/// the device's records, the IME if something already targets the device, the reply.
/// What an enrollment queues for the device's first session: the IME, when something
/// that needs it targets the device already (most devices are targeted before they
/// enroll: Autopilot, group members), and the Enrollment Status Page of a first boot (a
/// certificate renewal has none).
async fn first_session(
    state: &Shared,
    device: &Device,
    request_type: &str,
) -> Result<(), crate::storage::StoreError> {
    if crate::ime::needed_by(state, device).await? {
        crate::ime::require(state, &device.id, crate::ime::Why::Enrolled).await?;
    }
    if request_type != "Renew" {
        crate::scripts::esp::on_enrolled(state, device).await?;
    }
    Ok(())
}

async fn enroll_inner(
    state: &Shared,
    peer: &PeerCertificate,
    body: &[u8],
) -> Result<Response, SoapFault> {
    let fault_action = action::RSTRC;
    let env = read::<RequestSecurityToken>(state, body, fault_action).await?;
    let rst = &env.body;
    let refuse_with = Refusal {
        state,
        relates: env.header.message_id.clone(),
    };
    // A renewal is authenticated by the device's current certificate (no UsernameToken);
    // anything else by the enrollment secret.
    let renewing_device = match (&peer.0, rst.request_type.as_str()) {
        (Some(cert), value::REQUEST_RENEW) => state
            .store
            .device_for_thumbprint(&pki::thumbprint(cert))
            .await
            .ok()
            .flatten(),
        _ => None,
    };
    let user = match &renewing_device {
        Some(device) => state
            .store
            .device(device)
            .await
            .ok()
            .flatten()
            .map(|d| d.user_principal_name)
            .unwrap_or_default(),
        None => authenticate(state, &env.header, fault_action).await?,
    };
    let request_type = match rst.request_type.as_str() {
        value::REQUEST_ISSUE => "Issue",
        value::REQUEST_RENEW => "Renew",
        value::REQUEST_RECOVERY => "Recovery",
        other => {
            return Err(refuse_with
                .fault(
                    FaultSubcode::MessageFormat,
                    &format!("RequestType {other}"),
                    format!("unknown RequestType {other:?}"),
                )
                .await)
        }
    };
    let csr = match certificate_request(rst) {
        Ok(csr) => csr,
        Err((logged, told)) => {
            return Err(refuse_with
                .fault(FaultSubcode::CertificateRequest, &logged, told)
                .await)
        }
    };
    let device_id = match requested_device_id(state, renewing_device.clone(), rst, &csr) {
        Ok(id) => id,
        Err(reason) => {
            return Err(refuse_with
                .fault(FaultSubcode::MessageFormat, &reason, reason.clone())
                .await)
        }
    };
    let previous = state.store.device(&device_id).await.ok().flatten();
    if previous.is_some()
        && renewing_device.is_none()
        && !holds_certificate_of(state, peer, &device_id).await
    {
        let reason = format!(
            "{device_id} is already enrolled: renew with its certificate, or delete the device first"
        );
        return Err(refuse_with
            .fault(FaultSubcode::Authorization, &reason, reason.clone())
            .await);
    }
    let now = state.now();
    let issued = state
        .ca
        .sign_device(
            &csr,
            &device_id,
            state.random_bytes::<16>(),
            now,
            Duration::days(CERT_VALIDITY_DAYS),
        )
        .map_err(|e| refuse_with.internal(FaultSubcode::EnrollmentServer, e.to_string()))?;
    let device = device_record(state, rst, &device_id, user, previous.as_ref(), now);
    let internal = |e: crate::storage::StoreError| {
        refuse_with.internal(FaultSubcode::InternalServiceFault, format!("storage: {e}"))
    };
    keep_records(
        state,
        &device,
        &issued,
        previous.is_some() && request_type != "Renew",
    )
    .await
    .map_err(internal)?;
    let doc = provisioning(state, &device, &issued).to_doc().to_xml();
    let event = Event::Enrolled {
        request_type: request_type.into(),
        user: device.user_principal_name.clone(),
        enrollment_type: device.enrollment_type.clone(),
        thumbprint: issued.thumbprint,
    };
    if let Err(e) = state.journal.record(&device_id, &event).await {
        tracing::error!("journal: {e}");
    }
    first_session(state, &device, request_type)
        .await
        .map_err(internal)?;
    let header = Header {
        action: action::RSTRC.into(),
        relates_to: env.header.message_id.clone(),
        security: Some(Security {
            timestamp: Some(Timestamp {
                created: clock::format(now),
                expires: clock::format(now + Duration::minutes(5)),
            }),
            ..Security::default()
        }),
        ..Header::default()
    };
    let body = RequestSecurityTokenResponseCollection::provisioning(&doc);
    Ok(soap(StatusCode::OK, Envelope::new(header, body).to_xml()))
}

/// Refusing an enrollment request: the journal's `refused` event and the fault.
struct Refusal<'a> {
    state: &'a Shared,
    relates: Option<String>,
}

impl Refusal<'_> {
    /// Journals `logged` and answers the fault with `told`.
    async fn fault(&self, subcode: FaultSubcode, logged: &str, told: String) -> SoapFault {
        let code = subcode.qualified();
        let code = code.split_once(':').map_or(code.as_str(), |(_, c)| c);
        refuse(self.state, action::RSTRC, code, logged).await;
        self.internal(subcode, told)
    }

    /// The fault alone (a server-side failure, logged by whoever met it).
    fn internal(&self, subcode: FaultSubcode, reason: String) -> SoapFault {
        SoapFault::new(action::RSTRC, self.relates.clone(), subcode, reason)
    }
}

/// The request's PKCS#10 certificate request, verified; or what to journal and what to
/// tell the client.
fn certificate_request(rst: &RequestSecurityToken) -> Result<pki::VerifiedCsr, (String, String)> {
    let token = &rst.binary_security_token;
    if !token.value_type.ends_with("#PKCS10") {
        let vt = &token.value_type;
        return Err((
            format!("ValueType {vt}"),
            format!("BinarySecurityToken ValueType {vt:?} is not a PKCS#10 request"),
        ));
    }
    let der = token
        .decode()
        .map_err(|e| (e.to_string(), format!("the request is not base64: {e}")))?;
    pki::verify_csr(&der).map_err(|e| (e.to_string(), e.to_string()))
}

/// The device's record after this enrollment: new credentials, what the request says
/// about the device, and the IME's state carried over from an earlier enrollment.
fn device_record(
    state: &Shared,
    rst: &RequestSecurityToken,
    device_id: &str,
    user: String,
    previous: Option<&Device>,
    now: chrono::DateTime<chrono::Utc>,
) -> Device {
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
    Device {
        id: device_id.to_owned(),
        device_name: rst.context("DeviceName").unwrap_or_default().to_owned(),
        user_principal_name: user,
        enrollment_type: rst.context("EnrollmentType").unwrap_or("Full").to_owned(),
        hw_dev_id: rst.context("HWDevID").unwrap_or_default().to_owned(),
        os_version: rst.context("OSVersion").unwrap_or_default().to_owned(),
        os_edition: rst.context("OSEdition").unwrap_or_default().to_owned(),
        enrolled_at: clock::format(now),
        client_name: device_id.to_owned(),
        client_secret: state.random_secret(),
        client_nonce: b64(&state.random_bytes::<16>()),
        server_name: PROVIDER_ID.into(),
        server_secret: state.random_secret(),
        server_nonce: b64(&state.random_bytes::<16>()),
        ime_required: previous.is_some_and(|d| d.ime_required),
        ime_version: previous.map(|d| d.ime_version.clone()).unwrap_or_default(),
        ime_state: previous
            .map(|d| d.ime_state.clone())
            .unwrap_or_else(|| "none".into()),
        ..Device::default()
    }
}

/// Stores the device and its new certificate. Enrolling again (`replaces`) revokes the
/// device's other certificates; a renewal keeps the current one working until the
/// device switches.
async fn keep_records(
    state: &Shared,
    device: &Device,
    issued: &pki::IssuedCert,
    replaces: bool,
) -> Result<(), crate::storage::StoreError> {
    let now = state.now();
    state.store.upsert_device(device).await?;
    state
        .store
        .insert_certificate(&CertificateRow {
            serial: issued.serial.clone(),
            device_id: device.id.clone(),
            thumbprint: issued.thumbprint.clone(),
            der: issued.der.clone(),
            issued_at: clock::format(now),
            not_after: clock::format(issued.not_after),
        })
        .await?;
    if replaces {
        state
            .store
            .revoke_certificates(&device.id, &issued.thumbprint, &clock::format(now))
            .await?;
        state.forget_device(&device.id);
    }
    Ok(())
}

/// The `wap-provisioningdoc` for the device: its certificate, the CA, the management
/// address, the digest credentials and Intune's poll cadence.
fn provisioning(
    state: &Shared,
    device: &Device,
    issued: &pki::IssuedCert,
) -> EnrollmentProvisioning {
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
    let device_id = &device.id;
    let store = if device.enrollment_type.eq_ignore_ascii_case("Device") {
        CertStore::System
    } else {
        CertStore::User
    };
    let store_name = if store == CertStore::System {
        "System"
    } else {
        "User"
    };
    EnrollmentProvisioning {
        root_ca: StoredCert {
            thumbprint: state.ca.thumbprint(),
            encoded: b64(state.ca.cert_der()),
        },
        client_cert: StoredCert {
            thumbprint: issued.thumbprint.clone(),
            encoded: b64(&issued.der),
        },
        client_store: Some(store),
        renew: Some(RenewSettings {
            robo_support: true,
            renew_period: 42,
            retry_interval: 7,
        }),
        provider_id: PROVIDER_ID.into(),
        name: PROVIDER_ID.into(),
        addr: format!("{}{MANAGEMENT_PATH}", state.base_url),
        ssl_client_cert_search_criteria: format!(
            "Subject=CN%3d{device_id}&Stores=MY%5C{store_name}"
        ),
        conn_retry_freq: 6,
        initial_backoff_time: 30_000,
        max_backoff_time: 120_000,
        client_auth: AppAuth {
            level: "CLIENT".into(),
            auth_type: "DIGEST".into(),
            name: device.client_name.clone(),
            secret: device.client_secret.clone(),
            data: device.client_nonce.clone(),
        },
        server_auth: AppAuth {
            level: "APPSRV".into(),
            auth_type: "DIGEST".into(),
            name: device.server_name.clone(),
            secret: device.server_secret.clone(),
            data: device.server_nonce.clone(),
        },
        entdmid: device_id.clone(),
        // Intune's cadence: every 3 minutes for 15 minutes, every 15 minutes for two
        // hours, then every 8 hours.
        poll: PollSettings {
            number_of_first_retries: 5,
            interval_for_first_set_of_retries: 3,
            number_of_second_retries: 8,
            interval_for_second_set_of_retries: 15,
            number_of_remaining_scheduled_retries: 0,
            interval_for_remaining_scheduled_retries: 480,
            poll_on_login: true,
        },
    }
}
