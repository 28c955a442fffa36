//! Request extractors of the JSON API: bodies whose errors name the field, the admin
//! bearer token, and numeric path ids.

use axum::Json;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;

use crate::AppState;
use crate::api::error::ApiError;
use crate::keys::token_hash;

/// JSON body extractor whose errors are [`ApiError`]s (field named, never a 500).
pub struct Body<T>(pub T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned> FromRequest<S> for Body<T> {
    type Rejection = ApiError;
    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let Json(v) = Json::<T>::from_request(req, state).await?;
        Ok(Self(v))
    }
}

/// An optional JSON body: empty is `None`; anything else must parse (field named).
pub fn optional_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<Option<T>, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    serde_json::from_slice(body)
        .map(Some)
        .map_err(|e| ApiError::Invalid {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            field: None,
            message: format!("the body is not valid: {e}"),
        })
}

/// Proof that the request carries a known admin token.
pub struct Admin;

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or(ApiError::Unauthorized)?;
        if state.store.token_known(&token_hash(token.trim())).await? {
            Ok(Self)
        } else {
            Err(ApiError::Unauthorized)
        }
    }
}

/// A numeric id from a URL path, or a 422 naming it.
pub fn id(raw: &str) -> Result<i64, ApiError> {
    raw.parse()
        .map_err(|_| ApiError::field("id", format!("{raw:?} is not an id")))
}
