//! The card template: brand colours (CMYK), fonts, logo, tagline and where things go.
//! `assets/templates/default.toml` documents every key; the default template, its fonts
//! and logo are built into the binary, so printing works without the assets folder.

use std::path::{Path, PathBuf};

use serde::Deserialize;

/// A CMYK colour in percent.
pub type Cmyk = [f32; 4];

/// Card geometry settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CardSection {
    /// Bleed past the trim, mm.
    pub bleed_mm: f32,
    /// Safe margin inside the trim, mm.
    pub safe_mm: f32,
}

/// Brand colours.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BrandSection {
    /// The brand's name (document title).
    pub name: String,
    /// Band colour.
    pub band_cmyk: Cmyk,
    /// Band width from the left trim edge, mm.
    pub band_width_mm: f32,
    /// Text colour on the band.
    pub on_band_cmyk: Cmyk,
    /// Small text colour (should be 100 % K).
    pub text_cmyk: Cmyk,
}

/// Font files (TrueType), relative to the template.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FontSection {
    /// Bold face (partner name).
    pub bold: PathBuf,
    /// Regular face (tagline, URL, back).
    pub regular: PathBuf,
}

/// Front side.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FrontSection {
    /// Logo PNG (RGBA ok), relative to the template; none if absent.
    pub logo: Option<PathBuf>,
    /// Logo size, mm.
    pub logo_mm: f32,
    /// Partner name size, pt.
    pub name_pt: f32,
    /// Smallest partner name size before refusing, pt.
    pub name_min_pt: f32,
    /// Tagline under the name.
    pub tagline: String,
    /// Tagline size, pt.
    pub tagline_pt: f32,
    /// Short URL size, pt.
    pub url_pt: f32,
    /// Largest QR including its quiet zone, mm.
    pub qr_mm: f32,
    /// Error correction: M or Q.
    pub qr_ec: String,
    /// Put the logo in the middle of the QR (forces level H).
    pub logo_over_qr: bool,
}

/// Back side.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackSection {
    /// The line on the back.
    pub text: String,
    /// Its size, pt.
    pub text_pt: f32,
    /// Print the referral code on the back.
    pub show_code: bool,
}

/// A parsed template with its files loaded.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Template {
    /// Geometry.
    pub card: CardSection,
    /// Colours.
    pub brand: BrandSection,
    /// Fonts.
    pub fonts: FontSection,
    /// Front.
    pub front: FrontSection,
    /// Back.
    pub back: BackSection,
    /// Loaded bytes of the bold font.
    #[serde(skip)]
    pub bold_bytes: Vec<u8>,
    /// Loaded bytes of the regular font.
    #[serde(skip)]
    pub regular_bytes: Vec<u8>,
    /// Loaded logo PNG.
    #[serde(skip)]
    pub logo_png: Option<Vec<u8>>,
}

const DEFAULT_TOML: &str = include_str!("../../assets/templates/default.toml");
pub(crate) const DEFAULT_BOLD: &[u8] = include_bytes!("../../assets/fonts/LiberationSans-Bold.ttf");
pub(crate) const DEFAULT_REGULAR: &[u8] =
    include_bytes!("../../assets/fonts/LiberationSans-Regular.ttf");
const DEFAULT_LOGO: &[u8] = include_bytes!("../../assets/logos/tapkit-mark.png");

impl Template {
    /// The built-in template (assets/templates/default.toml with its fonts and logo).
    pub fn builtin() -> Result<Self, String> {
        let mut t: Self =
            toml::from_str(DEFAULT_TOML).map_err(|e| format!("built-in template: {e}"))?;
        t.bold_bytes = DEFAULT_BOLD.to_vec();
        t.regular_bytes = DEFAULT_REGULAR.to_vec();
        t.logo_png = Some(DEFAULT_LOGO.to_vec());
        t.validate()?;
        Ok(t)
    }

    /// Loads a template file and the files it names (relative to it).
    pub fn load(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read template {}: {e}", path.display()))?;
        let mut t: Self =
            toml::from_str(&text).map_err(|e| format!("template {}: {e}", path.display()))?;
        let dir = path.parent().unwrap_or(Path::new("."));
        let read = |p: &Path, what: &str| {
            std::fs::read(dir.join(p)).map_err(|e| {
                format!(
                    "template {}: cannot read the {what} {}: {e}",
                    path.display(),
                    p.display()
                )
            })
        };
        t.bold_bytes = read(&t.fonts.bold, "bold font")?;
        t.regular_bytes = read(&t.fonts.regular, "regular font")?;
        t.logo_png = match &t.front.logo {
            Some(p) => Some(read(p, "logo")?),
            None => None,
        };
        t.validate()
            .map_err(|e| format!("template {}: {e}", path.display()))?;
        Ok(t)
    }

    fn validate(&self) -> Result<(), String> {
        let colours = [
            ("band_cmyk", self.brand.band_cmyk),
            ("on_band_cmyk", self.brand.on_band_cmyk),
            ("text_cmyk", self.brand.text_cmyk),
        ];
        for (name, c) in colours {
            if c.iter().any(|v| !(0.0..=100.0).contains(v)) {
                return Err(format!("{name} values are CMYK percentages from 0 to 100"));
            }
        }
        if !matches!(self.front.qr_ec.as_str(), "M" | "Q") {
            return Err(format!(
                "qr_ec is {:?}; use M (clean codes) or Q (cards that wear)",
                self.front.qr_ec
            ));
        }
        if !(0.0..=10.0).contains(&self.card.bleed_mm) || !(0.0..=10.0).contains(&self.card.safe_mm)
        {
            return Err("bleed_mm and safe_mm are between 0 and 10 mm".into());
        }
        if !(5.0..=60.0).contains(&self.brand.band_width_mm) {
            return Err("band_width_mm is between 5 and 60 mm".into());
        }
        if self.front.name_min_pt <= 0.0 || self.front.name_min_pt > self.front.name_pt {
            return Err("name_min_pt must be above 0 and at most name_pt".into());
        }
        Ok(())
    }
}
