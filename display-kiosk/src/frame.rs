//! The frame: one layout, two renderers. [`layout`] turns the display config and a
//! screen size into positioned primitives (text measured with the very font the page
//! uses), [`Frame::svg`] draws them for the browser and [`Frame::raster`] into pixels for
//! `display-kiosk snapshot`, so the PNG and the screen show the same thing. This file
//! holds the fonts and the primitives; [`layout()`] is in `layout.rs`, the renderers in
//! `render.rs`.

use std::sync::Arc;

use ab_glyph::{Font, FontRef, PxScale, ScaleFont};
use image::RgbaImage;
use tapkit_core::qr::QrMatrix;

mod layout;
mod render;

pub use layout::layout;
pub use render::esc;

/// Liberation Sans (SIL OFL 1.1, `assets/fonts/LICENSE-LiberationSans.txt`): embedded so
/// the kiosk needs no system fonts and page and snapshot measure text alike.
pub const BOLD_TTF: &[u8] = include_bytes!("../../assets/fonts/LiberationSans-Bold.ttf");
/// The regular weight.
pub const REGULAR_TTF: &[u8] = include_bytes!("../../assets/fonts/LiberationSans-Regular.ttf");

fn font(bold: bool) -> FontRef<'static> {
    // Both files are compiled in and parse (checked by a test), so this cannot fail.
    let bytes = if bold { BOLD_TTF } else { REGULAR_TTF };
    match FontRef::try_from_slice(bytes) {
        Ok(f) => f,
        Err(_) => unreachable!("the embedded fonts parse"),
    }
}

/// ab_glyph scales by the font's height; CSS `font-size` is the em size. This converts.
fn em_scale(f: &FontRef<'_>, size: f32) -> PxScale {
    let upem = f.units_per_em().unwrap_or(2048.0);
    PxScale::from(size * f.height_unscaled() / upem)
}

/// Where each glyph of `text` starts on the pen line (kerning included, as a browser lays
/// it out), and the total advance: the one loop behind measuring and drawing.
fn place_glyphs(text: &str, size: f32, bold: bool) -> (Vec<(ab_glyph::GlyphId, f32)>, f32) {
    let f = font(bold);
    let sf = f.as_scaled(em_scale(&f, size));
    let mut pen = 0.0;
    let mut prev = None;
    let mut placed = Vec::with_capacity(text.len());
    for c in text.chars() {
        let id = sf.glyph_id(c);
        if let Some(p) = prev {
            pen += sf.kern(p, id);
        }
        placed.push((id, pen));
        pen += sf.h_advance(id);
        prev = Some(id);
    }
    (placed, pen)
}

/// Width of `text` at `size` px (em), as a browser lays it out.
pub fn text_width(text: &str, size: f32, bold: bool) -> f32 {
    place_glyphs(text, size, bold).1
}

/// A colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rgb(pub [u8; 3]);

impl Rgb {
    /// `#rrggbb`.
    pub fn parse(s: &str) -> Option<Self> {
        tapkit_core::hex::parse_rgb(s).map(Self)
    }

    fn css(self) -> String {
        format!("#{:02x}{:02x}{:02x}", self.0[0], self.0[1], self.0[2])
    }
}

/// Where the NFC pad sits relative to the screen (the pointer points there).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Pad {
    /// Under the screen (the usual counter stand).
    Below,
    /// Left of the screen.
    Left,
    /// Right of the screen.
    Right,
}

/// What the frame shows.
#[derive(Debug, Clone)]
pub struct Content {
    /// Brand name, large.
    pub brand: String,
    /// "Tap your phone here to book".
    pub tagline: String,
    /// Background, text and pointer colours.
    pub background: Rgb,
    /// Text.
    pub foreground: Rgb,
    /// Pointer.
    pub accent: Rgb,
    /// What the QR encodes (the URL with the current token), if there is one yet.
    pub qr_url: Option<String>,
    /// The short URL printed under the QR (`book.example.com/r/CODE`).
    pub short_url: String,
    /// The brand's logo.
    pub logo: Option<Arc<Logo>>,
    /// Where the pad is.
    pub pad: Pad,
}

