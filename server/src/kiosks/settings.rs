//! `[program.kiosk]` and the admin's per-kiosk overrides: what a counter display shows,
//! checked so that it stays readable (WCAG contrast, text lengths, a small PNG logo).

use serde::{Deserialize, Serialize};

/// `[program.kiosk]`: what every kiosk of the program shows unless the admin overrides it
/// per kiosk, and the timing of tokens and heartbeats.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KioskConfig {
    /// Brand name on the screen (default: the program's name).
    pub brand_name: Option<String>,
    /// The line under the brand.
    pub tagline: String,
    /// Background colour, `#rrggbb`.
    pub background: String,
    /// Text colour, `#rrggbb` (must contrast with the background, WCAG 4.5:1).
    pub foreground: String,
    /// The pointer's colour, `#rrggbb`.
    pub accent: String,
    /// Seconds per QR token step (the code on screen changes this often).
    pub rotation_secs: i64,
    /// Steps either side of the server's clock a token is still accepted.
    pub token_window_steps: i64,
    /// Seconds between heartbeats the kiosk is told to use.
    pub heartbeat_secs: i64,
    /// Seconds of silence after which a kiosk counts as offline.
    pub offline_after_secs: i64,
    /// Hours an enrolment code stays valid.
    pub enrollment_hours: i64,
}

impl Default for KioskConfig {
    fn default() -> Self {
        Self {
            brand_name: None,
            tagline: "Tap your phone here to book".into(),
            background: "#0b2545".into(),
            foreground: "#ffffff".into(),
            accent: "#ffc857".into(),
            rotation_secs: tapkit_core::kiosk::DEFAULT_STEP_SECS,
            token_window_steps: 2,
            heartbeat_secs: 45,
            offline_after_secs: 150,
            enrollment_hours: 24,
        }
    }
}

impl KioskConfig {
    /// Checks the settings, naming the field at fault.
    pub fn validate(&self) -> Result<(), String> {
        for (field, v) in [
            ("background", &self.background),
            ("foreground", &self.foreground),
            ("accent", &self.accent),
        ] {
            parse_colour(v)
                .ok_or_else(|| format!("kiosk.{field} {v:?} is not a colour like \"#0b2545\""))?;
        }
        check_contrast(&self.foreground, &self.background).map_err(|e| format!("kiosk: {e}"))?;
        check_text("tagline", &self.tagline, 80).map_err(|e| format!("kiosk.{e}"))?;
        if let Some(b) = &self.brand_name {
            check_text("brand_name", b, 40).map_err(|e| format!("kiosk.{e}"))?;
        }
        let ranges = [
            ("rotation_secs", self.rotation_secs, 10, 3600),
            ("token_window_steps", self.token_window_steps, 1, 60),
            ("heartbeat_secs", self.heartbeat_secs, 5, 600),
            ("offline_after_secs", self.offline_after_secs, 10, 86_400),
            ("enrollment_hours", self.enrollment_hours, 1, 720),
        ];
        for (field, v, lo, hi) in ranges {
            if !(lo..=hi).contains(&v) {
                return Err(format!("kiosk.{field} is {v}; use {lo} to {hi}"));
            }
        }
        if self.offline_after_secs < 2 * self.heartbeat_secs {
            return Err(format!(
                "kiosk.offline_after_secs ({}) must be at least twice heartbeat_secs ({}), or one late heartbeat marks a kiosk offline",
                self.offline_after_secs, self.heartbeat_secs
            ));
        }
        Ok(())
    }
}

pub(super) fn parse_colour(s: &str) -> Option<[u8; 3]> {
    tapkit_core::hex::parse_rgb(s)
}

/// WCAG 2 contrast ratio of two `#rrggbb` colours.
fn contrast(a: [u8; 3], b: [u8; 3]) -> f64 {
    let lum = |c: [u8; 3]| {
        let ch = |v: u8| {
            let v = f64::from(v) / 255.0;
            if v <= 0.039_28 {
                v / 12.92
            } else {
                ((v + 0.055) / 1.055).powf(2.4)
            }
        };
        0.2126 * ch(c[0]) + 0.7152 * ch(c[1]) + 0.0722 * ch(c[2])
    };
    let (x, y) = (lum(a), lum(b));
    (x.max(y) + 0.05) / (x.min(y) + 0.05)
}

