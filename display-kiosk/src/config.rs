//! The display config the server sends (`GET /api/kiosk/config`), checked before it
//! reaches the screen: a config that fails a check is refused and the last good one stays.

use std::sync::Arc;

use tapkit_core::code::ReferralCode;

use crate::frame::{Content, Logo, Pad, Rgb};

/// The server's display config, as on the wire: unknown fields are ignored (a newer
/// server may add some), `logo_png` and `url` may be left out.
pub use tapkit_core::kiosk_wire::{Colors, DisplayConfig};

/// A config that passed every check, with its logo decoded.
#[derive(Debug, Clone)]
pub struct Checked {
    /// The config.
    pub config: DisplayConfig,
    /// The raw JSON (what is cached).
    pub raw: String,
    background: Rgb,
    foreground: Rgb,
    accent: Rgb,
    logo: Option<Arc<Logo>>,
    code: String,
}

/// Parses and checks a config; the error names the field and the problem.
pub fn check(raw: &str) -> Result<Checked, String> {
    let config: DisplayConfig =
        crate::wire::parse(raw).map_err(|e| format!("display config: {e}"))?;
    let colour = |field: &str, v: &str| {
        Rgb::parse(v).ok_or_else(|| format!("colors.{field} {v:?} is not a colour like #0b2545"))
    };
    let background = colour("background", &config.colors.background)?;
    let foreground = colour("foreground", &config.colors.foreground)?;
    let accent = colour("accent", &config.colors.accent)?;
    for (field, v, max) in [
        ("brand_name", &config.brand_name, 40),
        ("tagline", &config.tagline, 80),
    ] {
        if v.trim().is_empty() || v.chars().count() > max || v.chars().any(char::is_control) {
            return Err(format!("{field} must be 1 to {max} printable characters"));
        }
    }
    let domain_ok = !config.domain.is_empty()
        && config.domain.len() <= 253
        && config
            .domain
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':'));
    if !domain_ok {
        return Err(format!("domain {:?} is not a host name", config.domain));
    }
    let code = ReferralCode::parse(&config.affiliate_code)
        .map_err(|e| format!("affiliate_code {:?}: {e}", config.affiliate_code))?
        .to_string();
    if !(10..=3600).contains(&config.rotation_secs) {
        return Err(format!(
            "rotation_secs {} is outside 10 to 3600",
            config.rotation_secs
        ));
    }
    if !(5..=600).contains(&config.heartbeat_secs) {
        return Err(format!(
            "heartbeat_secs {} is outside 5 to 600",
            config.heartbeat_secs
        ));
    }
    let logo = match &config.logo_png {
        None => None,
        Some(b64) => {
            let png = tapkit_core::base64::decode(b64).ok_or("logo_png is not base64")?;
            let img = image::load_from_memory_with_format(&png, image::ImageFormat::Png)
                .map_err(|e| format!("logo_png does not decode: {e}"))?;
            if img.width() > 2048 || img.height() > 2048 {
                return Err("logo_png is larger than 2048 px".into());
            }
            Some(Arc::new(Logo {
                png,
                pixels: img.to_rgba8(),
            }))
        }
    };
    Ok(Checked {
        raw: raw.to_owned(),
        config,
        background,
        foreground,
        accent,
        logo,
        code,
    })
}

impl Checked {
    /// The URL customers open: `https://{domain}/r/{code}`.
    pub fn url(&self) -> String {
        format!("https://{}/r/{}", self.config.domain, self.code)
    }

    /// What the frame shows, with `token` in the QR.
    pub fn content(&self, token: &str, pad: Pad) -> Content {
        Content {
            brand: self.config.brand_name.clone(),
            tagline: self.config.tagline.clone(),
            background: self.background,
            foreground: self.foreground,
            accent: self.accent,
            qr_url: Some(format!("{}?k={token}", self.url())),
            short_url: format!("{}/r/{}", self.config.domain, self.code),
            logo: self.logo.clone(),
            pad,
        }
    }
}

/// What the screen shows before the first config arrives.
pub fn waiting(pad: Pad, note: &str) -> Content {
    Content {
        brand: "Starting up".into(),
        tagline: note.into(),
        background: Rgb([11, 37, 69]),
        foreground: Rgb([255, 255, 255]),
        accent: Rgb([255, 200, 87]),
        qr_url: None,
        short_url: String::new(),
        logo: None,
        pad,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code() -> String {
        ReferralCode::generate("Shine", 12_345).to_string()
    }

    pub fn sample() -> serde_json::Value {
        serde_json::json!({
            "version": "abc", "kiosk_id": 4, "brand_name": "Shine", "tagline": "Tap here to book",
            "colors": {"background": "#0b2545", "foreground": "#ffffff", "accent": "#ffc857"},
            "logo_png": null, "domain": "book.example.com", "affiliate_code": code(),
            "url": format!("https://book.example.com/r/{}", code()), "rotation_secs": 60,
            "heartbeat_secs": 45, "something_new": true
        })
    }

    #[test]
    fn a_good_config_passes_and_builds_the_url() {
        let c = check(&sample().to_string()).unwrap();
        assert_eq!(c.url(), format!("https://book.example.com/r/{}", code()));
        let content = c.content("4.1.0123456789abcdef", Pad::Below);
        assert_eq!(
            content.qr_url.as_deref(),
            Some(
                format!(
                    "https://book.example.com/r/{}?k=4.1.0123456789abcdef",
                    code()
                )
                .as_str()
            )
        );
    }

    #[test]
    fn bad_configs_are_refused_with_the_field_named() {
        let cases: [(&str, serde_json::Value, &str); 7] = [
            ("/colors/background", "blue".into(), "colors.background"),
            ("/brand_name", "".into(), "brand_name"),
            ("/domain", "book.example.com/evil path".into(), "domain"),
            ("/affiliate_code", "IRONGYM-7K2M9R".into(), "affiliate_code"),
            ("/rotation_secs", 1.into(), "rotation_secs"),
            ("/logo_png", "iVBORw0KGgo=".into(), "logo_png"),
            ("/heartbeat_secs", "soon".into(), "heartbeat_secs"),
        ];
        for (pointer, value, named) in cases {
            let mut v = sample();
            *v.pointer_mut(pointer).unwrap() = value;
            let e = check(&v.to_string()).unwrap_err();
            assert!(e.contains(named), "{pointer}: {e}");
        }
        assert!(check("not json").is_err());
    }

    proptest::proptest! {
        /// Whatever the server (or a damaged cache file) sends, checking never panics.
        #[test]
        fn checking_never_panics(
            junk in ".{0,200}",
            key in "[a-z_/]{1,20}",
            value in proptest::prelude::any::<i64>(),
            text in ".{0,60}",
        ) {
            let _ = check(&junk);
            let mut v = sample();
            v[key.clone()] = serde_json::json!(value);
            let _ = check(&v.to_string());
            let mut v = sample();
            v[key] = serde_json::json!(text);
            let _ = check(&v.to_string());
        }
    }
}
