//! One API error type: every failure becomes a status and a JSON body naming the field
//! and the problem. 500s are logged and never echoed.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::store::StoreError;

/// An API error.
#[derive(Debug)]
pub enum ApiError {
    /// 400/404/413/415/422 with the field at fault (when one is).
    Invalid {
        /// Status.
        status: StatusCode,
        /// Field, when one is at fault.
        field: Option<&'static str>,
        /// What is wrong and how to fix it.
        message: String,
    },
    /// 401: no valid admin token.
    Unauthorized,
    /// 401 with what was wrong (webhook signatures).
    Unauthenticated(String),
    /// 503: a feature is not configured.
    Unavailable(String),
    /// 404.
    NotFound(&'static str),
    /// 409.
    Conflict(String),
    /// 410: something that existed and is used up or expired (an enrolment code).
    Gone(String),
    /// 500, logged.
    Internal(String),
}

impl ApiError {
    /// A 422 for one field.
    pub fn field(field: &'static str, message: impl Into<String>) -> Self {
        Self::Invalid {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            field: Some(field),
            message: message.into(),
        }
    }
}

impl ApiError {
    /// What a person should read: the message of the JSON body (500s stay generic).
    pub fn message(&self) -> String {
        match self {
            Self::Invalid { message, .. }
            | Self::Unauthenticated(message)
            | Self::Unavailable(message)
            | Self::Conflict(message)
            | Self::Gone(message) => message.clone(),
            Self::Unauthorized => "you are not signed in".into(),
            Self::NotFound(what) => format!("{what} not found"),
            Self::Internal(detail) => {
                tracing::error!(%detail, "internal error");
                "something went wrong on the server; the server log has the details".into()
            }
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(what) => Self::NotFound(what),
            e @ (StoreError::CardBound { .. }
            | StoreError::CardRekeyed { .. }
            | StoreError::MemberCardBound { .. }) => Self::Conflict(e.to_string()),
            other => Self::Internal(other.to_string()),
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        let status = r.status();
        let status =
            if status == StatusCode::BAD_REQUEST || status == StatusCode::UNPROCESSABLE_ENTITY {
                StatusCode::UNPROCESSABLE_ENTITY
            } else {
                status
            };
        let text = r.body_text();
        // serde names the field: "unknown field `x`", "missing field `name`".
        let message = match &r {
            JsonRejection::MissingJsonContentType(_) => {
                "send the body as JSON with Content-Type: application/json".into()
            }
            JsonRejection::BytesRejection(_) => {
                format!("the body could not be read ({text}); bodies are limited to 16 KiB")
            }
            _ => text,
        };
        Self::Invalid {
            status,
            field: None,
            message,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, body) = match self {
            Self::Invalid {
                status,
                field,
                message,
            } => (status, json!({ "error": message, "field": field })),
            Self::Unauthorized => (
                StatusCode::UNAUTHORIZED,
                json!({ "error": "a valid admin API token is required: Authorization: Bearer <token> (tapkit-server token create --name NAME)" }),
            ),
            Self::NotFound(what) => (
                StatusCode::NOT_FOUND,
                json!({ "error": format!("{what} not found") }),
            ),
            Self::Conflict(message) => (StatusCode::CONFLICT, json!({ "error": message })),
            Self::Gone(message) => (StatusCode::GONE, json!({ "error": message })),
            Self::Unauthenticated(message) => {
                (StatusCode::UNAUTHORIZED, json!({ "error": message }))
            }
            Self::Unavailable(message) => {
                (StatusCode::SERVICE_UNAVAILABLE, json!({ "error": message }))
            }
            Self::Internal(detail) => {
                tracing::error!(%detail, "internal error");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    json!({ "error": "internal error; the server log has the details" }),
                )
            }
        };
        (status, Json(body)).into_response()
    }
}
