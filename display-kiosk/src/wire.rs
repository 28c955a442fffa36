//! Reading the server's JSON bodies into the shared wire types
//! ([`tapkit_core::kiosk_wire`]). What the types tolerate (unknown fields, fields an
//! older or newer server may leave out) is declared on them; anything else that does not
//! fit is refused with the field named (`colors.accent: invalid type: …`), so a refused
//! config or a strange answer says what is wrong in the log and in the next heartbeat.

use serde::de::DeserializeOwned;

/// Why a body does not read as the type expected.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WireError {
    /// Not JSON at all (or cut short).
    #[error("not JSON: {0}")]
    NotJson(#[source] serde_json::Error),
    /// JSON, but a field is missing or of the wrong kind.
    #[error("{}{source}", field.as_deref().map(|f| format!("{f}: ")).unwrap_or_default())]
    Field {
        /// The field at fault, dotted (`colors.accent`); `None` for the top level
        /// (a missing field is named in the message).
        field: Option<String>,
        /// What serde said.
        #[source]
        source: serde_json::Error,
    },
}

/// Reads `text` as a `T`, naming the field at fault on failure.
pub fn parse<T: DeserializeOwned>(text: &str) -> Result<T, WireError> {
    let mut de = serde_json::Deserializer::from_str(text);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let field = e
            .path()
            .iter()
            .next()
            .is_some()
            .then(|| e.path().to_string());
        classify(field, e.into_inner())
    })?;
    de.end().map_err(WireError::NotJson)?;
    Ok(value)
}

fn classify(field: Option<String>, source: serde_json::Error) -> WireError {
    if source.is_data() {
        WireError::Field { field, source }
    } else {
        WireError::NotJson(source)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use tapkit_core::kiosk_wire::{
        Colors, DisplayConfig, EnrollRequest, EnrollResponse, Heartbeat, HeartbeatResponse,
    };

    fn config() -> DisplayConfig {
        DisplayConfig {
            affiliate_code: "SHINE-7K2M9Q".into(),
            brand_name: "Shine".into(),
            colors: Colors {
                accent: "#ffc857".into(),
                background: "#0b2545".into(),
                foreground: "#ffffff".into(),
            },
            domain: "book.example.com".into(),
            heartbeat_secs: 45,
            kiosk_id: 4,
            logo_png: Some("iVBORw0KGgo=".into()),
            rotation_secs: 60,
            tagline: "Tap here to book".into(),
            url: "https://book.example.com/r/SHINE-7K2M9Q".into(),
            version: "0123456789abcdef".into(),
        }
    }

    /// Serialises and reads back: the same value, for every body of the protocol.
    fn round_trip<T>(v: &T)
    where
        T: serde::Serialize + DeserializeOwned + PartialEq + std::fmt::Debug,
    {
        let text = serde_json::to_string(v).unwrap();
        assert_eq!(&parse::<T>(&text).unwrap(), v, "{text}");
    }

    #[test]
    fn every_body_round_trips() {
        round_trip(&config());
        round_trip(&DisplayConfig {
            logo_png: None,
            ..config()
        });
        round_trip(&EnrollRequest {
            code: "7KQ2M-9XD4P".into(),
        });
        round_trip(&Heartbeat {
            clock_ms: 1_767_225_600_123,
            config_version: None,
            last_error: Some("disk \"full\"\n".into()),
            uptime_secs: 0,
            version: "0.1.0".into(),
        });
        round_trip(&HeartbeatResponse {
            config_version: "0123456789abcdef".into(),
            heartbeat_secs: 5,
            server_time_ms: Some(-1),
        });
        let e = EnrollResponse {
            affiliate_code: "SHINE-7K2M9Q".into(),
            kiosk_id: 9,
            secret: "ab".repeat(32),
            server_time_ms: Some(1),
        };
        let back: EnrollResponse = parse(&serde_json::to_string(&e).unwrap()).unwrap();
        assert!(back == e, "the enrolment answer round-trips");
    }

    #[test]
    fn what_an_older_or_newer_server_may_send_is_read() {
        let mut v = serde_json::to_value(config()).unwrap();
        let o = v.as_object_mut().unwrap();
        o.remove("logo_png");
        o.remove("url");
        o.insert("something_new".into(), json!({"nested": [1, 2]}));
        let c: DisplayConfig = parse(&v.to_string()).unwrap();
        assert_eq!((c.logo_png, c.url.as_str()), (None, ""));
        let c: DisplayConfig = parse(
            &v.to_string()
                .replace("\"kiosk_id\"", "\"logo_png\":null,\"kiosk_id\""),
        )
        .unwrap();
        assert_eq!(c.logo_png, None, "a null logo is no logo");
        let e: EnrollResponse =
            parse(r#"{"kiosk_id":3,"secret":"00","affiliate_code":"X-1"}"#).unwrap();
        assert_eq!((e.kiosk_id, e.server_time_ms), (3, None));
    }

    #[test]
    fn a_wrong_body_names_the_field() {
        let named = |text: &str, field: &str| {
            let e = parse::<DisplayConfig>(text).unwrap_err();
            assert!(matches!(e, WireError::Field { .. }), "{e:?}");
            let m = e.to_string();
            assert!(m.contains(field), "{field} not in {m:?}");
        };
        let good = serde_json::to_value(config()).unwrap();
        for (pointer, value, field) in [
            ("/heartbeat_secs", json!("soon"), "heartbeat_secs"),
            ("/colors/accent", json!(7), "colors.accent"),
            ("/logo_png", json!(false), "logo_png"),
            ("/kiosk_id", json!(4.5), "kiosk_id"),
            ("/rotation_secs", json!(u64::MAX), "rotation_secs"),
        ] {
            let mut v = good.clone();
            *v.pointer_mut(pointer).unwrap() = value;
            named(&v.to_string(), field);
        }
        for (parent, missing) in [("", "version"), ("/colors", "background")] {
            let mut v = good.clone();
            v.pointer_mut(parent)
                .unwrap()
                .as_object_mut()
                .unwrap()
                .remove(missing);
            named(&v.to_string(), &format!("missing field `{missing}`"));
        }
        let e = parse::<HeartbeatResponse>(r#"{"config_version":5}"#).unwrap_err();
        assert!(e.to_string().starts_with("config_version: "), "{e}");
    }

    #[test]
    fn what_is_not_json_says_so() {
        for junk in ["", "not json", "{\"version\":", "{} trailing"] {
            let e = parse::<HeartbeatResponse>(junk).unwrap_err();
            assert!(matches!(e, WireError::NotJson(_)), "{junk:?}: {e:?}");
            assert!(e.to_string().starts_with("not JSON: "), "{e}");
        }
    }
}