pub(super) fn check_contrast(fg: &str, bg: &str) -> Result<(), String> {
    let (Some(f), Some(b)) = (parse_colour(fg), parse_colour(bg)) else {
        return Ok(()); // reported by the colour check itself
    };
    let r = contrast(f, b);
    if r < 4.5 {
        return Err(format!(
            "foreground {fg} on background {bg} has a contrast of {r:.1}:1; a counter display needs at least 4.5:1 to be read from 1.5 m"
        ));
    }
    Ok(())
}

pub(super) fn check_text(field: &str, v: &str, max: usize) -> Result<(), String> {
    if v.trim().is_empty() || v.chars().count() > max || v.chars().any(char::is_control) {
        return Err(format!(
            "{field} must be 1 to {max} characters without control characters"
        ));
    }
    Ok(())
}

/// The admin's per-kiosk display overrides; an empty string clears one.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Display {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) brand_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) tagline: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) background: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) foreground: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) accent: Option<String>,
    /// A PNG logo, base64 (at most 48 KiB of PNG).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) logo_png: Option<String>,
}

/// Largest logo accepted, in bytes of PNG.
const MAX_LOGO: usize = 48 * 1024;

pub(super) fn check_logo(b64: &str) -> Result<(), String> {
    let png = tapkit_core::base64::decode(b64).ok_or("logo_png is not base64")?;
    if png.len() > MAX_LOGO {
        return Err(format!(
            "logo_png is {} bytes; at most {MAX_LOGO} (a 512 px PNG is plenty)",
            png.len()
        ));
    }
    // PNG signature, then the IHDR chunk with width and height.
    if png.len() < 24 || &png[..8] != b"\x89PNG\r\n\x1a\n" || &png[12..16] != b"IHDR" {
        return Err("logo_png is not a PNG image".into());
    }
    let dim = |o: usize| u32::from_be_bytes([png[o], png[o + 1], png[o + 2], png[o + 3]]);
    let (w, h) = (dim(16), dim(20));
    if w == 0 || h == 0 || w > 2048 || h > 2048 {
        return Err(format!("logo_png is {w}×{h} px; use 1 to 2048 px each way"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contrast_follows_wcag() {
        assert!((contrast([0, 0, 0], [255, 255, 255]) - 21.0).abs() < 0.01);
        assert!((contrast([1, 2, 3], [1, 2, 3]) - 1.0).abs() < 1e-9);
        assert!(check_contrast("#ffffff", "#0b2545").is_ok());
        assert!(check_contrast("#777777", "#888888").is_err());
    }

    #[test]
    fn the_default_settings_are_valid_and_bad_ones_are_named() {
        KioskConfig::default().validate().unwrap();
        let bad = KioskConfig {
            rotation_secs: 1,
            ..KioskConfig::default()
        };
        assert!(bad.validate().unwrap_err().contains("rotation_secs"));
        let bad = KioskConfig {
            accent: "yellow".into(),
            ..KioskConfig::default()
        };
        assert!(bad.validate().unwrap_err().contains("kiosk.accent"));
        let bad = KioskConfig {
            heartbeat_secs: 100,
            offline_after_secs: 150,
            ..KioskConfig::default()
        };
        assert!(bad.validate().unwrap_err().contains("twice"));
    }

    #[test]
    fn logos_must_be_small_pngs() {
        let png = |w: u32, h: u32| {
            let mut b = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
            b.extend(w.to_be_bytes());
            b.extend(h.to_be_bytes());
            b.extend([8, 6, 0, 0, 0]);
            tapkit_core::base64::encode(&b)
        };
        assert!(check_logo(&png(256, 128)).is_ok());
        assert!(check_logo(&png(0, 128)).is_err());
        assert!(check_logo(&png(4096, 128)).is_err());
        assert!(check_logo("not base64!").is_err());
        assert!(
            check_logo(&tapkit_core::base64::encode(
                b"GIF89a and more bytes here...."
            ))
            .is_err()
        );
    }
}
