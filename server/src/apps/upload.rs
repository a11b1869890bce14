//! A Win32 app's content, uploaded Graph's way (`contentVersions`): a version, a file
//! declared in it, the encrypted file put to the file's upload URI ([`super::blob`]),
//! `commit` with its `fileEncryptionInfo` (the MAC and digest checked over the stored
//! bytes), then `committedContentVersion` on the app makes it what devices download.
//!
//! The service's asynchronous steps are taken at once and reported at the next read, so
//! clients that poll see Graph's sequence: a new file is `azureStorageUriRequestPending`
//! until it is read back (`azureStorageUriRequestSuccess` with its URI), a renewal is
//! `azureStorageUriRenewalPending` until then too; a commit is checked while the client
//! waits and reads back `commitFileSuccess` or `commitFileFailed`.
//!
//! The one-shot `PUT .../content` of a whole `.intunewin` goes through the same steps.

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{Extensions, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};

use super::content::FileReader;
use crate::api_error::ApiError;
use crate::odata::{Collection, Options};
use crate::state::Shared;
use crate::storage::ContentFileRow;

const APP: &str = "/beta/deviceAppManagement/mobileApps/{id}";

/// The routes under an app (the type-cast segment `microsoft.graph.win32LobApp` before
/// `contentVersions` is dropped by the admin listener).
pub fn routes() -> Router<Shared> {
    let versions = format!("{APP}/contentVersions");
    let files = format!("{versions}/{{version}}/files");
    Router::new()
        .route(&versions, get(list_versions).post(add_version))
        .route(&format!("{versions}/{{version}}"), get(one_version))
        .route(&files, get(list_files).post(add_file))
        .route(&format!("{files}/{{file}}"), get(one_file))
        .route(&format!("{files}/{{file}}/renewUpload"), post(renew))
        .route(&format!("{files}/{{file}}/commit"), post(commit))
}

fn bad(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, message)
}

fn not_found(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, message)
}

fn version_json(id: i64) -> Value {
    json!({ "@odata.type": "#microsoft.graph.mobileAppContent", "id": id.to_string() })
}

/// A content file in Graph's `mobileAppContentFile` shape.
fn file_json(state: &Shared, origin: &str, f: &ContentFileRow) -> Value {
    let pending = f.upload_state == "azureStorageUriRequestPending";
    let uri = (!pending).then(|| super::blob::upload_uri(state, origin, &f.id, &f.upload_expires));
    json!({
        "@odata.type": "#microsoft.graph.mobileAppContentFile",
        "id": f.id,
        "azureStorageUri": uri,
        "isCommitted": f.upload_state == "commitFileSuccess",
        "createdDateTime": f.created_at,
        "name": f.name,
        "size": f.size,
        "sizeEncrypted": f.size_encrypted,
        "sizeInBytes": f.size,
        "sizeEncryptedInBytes": f.size_encrypted,
        "azureStorageUriExpirationDateTime": (!pending).then_some(&f.upload_expires),
        "manifest": null,
        "uploadState": f.upload_state,
        "isFrameworkFile": false,
        "isDependency": f.is_dependency,
    })
}

async fn app_exists(state: &Shared, id: &str) -> Result<(), ApiError> {
    match state.store.app(id).await? {
        Some(_) => Ok(()),
        None => Err(not_found(format!("no mobile app {id}"))),
    }
}

/// The version number in a path, when the app has that version.
async fn version_of(state: &Shared, id: &str, version: &str) -> Result<i64, ApiError> {
    app_exists(state, id).await?;
    let wanted = version.parse::<i64>().ok();
    state
        .store
        .content_versions(id)
        .await?
        .into_iter()
        .map(|(v, _)| v)
        .find(|v| Some(*v) == wanted)
        .ok_or_else(|| not_found(format!("no content version {version} of app {id}")))
}

/// The file in a path, when it belongs to that app's version.
async fn file_of(
    state: &Shared,
    (id, version, file): (&str, &str, &str),
) -> Result<ContentFileRow, ApiError> {
    let version = version_of(state, id, version).await?;
    state
        .store
        .content_file(file)
        .await?
        .filter(|f| f.app_id == id && f.version == version)
        .ok_or_else(|| not_found(format!("no content file {file} in version {version}")))
}

