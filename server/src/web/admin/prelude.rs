//! What every section of the console uses: extractors, responses, the session, the
//! page helpers and the shared forms.

pub(super) use axum::extract::{Path, RawQuery, State};
pub(super) use axum::http::StatusCode;
pub(super) use axum::response::{IntoResponse, Redirect, Response};
pub(super) use maud::{Markup, html};

pub(super) use super::partners::{load_affiliate, status_badge};
pub(super) use super::{
    button_form, csrf_field, done_notice, error_notice, error_redirect, flash_error,
};
pub(super) use crate::AppState;
pub(super) use crate::api::ApiError;
pub(super) use crate::store::now_ms;
pub(super) use crate::tap::writer::CHANNELS;
pub(super) use crate::web::{QueryFields, WebError};
