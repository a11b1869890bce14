//! The upload URI a content file hands out (`azureStorageUri`): Tenantless's stand-in
//! for an Azure Storage block blob behind a shared access signature. Clients put the
//! encrypted file to it as Azure's Put Block and Put Block List (or one Put Blob), with
//! no bearer token: the signature in the URI is the authority, and it expires
//! ([`SAS_LIFETIME`], renewed by `renewUpload`). Failures answer in Azure Storage's
//! words (`<Error><Code>…</Code>`, `x-ms-error-code`), since that is what upload code
//! reads here.

use axum::body::{to_bytes, Body};
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::put;
use axum::Router;
use base64::Engine;
use chrono::{DateTime, Duration, Utc};

use super::content::{put_block, PutError};
use crate::state::Shared;
use crate::storage::ContentFileRow;

/// How long an upload URI is good for.
pub const SAS_LIFETIME: Duration = Duration::hours(1);
/// The largest blob (Intune takes Win32 apps up to 30 GB).
pub const MAX_BLOB: u64 = 30 << 30;
/// The largest block list document.
const MAX_BLOCK_LIST: usize = 4 << 20;
/// The most blocks a blob has (Azure's limit).
const MAX_BLOCKS: usize = 50_000;
/// The block id a one-shot Put Blob is kept under.
const WHOLE_BLOB: &str = "put-blob";
/// The storage service version the URI names and answers carry.
const STORAGE_VERSION: &str = "2019-02-02";
/// The URI's path under the admin listener.
const PREFIX: &str = "/tenantless/blobs";

/// The blob routes (no bearer token: the URI is signed).
pub fn routes() -> Router<Shared> {
    Router::new().route(
        &format!("{PREFIX}/{{blob}}"),
        put(put_blob).layer(axum::extract::DefaultBodyLimit::disable()),
    )
}

/// A content file's upload URI on the admin listener at `base` (`scheme://host`),
/// valid until `expires`.
pub fn upload_uri(state: &Shared, base: &str, file_id: &str, expires: &str) -> String {
    let query: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("sv", STORAGE_VERSION)
        .append_pair("sr", "b")
        .append_pair("sp", "rcw")
        .append_pair("se", expires)
        .append_pair("sig", &signature(state, file_id, expires))
        .finish();
    format!("{base}{PREFIX}/{file_id}.intunewin.bin?{query}")
}

/// When an upload URI made now expires.
pub fn expiry(state: &Shared) -> String {
    crate::clock::format(state.now() + SAS_LIFETIME)
}

fn signature(state: &Shared, file_id: &str, expires: &str) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, state.config.admin_token.as_bytes());
    let tag = ring::hmac::sign(&key, format!("blob\n{file_id}\n{expires}").as_bytes());
    base64::engine::general_purpose::STANDARD.encode(tag.as_ref())
}

/// A failure in Azure Storage's words: its status, error code and message.
#[derive(Debug)]
pub struct StorageError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

fn storage_error(status: StatusCode, code: &'static str, message: &str) -> StorageError {
    StorageError {
        status,
        code,
        message: message.to_owned(),
    }
}

impl IntoResponse for StorageError {
    fn into_response(self) -> Response {
        let request_id = uuid::Uuid::new_v4();
        let body = format!(
            "\u{feff}<?xml version=\"1.0\" encoding=\"utf-8\"?><Error><Code>{}</Code><Message>{}\nRequestId:{request_id}</Message></Error>",
            self.code,
            syncml::xml::escape_text(&self.message)
        );
        (
            self.status,
            axum::Extension(crate::api_error::ForeignErrorBody),
            [
                (header::CONTENT_TYPE, "application/xml"),
                (
                    header::HeaderName::from_static("x-ms-error-code"),
                    self.code,
                ),
                (
                    header::HeaderName::from_static("x-ms-version"),
                    STORAGE_VERSION,
                ),
            ],
            body,
        )
            .into_response()
    }
}