async fn list_versions(
    State(state): State<Shared>,
    Path(id): Path<String>,
    options: Options,
) -> Result<Response, ApiError> {
    app_exists(&state, &id).await?;
    let versions = state.store.content_versions(&id).await?;
    let items = versions.into_iter().map(|(v, _)| version_json(v)).collect();
    let context = format!(
        "deviceAppManagement/mobileApps('{id}')/microsoft.graph.win32LobApp/contentVersions"
    );
    options.page(items, &Collection::plain(&context))
}

async fn add_version(
    State(state): State<Shared>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    app_exists(&state, &id).await?;
    let version = state
        .store
        .add_content_version(&id, &state.now_text())
        .await?;
    Ok((StatusCode::CREATED, Json(version_json(version))).into_response())
}

async fn one_version(
    State(state): State<Shared>,
    Path((id, version)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(version_json(version_of(&state, &id, &version).await?)))
}

async fn list_files(
    State(state): State<Shared>,
    Path((id, version)): Path<(String, String)>,
    headers: HeaderMap,
    extensions: Extensions,
    options: Options,
) -> Result<Response, ApiError> {
    let version = version_of(&state, &id, &version).await?;
    let origin = crate::tls::origin(&headers, &extensions);
    let mut items = Vec::new();
    for f in state.store.content_files(&id, version).await? {
        items.push(file_json(&state, &origin, &settled(&state, f).await?));
    }
    let context = format!("deviceAppManagement/mobileApps('{id}')/microsoft.graph.win32LobApp/contentVersions('{version}')/files");
    options.page(items, &Collection::plain(&context))
}

/// `POST .../files`: a `mobileAppContentFile` with `name`, `size`, `sizeEncrypted`.
async fn add_file(
    State(state): State<Shared>,
    Path((id, version)): Path<(String, String)>,
    headers: HeaderMap,
    extensions: Extensions,
    body: Bytes,
) -> Result<Response, ApiError> {
    let version = version_of(&state, &id, &version).await?;
    let v: Value = serde_json::from_slice(&body).map_err(|e| bad(format!("not JSON: {e}")))?;
    let name = v["name"].as_str().filter(|n| !n.is_empty());
    let Some(name) = name else {
        return Err(bad("name is required"));
    };
    let size = |field: &str| -> Result<i64, ApiError> {
        let n = v[field]
            .as_i64()
            .or_else(|| v[field].as_str().and_then(|s| s.parse().ok()));
        n.filter(|n| *n >= 0)
            .ok_or_else(|| bad(format!("{field} is required (bytes)")))
    };
    let file = ContentFileRow {
        id: state.random_guid().to_lowercase(),
        app_id: id,
        version,
        name: name.to_owned(),
        size: size("size")?,
        size_encrypted: size("sizeEncrypted")?,
        is_dependency: v["isDependency"].as_bool().unwrap_or(false),
        upload_state: "azureStorageUriRequestPending".into(),
        upload_expires: super::blob::expiry(&state),
        block_list: None,
        encryption: None,
        created_at: state.now_text(),
    };
    state.store.add_content_file(&file).await?;
    let origin = crate::tls::origin(&headers, &extensions);
    Ok((StatusCode::CREATED, Json(file_json(&state, &origin, &file))).into_response())
}

/// The file with the service's pending steps taken (see the module).
async fn settled(state: &Shared, mut f: ContentFileRow) -> Result<ContentFileRow, ApiError> {
    let next = match f.upload_state.as_str() {
        "azureStorageUriRequestPending" => "azureStorageUriRequestSuccess",
        "azureStorageUriRenewalPending" => "azureStorageUriRenewalSuccess",
        _ => return Ok(f),
    };
    f.upload_state = next.into();
    state.store.update_content_file(&f).await?;
    Ok(f)
}

