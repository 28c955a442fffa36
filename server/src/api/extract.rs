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
        let Json(Object(v)) = Json::<Object<T>>::from_request(req, state).await?;
        Ok(Self(v))
    }
}

/// A body that must be a JSON object, as the OpenAPI document states every body: serde
/// alone also reads a struct from an array of its fields in order (`[null, null]`).
struct Object<T>(T);

impl<'de, T: serde::Deserialize<'de>> serde::Deserialize<'de> for Object<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Fields<T>(std::marker::PhantomData<T>);
        impl<'de, T: serde::Deserialize<'de>> serde::de::Visitor<'de> for Fields<T> {
            type Value = T;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
                T::deserialize(serde::de::value::MapAccessDeserializer::new(map))
            }
        }
        d.deserialize_map(Fields(std::marker::PhantomData))
            .map(Object)
    }
}

/// Reads a JSON object into `T` (see [`Body`]): an array, or anything else, is an error.
pub fn json_object<T: serde::de::DeserializeOwned>(body: &[u8]) -> serde_json::Result<T> {
    serde_json::from_slice::<Object<T>>(body).map(|Object(v)| v)
}

/// The raw body, for routes whose JSON body is optional: one over the limit is the JSON
/// 413 the OpenAPI document states (axum's own rejection is plain text).
pub struct RawBody(pub axum::body::Bytes);

impl<S: Send + Sync> FromRequest<S> for RawBody {
    type Rejection = ApiError;
    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        axum::body::Bytes::from_request(req, state)
            .await
            .map(Self)
            .map_err(|e| ApiError::Invalid {
                status: e.status(),
                field: None,
                message: format!(
                    "the body could not be read ({}); bodies are limited to 16 KiB",
                    e.body_text()
                ),
            })
    }
}

/// An optional JSON body: empty is `None`; anything else must be a JSON object that
/// parses (field named).
pub fn optional_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<Option<T>, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    json_object(body).map(Some).map_err(|e| ApiError::Invalid {
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
    parse_id(raw).ok_or_else(|| ApiError::field("id", format!("{raw:?} is not an id")))
}

/// A 64-bit signed integer as the OpenAPI document states ids: an optional `-` and
/// digits (`str::parse` alone would also take a `+`).
pub fn parse_id(raw: &str) -> Option<i64> {
    if raw.starts_with('+') {
        return None;
    }
    raw.parse().ok()
}

/// The `{id}` of a route's path, checked before the body is read: a route whose body
/// is also wrong answers the 422 naming `id` first, as the routes without a body do.
pub struct PathId(pub i64);

impl<S: Send + Sync> FromRequestParts<S> for PathId {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let axum::extract::Path(raw) =
            axum::extract::Path::<String>::from_request_parts(parts, state)
                .await
                .map_err(|e| ApiError::field("id", e.body_text()))?;
        id(&raw).map(Self)
    }
}
