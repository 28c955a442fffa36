//! Enrolment: the admin's one-time code (10 Crockford base32 symbols; only its SHA-256
//! is stored) is traded once for the kiosk's id and secret. The secret is never stored:
//! it is derived from the server secret, the kiosk id and a generation that every
//! enrolment bumps.

use axum::Json;
use axum::extract::State;
use axum::response::IntoResponse;
use sha2::{Digest, Sha256};
use tapkit_core::kiosk_wire::{EnrollRequest, EnrollResponse};

use super::ms_time;
use crate::AppState;
use crate::api::{ApiError, Body};
use crate::store::kiosks::Kiosk;
use crate::store::now_ms;

/// The kiosk's secret: derived, never stored.
pub(super) fn secret(s: &AppState, k: &Kiosk) -> [u8; 32] {
    s.keys.kiosk_secret(k.id, k.generation)
}

const CROCKFORD: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// A fresh enrolment code: 10 Crockford symbols (50 bits), shown as `XXXXX-XXXXX`.
pub(super) fn new_enrollment_code() -> Result<String, ApiError> {
    let mut b = [0u8; 10];
    getrandom::fill(&mut b).map_err(|e| ApiError::Internal(format!("no OS randomness: {e}")))?;
    let s: String = b
        .iter()
        .map(|v| CROCKFORD[usize::from(v % 32)] as char)
        .collect();
    Ok(format!("{}-{}", &s[..5], &s[5..]))
}

/// Reads a typed code the way a person types it: case, spaces and hyphens ignored,
/// `I`/`L` read as `1` and `O` as `0`.
pub(super) fn normalise_code(raw: &str) -> Option<String> {
    let s: String = raw
        .chars()
        .filter(|c| !matches!(c, '-' | ' '))
        .map(|c| match c.to_ascii_uppercase() {
            'I' | 'L' => '1',
            'O' => '0',
            c => c,
        })
        .collect();
    (s.len() == 10 && s.bytes().all(|b| CROCKFORD.contains(&b))).then_some(s)
}

/// The stored hash of a normalised enrolment code.
pub(super) fn code_hash(normalised: &str) -> String {
    tapkit_core::hex::encode_lower(&Sha256::digest(normalised.as_bytes()))
}

/// `POST /api/kiosk/enroll`.
pub(super) async fn enroll(
    State(s): State<AppState>,
    Body(b): Body<EnrollRequest>,
) -> Result<impl IntoResponse, ApiError> {
    let Some(code) = normalise_code(&b.code) else {
        return Err(ApiError::field(
            "code",
            "an enrolment code is 10 letters and digits like 7KQ2M-9XD4P; check what the admin gave you",
        ));
    };
    // Unknown is a 404: 410 is for a code that existed and is used up or expired.
    let Some(k) = s.store.kiosk_by_code(&code_hash(&code)).await? else {
        return Err(ApiError::Invalid {
            status: axum::http::StatusCode::NOT_FOUND,
            field: Some("code"),
            message: "this enrolment code is not known: check it, or ask the admin for a new one"
                .into(),
        });
    };
    let now = now_ms();
    if k.enrollment_used {
        return Err(ApiError::Gone(format!(
            "this enrolment code was already used (kiosk {} enrolled {}); ask the admin for a new code",
            k.id,
            ms_time(k.enrolled_at).as_str().unwrap_or("earlier")
        )));
    }
    if k.enrollment_expires_at.is_some_and(|e| e < now) {
        return Err(ApiError::Gone(format!(
            "this enrolment code expired at {}; ask the admin for a new code",
            ms_time(k.enrollment_expires_at).as_str().unwrap_or("?")
        )));
    }
    // One use only, even when two kiosks race with the same code.
    if !s
        .store
        .use_kiosk_enrollment(k.id, &code_hash(&code), now)
        .await?
    {
        return Err(ApiError::Gone(
            "this enrolment code was just used or replaced; ask the admin for a new code".into(),
        ));
    }
    s.directory.reload().await?;
    let k = s
        .store
        .kiosk(k.id)
        .await?
        .ok_or(ApiError::NotFound("kiosk"))?;
    let aff = s.store.affiliate(k.affiliate_id).await?;
    tracing::info!(kiosk = k.id, affiliate = aff.id, "kiosk enrolled");
    Ok(Json(EnrollResponse {
        affiliate_code: aff.code,
        kiosk_id: k.id,
        secret: tapkit_core::hex::encode_lower(&secret(&s, &k)),
        server_time_ms: Some(now),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enrolment_codes_read_like_people_type_them() {
        let c = new_enrollment_code().unwrap();
        assert_eq!(c.len(), 11);
        let n = normalise_code(&c).unwrap();
        assert_eq!(normalise_code(&c.to_lowercase()), Some(n.clone()));
        assert_eq!(normalise_code(" 7kq2m 9xd4p "), Some("7KQ2M9XD4P".into()));
        assert_eq!(
            normalise_code("OIL00-11111"),
            Some("01100-11111".replace('-', ""))
        );
        for bad in ["", "7KQ2M", "7KQ2M-9XD4PP", "7KQ2M-9XD4U", "7KQ2M-9XD4!"] {
            assert_eq!(normalise_code(bad), None, "{bad:?}");
        }
    }
}