async fn one_file(
    State(state): State<Shared>,
    Path((id, version, file)): Path<(String, String, String)>,
    headers: HeaderMap,
    extensions: Extensions,
    options: Options,
) -> Result<Json<Value>, ApiError> {
    let f = file_of(&state, (&id, &version, &file)).await?;
    let f = settled(&state, f).await?;
    let origin = crate::tls::origin(&headers, &extensions);
    let context = format!("deviceAppManagement/mobileApps('{id}')/microsoft.graph.win32LobApp/contentVersions('{version}')/files");
    Ok(Json(
        options.entity(file_json(&state, &origin, &f), &context),
    ))
}

/// `POST .../renewUpload`: the URI gets a new expiry.
async fn renew(
    State(state): State<Shared>,
    Path((id, version, file)): Path<(String, String, String)>,
) -> Result<StatusCode, ApiError> {
    let mut f = file_of(&state, (&id, &version, &file)).await?;
    if f.upload_state.starts_with("commitFile") {
        return Err(bad("the file is committed; its upload cannot be renewed"));
    }
    f.upload_state = "azureStorageUriRenewalPending".into();
    f.upload_expires = super::blob::expiry(&state);
    state.store.update_content_file(&f).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `fileEncryptionInfo` as Graph takes it, as Detection.xml's `EncryptionInfo`.
fn encryption_info(v: &Value) -> Result<syncml::intunewin::EncryptionInfo, ApiError> {
    let field = |name: &str| -> Result<String, ApiError> {
        v[name]
            .as_str()
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .ok_or_else(|| bad(format!("fileEncryptionInfo.{name} is required")))
    };
    Ok(syncml::intunewin::EncryptionInfo {
        encryption_key: field("encryptionKey")?,
        mac_key: field("macKey")?,
        initialization_vector: field("initializationVector")?,
        mac: field("mac")?,
        profile_identifier: field("profileIdentifier")?,
        file_digest: field("fileDigest")?,
        file_digest_algorithm: field("fileDigestAlgorithm")?,
    })
}

fn encryption_json(e: &syncml::intunewin::EncryptionInfo) -> Value {
    json!({
        "encryptionKey": e.encryption_key,
        "macKey": e.mac_key,
        "initializationVector": e.initialization_vector,
        "mac": e.mac,
        "profileIdentifier": e.profile_identifier,
        "fileDigest": e.file_digest,
        "fileDigestAlgorithm": e.file_digest_algorithm,
    })
}

/// `POST .../commit` with `fileEncryptionInfo` (204, as Graph answers): the uploaded
/// bytes are checked against it; the file reads back `commitFileSuccess`, or `commitFileFailed` when nothing was
/// uploaded, the size is not `sizeEncrypted`, or the MAC or digest does not match.
async fn commit(
    State(state): State<Shared>,
    Path((id, version, file)): Path<(String, String, String)>,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    let f = file_of(&state, (&id, &version, &file)).await?;
    if f.upload_state == "commitFileSuccess" {
        return Err(bad("the file is already committed"));
    }
    let v: Value = serde_json::from_slice(&body).map_err(|e| bad(format!("not JSON: {e}")))?;
    let info = encryption_info(&v["fileEncryptionInfo"])?;
    let verdict = verify(&state, &f, &info).await?;
    record_commit(&state, f, &info, verdict).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Why a commit failed, or `None` when the file is good.
async fn verify(
    state: &Shared,
    f: &ContentFileRow,
    info: &syncml::intunewin::EncryptionInfo,
) -> Result<Option<String>, ApiError> {
    if f.block_list.is_none() {
        return Ok(Some("nothing was uploaded (no block list)".into()));
    }
    let Some(reader) = FileReader::open(state, f).await? else {
        return Ok(Some("a listed block is missing".into()));
    };
    if i64::try_from(reader.len).ok() != Some(f.size_encrypted) {
        return Ok(Some(format!(
            "{} bytes were uploaded; sizeEncrypted is {}",
            reader.len, f.size_encrypted
        )));
    }
    Ok(reader.check(info).await?.err().map(|e| e.to_string()))
}

async fn record_commit(
    state: &Shared,
    mut f: ContentFileRow,
    info: &syncml::intunewin::EncryptionInfo,
    verdict: Option<String>,
) -> Result<(), ApiError> {
    f.upload_state = if verdict.is_none() {
        "commitFileSuccess"
    } else {
        "commitFileFailed"
    }
    .into();
    f.encryption = Some(encryption_json(info).to_string());
    state.store.update_content_file(&f).await?;
    let event = crate::journal::Event::ContentCommitted {
        app: f.app_id.clone(),
        version: f.version,
        file: f.id.clone(),
        bytes: f.size_encrypted,
        failed: verdict,
    };
    state.journal.record("", &event).await?;
    Ok(())
}

/// Makes content version `version` what devices download for app `id` (`PATCH` with
/// `committedContentVersion`): its committed package file, with a Detection.xml made
/// of the file's encryption info and the app's `setupFilePath` and `msiInformation`.
pub async fn activate(
    state: &Shared,
    id: &str,
    version: &str,
    app: &Value,
) -> Result<(), ApiError> {
    // A version the body names that is not there is the body's fault: 400, not 404.
    let number = version_of(state, id, version)
        .await
        .map_err(|e| bad(e.message().to_owned()))?;
    let files = state.store.content_files(id, number).await?;
    let Some(file) = files
        .into_iter()
        .find(|f| !f.is_dependency && f.upload_state == "commitFileSuccess")
    else {
        return Err(bad(format!(
            "content version {version} has no committed file"
        )));
    };
    let encryption: Value = file
        .encryption
        .as_deref()
        .and_then(|e| serde_json::from_str(e).ok())
        .unwrap_or(Value::Null);
    let setup = app["setupFilePath"].as_str().unwrap_or_default().to_owned();
    let msi = &app["msiInformation"];
    let detection = syncml::intunewin::Detection {
        tool_version: "1.8.6.0".into(),
        name: setup
            .rsplit(['/', '\\'])
            .next()
            .unwrap_or(&setup)
            .to_owned(),
        unencrypted_content_size: u64::try_from(file.size).unwrap_or(0),
        file_name: file.name.clone(),
        setup_file: setup.clone(),
        encryption: encryption_info(&encryption)?,
        msi: msi.is_object().then(|| syncml::intunewin::MsiInfo {
            product_code: msi["productCode"].as_str().unwrap_or_default().to_owned(),
            product_version: msi["productVersion"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            upgrade_code: msi["upgradeCode"].as_str().unwrap_or_default().to_owned(),
            execution_context: match msi["packageType"].as_str() {
                Some("perUser") => "User",
                Some("dualPurpose") => "Any",
                _ => "System",
            }
            .into(),
            publisher: msi["publisher"].as_str().unwrap_or_default().to_owned(),
        }),
    };
    state
        .store
        .set_app_package(id, &file.id, &detection.to_xml(), &state.now_text())
        .await?;
    Ok(())
}

/// The one-shot upload: a whole `.intunewin` as the body, streamed to a file, opened,
/// and taken through a new content version as Graph's flow would (its own
/// Detection.xml kept). Answers what was read of it.
pub async fn import(state: &Shared, id: &str, body: Body) -> Result<Value, ApiError> {
    app_exists(state, id).await?;
    let spool = spool(state, body).await?;
    let (detection, entries) = package_reader(spool)?;
    let version = state
        .store
        .add_content_version(id, &state.now_text())
        .await?;
    let mut file = ContentFileRow {
        id: state.random_guid().to_lowercase(),
        app_id: id.to_owned(),
        version,
        name: detection.file_name.clone(),
        size: i64::try_from(detection.unencrypted_content_size).unwrap_or(i64::MAX),
        size_encrypted: 0,
        is_dependency: false,
        upload_state: "azureStorageUriRequestSuccess".into(),
        upload_expires: super::blob::expiry(state),
        block_list: Some(json!(["package"]).to_string()),
        encryption: None,
        created_at: state.now_text(),
    };
    let mut writer = super::content::ChunkWriter::new(state, &file.id, "package");
    let mut entries = entries;
    while let Some(piece) = entries.recv().await {
        let piece = piece.map_err(|e| bad(format!("not a .intunewin: {e}")))?;
        writer.write(&piece).await?;
    }
    let len = writer.finish().await.map_err(|e| match e {
        super::content::PutError::Store(e) => ApiError::from(e),
        other => bad(other.to_string()),
    })?;
    file.size_encrypted = i64::try_from(len).unwrap_or(i64::MAX);
    state.store.add_content_file(&file).await?;
    let verdict = verify(state, &file, &detection.encryption).await?;
    record_commit(state, file.clone(), &detection.encryption, verdict.clone()).await?;
    if let Some(why) = verdict {
        return Err(bad(format!("not a .intunewin: {why}")));
    }
    state
        .store
        .set_app_package(id, &file.id, &detection.to_xml(), &state.now_text())
        .await?;
    Ok(json!({
        "size": len,
        "contentVersion": version.to_string(),
        "setupFile": detection.setup_file,
        "unencryptedContentSize": detection.unencrypted_content_size,
    }))
}

/// Streams a body into a temporary file under the server's folder.
async fn spool(state: &Shared, body: Body) -> Result<tempfile::NamedTempFile, ApiError> {
    use futures_util::StreamExt;
    use tokio::io::AsyncWriteExt;
    let failed = |e: std::io::Error| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("spooling the upload: {e}"),
        )
    };
    let dir = state.config.data_dir.join("uploads");
    std::fs::create_dir_all(&dir).map_err(failed)?;
    let spool = tempfile::NamedTempFile::new_in(&dir).map_err(failed)?;
    let mut out = tokio::fs::File::from_std(spool.reopen().map_err(failed)?);
    let mut stream = body.into_data_stream();
    let mut len = 0u64;
    while let Some(piece) = stream.next().await {
        let piece = piece.map_err(|e| bad(format!("the body broke off: {e}")))?;
        len += piece.len() as u64;
        if len > super::blob::MAX_BLOB {
            return Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "the package is too large",
            ));
        }
        out.write_all(&piece).await.map_err(failed)?;
    }
    out.flush().await.map_err(failed)?;
    Ok(spool)
}