/// A decoded logo: the PNG (for the page) and its pixels (for the snapshot).
#[derive(Debug)]
pub struct Logo {
    /// The PNG file, as received.
    pub png: Vec<u8>,
    /// Decoded pixels.
    pub pixels: RgbaImage,
}

/// A drawing primitive, in pixels of the frame.
#[derive(Debug, Clone)]
pub enum Item {
    /// A line of text.
    Text(Text),
    /// The pulsing pointer: a filled polygon.
    Pointer {
        /// Corners.
        points: Vec<(f32, f32)>,
        /// Colour.
        color: Rgb,
    },
    /// A QR code with its quiet zone on white, `module` px per module.
    Qr {
        /// Left.
        x: u32,
        /// Top.
        y: u32,
        /// Pixels per module (whole, for crisp edges).
        module: u32,
        /// The symbol.
        matrix: Arc<QrMatrix>,
    },
    /// The logo, scaled into a box.
    Logo {
        /// Left.
        x: f32,
        /// Top.
        y: f32,
        /// Width.
        w: f32,
        /// Height.
        h: f32,
        /// The image.
        logo: Arc<Logo>,
    },
}

/// A line of text; `y` is the baseline.
#[derive(Debug, Clone)]
pub struct Text {
    /// Left edge, or centre when `centred`.
    pub x: f32,
    /// Baseline.
    pub y: f32,
    /// Em size, px.
    pub size: f32,
    /// Bold or regular.
    pub bold: bool,
    /// Colour.
    pub color: Rgb,
    /// Centred on `x`.
    pub centred: bool,
    /// The text.
    pub text: String,
}

impl Text {
    /// The left edge and the width of the line.
    pub fn extent(&self) -> (f32, f32) {
        let w = text_width(&self.text, self.size, self.bold);
        (
            if self.centred {
                self.x - w / 2.0
            } else {
                self.x
            },
            w,
        )
    }
}

/// A laid-out frame.
#[derive(Debug, Clone)]
pub struct Frame {
    /// Width, px.
    pub width: u32,
    /// Height, px.
    pub height: u32,
    /// Background.
    pub background: Rgb,
    /// What is drawn, in order.
    pub items: Vec<Item>,
    /// Accessible description of the whole frame.
    pub label: String,
    /// The URL in the QR, if any.
    pub qr_url: Option<String>,
    /// The check-in answer shown instead of the usual screen, by its number.
    pub checkin: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use tapkit_core::qr::QUIET;

    fn content(pad: Pad) -> Content {
        Content {
            brand: "Shine Auto Detailing".into(),
            tagline: "Tap your phone here to book".into(),
            background: Rgb([11, 37, 69]),
            foreground: Rgb([255, 255, 255]),
            accent: Rgb([255, 200, 87]),
            qr_url: Some(
                "https://book.example.com/r/IRONGYM-7K2M9Q?k=12.29485731.0123456789abcdef".into(),
            ),
            short_url: "book.example.com/r/IRONGYM-7K2M9Q".into(),
            logo: None,
            pad,
        }
    }

    fn decode(img: &RgbaImage) -> Vec<String> {
        let grey = image::DynamicImage::ImageRgba8(img.clone()).to_luma8();
        let mut p = rqrr::PreparedImage::prepare(grey);
        p.detect_grids()
            .into_iter()
            .filter_map(|g| g.decode().ok().map(|(_, t)| t))
            .collect()
    }

    #[test]
    fn the_fonts_parse_and_measure() {
        assert!(FontRef::try_from_slice(BOLD_TTF).is_ok());
        assert!(FontRef::try_from_slice(REGULAR_TTF).is_ok());
        let w = text_width("Tap here", 100.0, true);
        assert!((300.0..500.0).contains(&w), "{w}");
        assert!(text_width("Tap here", 50.0, true) * 2.0 - w < 1.0);
    }