fn created() -> Response {
    (
        StatusCode::CREATED,
        [
            (
                header::HeaderName::from_static("x-ms-version"),
                STORAGE_VERSION,
            ),
            (
                header::HeaderName::from_static("x-ms-request-server-encrypted"),
                "true",
            ),
        ],
    )
        .into_response()
}

/// What a request's query says.
struct Query {
    comp: Option<String>,
    block_id: Option<String>,
    expires: Option<String>,
    signature: Option<String>,
}

impl Query {
    fn parse(raw: Option<&str>) -> Query {
        let mut q = Query {
            comp: None,
            block_id: None,
            expires: None,
            signature: None,
        };
        for (key, value) in form_urlencoded::parse(raw.unwrap_or_default().as_bytes()) {
            let value = Some(value.into_owned());
            match key.as_ref() {
                "comp" => q.comp = value,
                "blockid" => q.block_id = value,
                "se" => q.expires = value,
                "sig" => q.signature = value,
                _ => {}
            }
        }
        q
    }
}

/// The content file a signed, unexpired URI names, still open to uploads.
async fn authorised(state: &Shared, blob: &str, q: &Query) -> Result<ContentFileRow, StorageError> {
    let denied = |why: &str| storage_error(StatusCode::FORBIDDEN, "AuthenticationFailed", why);
    let file_id = blob.strip_suffix(".intunewin.bin").unwrap_or(blob);
    let (Some(expires), Some(given)) = (&q.expires, &q.signature) else {
        return Err(denied(
            "Server failed to authenticate the request: the signature or its expiry is missing.",
        ));
    };
    if !crate::secret::matches(given, &signature(state, file_id, expires)) {
        return Err(denied("Signature did not match."));
    }
    let until: Option<DateTime<Utc>> = crate::clock::parse(expires);
    if until.is_none_or(|t| t <= state.now()) {
        return Err(denied(
            "Signed expiry time has passed: renew the upload URI.",
        ));
    }
    let file = match state.store.content_file(file_id).await {
        Ok(Some(file)) => file,
        Ok(None) => {
            return Err(storage_error(
                StatusCode::NOT_FOUND,
                "ContainerNotFound",
                "The specified container does not exist.",
            ))
        }
        Err(e) => return Err(store_failed(&e)),
    };
    if file.upload_state.starts_with("commitFile") {
        return Err(denied("The file is committed; its upload URI is closed."));
    }
    Ok(file)
}

fn store_failed(e: &crate::storage::StoreError) -> StorageError {
    storage_error(
        StatusCode::SERVICE_UNAVAILABLE,
        "ServerBusy",
        &format!("The server is currently unable to receive requests: {e}"),
    )
}

/// `PUT {azureStorageUri}`: Put Block (`comp=block&blockid=`), Put Block List
/// (`comp=blocklist`) or Put Blob (no `comp`, `x-ms-blob-type: BlockBlob`).
async fn put_blob(
    State(state): State<Shared>,
    Path(blob): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let q = Query::parse(raw.as_deref());
    let file = match authorised(&state, &blob, &q).await {
        Ok(file) => file,
        Err(e) => return e.into_response(),
    };
    let answer = match q.comp.as_deref() {
        Some("block") => block(&state, &file, q.block_id.as_deref(), body).await,
        Some("blocklist") => block_list(&state, file, body).await,
        None => whole(&state, file, &headers, body).await,
        Some(other) => Err(storage_error(
            StatusCode::BAD_REQUEST,
            "InvalidQueryParameterValue",
            &format!("Value for one of the query parameters specified in the request URI is invalid: comp={other}"),
        )),
    };
    answer.unwrap_or_else(IntoResponse::into_response)
}

async fn block(
    state: &Shared,
    file: &ContentFileRow,
    block_id: Option<&str>,
    body: Body,
) -> Result<Response, StorageError> {
    let valid = block_id.filter(|id| {
        base64::engine::general_purpose::STANDARD
            .decode(id)
            .is_ok_and(|raw| !raw.is_empty() && raw.len() <= 64)
    });
    let Some(block_id) = valid else {
        return Err(storage_error(
            StatusCode::BAD_REQUEST,
            "InvalidQueryParameterValue",
            "blockid must be base64 of at most 64 bytes.",
        ));
    };
    stored(put_block(state, &file.id, block_id, body, MAX_BLOB).await)?;
    Ok(created())
}

