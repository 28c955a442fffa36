//! One error type for the console's and the portal's HTML pages. A handler returns
//! `Result<Response, WebError>` and uses `?`: a store or rendering failure becomes a
//! 500 page that shows a short reference and nothing else, while the detail goes to the
//! log under the same reference, so an admin can find it without the page leaking it.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use maud::{DOCTYPE, html};

use crate::store::StoreError;

/// What stops a page.
#[derive(Debug)]
pub enum WebError {
    /// A page to answer with as it is (not found, an expired form …).
    Page(Response),
    /// A failure on the server: logged with a reference, never shown.
    Internal(String),
}

impl WebError {
    /// A failure on the server with this detail (logged, never shown).
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        Self::Internal(detail.to_string())
    }
}

impl From<StoreError> for WebError {
    fn from(e: StoreError) -> Self {
        Self::internal(e)
    }
}

impl From<String> for WebError {
    fn from(detail: String) -> Self {
        Self::Internal(detail)
    }
}

impl From<Response> for WebError {
    fn from(r: Response) -> Self {
        Self::Page(r)
    }
}

/// A short random reference for a logged failure.
fn reference() -> String {
    let mut b = [0u8; 6];
    // Without OS randomness the reference is only less unique; the log still has it.
    let _ = getrandom::fill(&mut b);
    tapkit_core::hex::encode_lower(&b)
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        match self {
            Self::Page(r) => r,
            Self::Internal(detail) => {
                let reference = reference();
                tracing::error!(%reference, %detail, "console/portal: internal error");
                let body = html! {
                    (DOCTYPE)
                    html lang="en" {
                        head { meta charset="utf-8"; title { "Something went wrong" } }
                        body { main {
                            h1 { "Something went wrong" }
                            p { "The server log has the details. Try again in a moment." }
                            p { "Reference: " code { (reference) } }
                        } }
                    }
                };
                super::respond(StatusCode::INTERNAL_SERVER_ERROR, &body)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_500_shows_a_reference_and_never_the_detail() {
        let r = WebError::internal("secret detail: SELECT * FROM admins").into_response();
        assert_eq!(r.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let body = futures_body(r);
        assert!(body.contains("Reference: <code>"), "{body}");
        assert!(!body.contains("secret detail"), "{body}");
        assert!(!body.contains("SELECT"), "{body}");
    }

    fn futures_body(r: Response) -> String {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(async {
            let b = axum::body::to_bytes(r.into_body(), 1 << 20).await.unwrap();
            String::from_utf8(b.to_vec()).unwrap()
        })
    }
}