/// A spooled package's Detection.xml and its encrypted content, a chunk at a time.
type Opened = (
    syncml::intunewin::Detection,
    tokio::sync::mpsc::Receiver<std::io::Result<Vec<u8>>>,
);

/// Opens a spooled `.intunewin`: its Detection.xml, and its encrypted content read on a
/// blocking thread into a channel, a chunk at a time.
fn package_reader(spool: tempfile::NamedTempFile) -> Result<Opened, ApiError> {
    let not_package = |e: String| bad(format!("not a .intunewin: {e}"));
    let file = spool.reopen().map_err(|e| not_package(e.to_string()))?;
    let mut archive = zip::ZipArchive::new(file).map_err(|e| not_package(e.to_string()))?;
    let detection =
        syncml::intunewin::read_detection(&mut archive).map_err(|e| not_package(e.to_string()))?;
    let (tx, rx) = tokio::sync::mpsc::channel(2);
    tokio::task::spawn_blocking(move || {
        use std::io::Read;
        let _spool = spool;
        let mut entry = match archive.by_name(syncml::intunewin::CONTENT_PATH) {
            Ok(entry) => entry,
            Err(e) => {
                let _ = tx.blocking_send(Err(std::io::Error::other(e.to_string())));
                return;
            }
        };
        loop {
            let mut chunk = vec![0u8; crate::storage::CHUNK];
            let mut filled = 0;
            while filled < chunk.len() {
                match entry.read(&mut chunk[filled..]) {
                    Ok(0) => break,
                    Ok(n) => filled += n,
                    Err(e) => {
                        let _ = tx.blocking_send(Err(e));
                        return;
                    }
                }
            }
            if filled == 0 {
                return;
            }
            chunk.truncate(filled);
            if tx.blocking_send(Ok(chunk)).is_err() {
                return;
            }
        }
    });
    Ok((detection, rx))
}