async fn whole(
    state: &Shared,
    mut file: ContentFileRow,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, StorageError> {
    if headers.get("x-ms-blob-type") != Some(&HeaderValue::from_static("BlockBlob")) {
        return Err(storage_error(
            StatusCode::BAD_REQUEST,
            "MissingRequiredHeader",
            "An HTTP header that's mandatory for this request is not specified: x-ms-blob-type: BlockBlob.",
        ));
    }
    stored(put_block(state, &file.id, WHOLE_BLOB, body, MAX_BLOB).await)?;
    listed(state, &mut file, &[WHOLE_BLOB.to_owned()]).await
}

/// Records a blob's committed block list: the blob is those blocks, in that order.
async fn listed(
    state: &Shared,
    file: &mut ContentFileRow,
    list: &[String],
) -> Result<Response, StorageError> {
    file.block_list = Some(serde_json::json!(list).to_string());
    state
        .store
        .update_content_file(file)
        .await
        .map_err(|e| store_failed(&e))?;
    Ok(created())
}

fn stored(result: Result<u64, PutError>) -> Result<u64, StorageError> {
    result.map_err(|e| match e {
        PutError::TooLarge(_) => storage_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "RequestBodyTooLarge",
            "The request body is too large and exceeds the maximum permissible limit.",
        ),
        PutError::Body(why) => storage_error(
            StatusCode::BAD_REQUEST,
            "InvalidInput",
            &format!("The body broke off: {why}"),
        ),
        PutError::Store(e) => store_failed(&e),
    })
}

/// Put Block List: `<BlockList>` of `Latest`, `Committed` or `Uncommitted` ids; every
/// id must name a block put to this blob (or, for `Committed`, one already listed).
async fn block_list(
    state: &Shared,
    mut file: ContentFileRow,
    body: Body,
) -> Result<Response, StorageError> {
    let invalid = |why: &str| storage_error(StatusCode::BAD_REQUEST, "InvalidBlockList", why);
    let bytes = to_bytes(body, MAX_BLOCK_LIST)
        .await
        .map_err(|_| invalid("The block list is too large or broke off."))?;
    let text = String::from_utf8_lossy(&bytes);
    let root = syncml::xml::parse(text.trim_start_matches('\u{feff}')).map_err(|e| {
        storage_error(
            StatusCode::BAD_REQUEST,
            "InvalidXmlDocument",
            &format!("XML specified is not syntactically valid: {e}"),
        )
    })?;
    if root.name != "BlockList" {
        return Err(invalid("The document is not a BlockList."));
    }
    let stored = state
        .store
        .blocks(&file.id)
        .await
        .map_err(|e| store_failed(&e))?;
    let committed = file.blocks();
    let mut list = Vec::new();
    for item in root.elements() {
        let id = item.text().trim().to_owned();
        let put = stored.iter().any(|b| b.id == id);
        let known = match item.name.as_str() {
            "Latest" | "Uncommitted" => put,
            "Committed" => committed.contains(&id) && put,
            _ => false,
        };
        if !known {
            return Err(invalid(&format!(
                "The specified block list is invalid: block {id:?} was not put."
            )));
        }
        list.push(id);
    }
    if list.is_empty() || list.len() > MAX_BLOCKS {
        return Err(invalid(
            "The specified block list is invalid: it lists no blocks or too many.",
        ));
    }
    // Blocks left out of the list are gone, as Azure discards them at commit.
    for block in stored.iter().filter(|b| !list.contains(&b.id)) {
        state
            .store
            .drop_block(&file.id, &block.id)
            .await
            .map_err(|e| store_failed(&e))?;
    }
    listed(state, &mut file, &list).await
}
