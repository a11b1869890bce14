//! The error answer of the server's JSON APIs, in Microsoft Graph's shape:
//! `{"error":{"code":"ResourceNotFound","message":"..."}}` (the admin listener adds
//! `innerError` with the date and request ids; `admin::graph`). Graph SDKs read only this
//! shape. It sits below the admin API and the protocol rooms, which all answer with it.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::storage::StoreError;

/// An error answer: a status, Graph's code for it and a message for people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

/// Marks a response whose body is already a Graph error (so the admin listener does not
/// wrap it again).
#[derive(Debug, Clone, Copy)]
pub struct GraphErrorBody;

/// Marks a failure whose body is another protocol's error (Entra's sign-in errors, Azure
/// Storage's on the upload URI): the admin listener leaves it as it is.
#[derive(Debug, Clone, Copy)]
pub struct ForeignErrorBody;

impl ApiError {
    /// An error with this status, Graph's usual code for it, and this message.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code: code_for(status),
            message: message.into(),
        }
    }

    /// The same error with another of Graph's codes (e.g. `Request_BadRequest`).
    pub fn with_code(mut self, code: &'static str) -> Self {
        self.code = code;
        self
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The error's JSON body: `{"error":{"code","message"}}`.
    pub fn body(&self) -> serde_json::Value {
        json!({ "error": { "code": self.code, "message": self.message } })
    }
}

/// Graph's error code for an HTTP status.
pub fn code_for(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "BadRequest",
        401 => "InvalidAuthenticationToken",
        403 => "Forbidden",
        404 => "ResourceNotFound",
        405 => "MethodNotAllowed",
        406 => "NotAcceptable",
        409 => "Conflict",
        411 => "LengthRequired",
        412 => "PreconditionFailed",
        413 => "RequestEntityTooLarge",
        415 => "UnsupportedMediaType",
        416 => "InvalidRange",
        422 => "UnprocessableEntity",
        424 => "FailedDependency",
        429 => "TooManyRequests",
        501 => "NotImplemented",
        503 => "ServiceUnavailable",
        504 => "GatewayTimeout",
        s if s >= 500 => "InternalServerError",
        _ => "BadRequest",
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = self.body();
        let mut response = (
            self.status,
            [(header::CONTENT_TYPE, "application/json")],
            body.to_string(),
        )
            .into_response();
        response.extensions_mut().insert(GraphErrorBody);
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        tracing::error!("storage error: {e}");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the database is unavailable",
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_status_has_graphs_code() {
        assert_eq!(code_for(StatusCode::NOT_FOUND), "ResourceNotFound");
        assert_eq!(
            code_for(StatusCode::UNAUTHORIZED),
            "InvalidAuthenticationToken"
        );
        assert_eq!(
            code_for(StatusCode::PAYLOAD_TOO_LARGE),
            "RequestEntityTooLarge"
        );
        assert_eq!(
            code_for(StatusCode::UNSUPPORTED_MEDIA_TYPE),
            "UnsupportedMediaType"
        );
        assert_eq!(code_for(StatusCode::BAD_GATEWAY), "InternalServerError");
        let e = ApiError::new(StatusCode::BAD_REQUEST, "x").with_code("Request_BadRequest");
        assert_eq!(e.code, "Request_BadRequest");
    }
}