    #[test]
    fn every_size_and_orientation_shows_a_readable_qr_and_legible_text() {
        for (w, h) in [
            (800, 480),
            (480, 800),
            (1920, 1080),
            (1080, 1920),
            (1024, 600),
        ] {
            for pad in [Pad::Below, Pad::Left, Pad::Right] {
                let c = content(pad);
                let f = layout(&c, w, h);
                let img = f.raster();
                assert_eq!(
                    decode(&img),
                    vec![c.qr_url.clone().unwrap()],
                    "{w}x{h} {pad:?}"
                );
                // Legible from 1.5 m (about 2.5 mm of capital height per metre): on a 7"
                // 800×480 screen (~0.19 mm/px) the tagline's 24 px em has ~3.3 mm capitals,
                // the brand at least 38 px (~5 mm).
                let sizes: Vec<f32> = f
                    .items
                    .iter()
                    .filter_map(|i| match i {
                        Item::Text(Text { size, .. }) => Some(*size),
                        _ => None,
                    })
                    .collect();
                let min_side = w.min(h) as f32;
                assert!(
                    sizes.iter().all(|s| *s >= 0.04 * min_side - 0.01),
                    "{w}x{h} {pad:?}: {sizes:?}"
                );
                assert!(
                    sizes.iter().any(|s| *s >= 0.08 * min_side),
                    "{w}x{h} {pad:?}: a large brand: {sizes:?}"
                );
                assert!(
                    sizes
                        .iter()
                        .filter(|s| **s >= 0.05 * min_side - 0.01)
                        .count()
                        >= 2,
                    "{w}x{h} {pad:?}: brand and tagline legible: {sizes:?}"
                );
                for item in &f.items {
                    match item {
                        Item::Text(t) => {
                            let (left, tw) = t.extent();
                            let (text, y) = (&t.text, &t.y);
                            assert!(
                                left >= 0.0 && left + tw <= w as f32 + 0.5,
                                "{w}x{h} {pad:?}: {text:?} leaves the screen"
                            );
                            assert!(
                                *y > 0.0 && *y <= h as f32,
                                "{w}x{h} {pad:?}: {text:?} at y {y}"
                            );
                        }
                        Item::Qr {
                            x,
                            y,
                            module,
                            matrix,
                        } => {
                            let side = module * (matrix.size + 2 * QUIET) as u32;
                            assert!(*module >= 4, "{w}x{h}: {module} px modules are too small");
                            assert!(
                                x + side <= w && y + side <= h,
                                "{w}x{h} {pad:?}: the QR leaves the screen"
                            );
                        }
                        Item::Pointer { points, .. } => {
                            assert!(
                                points.iter().all(|(x, y)| *x >= -0.5
                                    && *y >= -0.5
                                    && *x <= w as f32 + 0.5
                                    && *y <= h as f32 + 0.5),
                                "{w}x{h} {pad:?}: pointer off screen"
                            );
                        }
                        Item::Logo { .. } => {}
                    }
                }
            }
        }
    }

    #[test]
    fn long_names_shrink_or_wrap_instead_of_overflowing() {
        let mut c = content(Pad::Below);
        c.brand = "Wonderful Mobile Detailing".into();
        c.tagline = "Tap your phone on the pad below to book your next detail with us".into();
        let f = layout(&c, 800, 480);
        let texts: Vec<&str> = f
            .items
            .iter()
            .filter_map(|i| match i {
                Item::Text(Text { text, .. }) => Some(text.as_str()),
                _ => None,
            })
            .collect();
        let all = texts.join(" ");
        for word in c.tagline.split(' ').chain(c.brand.split(' ')) {
            assert!(all.contains(word), "{word} is missing from {texts:?}");
        }
    }

    #[test]
    fn svg_escapes_text_and_carries_the_url() {
        let mut c = content(Pad::Below);
        c.brand = "Tom & Jerry's <Spa>".into();
        let svg = layout(&c, 800, 480).svg();
        assert!(svg.contains("Tom &amp; Jerry's &lt;Spa&gt;"));
        assert!(!svg.contains("<Spa>"));
        assert!(svg.contains(
            "data-qr=\"https://book.example.com/r/IRONGYM-7K2M9Q?k=12.29485731.0123456789abcdef\""
        ));
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
    }

    #[test]
    fn without_a_qr_the_frame_still_draws() {
        let mut c = content(Pad::Below);
        c.qr_url = None;
        let f = layout(&c, 800, 480);
        assert!(!f.items.iter().any(|i| matches!(i, Item::Qr { .. })));
        assert_eq!(f.raster().dimensions(), (800, 480));
    }
}
