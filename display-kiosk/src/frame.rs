//! The frame: one layout, two renderers. [`layout`] turns the display config and a
//! screen size into positioned primitives (text measured with the very font the page
//! uses), [`Frame::svg`] draws them for the browser and [`Frame::raster`] into pixels for
//! `display-kiosk snapshot`, so the PNG and the screen show the same thing.

use std::sync::Arc;

use ab_glyph::{Font, FontRef, PxScale, ScaleFont, point};
use image::{Rgba, RgbaImage};
use tapkit_core::qr::{QUIET, QrMatrix};

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
}

/// Splits `text` into at most `max_lines` lines no wider than `width` at the largest
/// size from `desired` down to `min` that allows it (the last resort is `min`).
fn fit(
    text: &str,
    width: f32,
    desired: f32,
    min: f32,
    max_lines: usize,
    bold: bool,
) -> (f32, Vec<String>) {
    let mut size = desired;
    loop {
        let lines = wrap(text, width, size, bold);
        let fits =
            lines.len() <= max_lines && lines.iter().all(|l| text_width(l, size, bold) <= width);
        if fits || size <= min {
            let mut lines = lines;
            lines.truncate(max_lines.max(1));
            return (size, lines);
        }
        size = (size * 0.92).max(min);
    }
}

fn wrap(text: &str, width: f32, size: f32, bold: bool) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    let mut cur = String::new();
    for word in text.split_whitespace() {
        let candidate = if cur.is_empty() {
            word.to_owned()
        } else {
            format!("{cur} {word}")
        };
        if cur.is_empty() || text_width(&candidate, size, bold) <= width {
            cur = candidate;
        } else {
            lines.push(std::mem::take(&mut cur));
            cur = word.to_owned();
        }
    }
    if !cur.is_empty() {
        lines.push(cur);
    }
    lines
}

/// An arrow of `size` px with its tip at (`tx`, `ty`), pointing toward `pad`.
fn arrow(tx: f32, ty: f32, size: f32, pad: Pad) -> Vec<(f32, f32)> {
    // Pointing down, tip at the origin: a chevron head on a shaft.
    let s = size;
    let down = [
        (0.0, 0.0),
        (-0.5 * s, -0.5 * s),
        (-0.18 * s, -0.5 * s),
        (-0.18 * s, -s),
        (0.18 * s, -s),
        (0.18 * s, -0.5 * s),
        (0.5 * s, -0.5 * s),
    ];
    down.iter()
        .map(|&(x, y)| match pad {
            Pad::Below => (tx + x, ty + y),
            Pad::Left => (tx - y, ty + x),
            Pad::Right => (tx + y, ty - x),
        })
        .collect()
}

/// Lays out `c` on a `width`×`height` screen.
pub fn layout(c: &Content, width: u32, height: u32) -> Frame {
    let (w, h) = (width as f32, height as f32);
    let short = w.min(h);
    let m = (0.05 * short).round();
    let mut items = Vec::new();
    let url_size = (0.05 * short).clamp(14.0, 56.0);
    let matrix = c
        .qr_url
        .as_deref()
        .and_then(|u| QrMatrix::encode(u, 'M').ok())
        .map(Arc::new);
    let landscape = w >= h * 1.15;
    let pointer = (0.2 * short).round();

    // The QR block: the code (whole pixels per module) and the short URL under it.
    let place_qr = |items: &mut Vec<Item>, max_side: f32, cx: f32, top: f32| -> f32 {
        let Some(matrix) = &matrix else { return 0.0 };
        let modules = (matrix.size + 2 * QUIET) as f32;
        let module = (max_side / modules).floor().max(1.0);
        let side = module * modules;
        let x = (cx - side / 2.0).round().max(0.0);
        items.push(Item::Qr {
            x: x as u32,
            y: top.round() as u32,
            module: module as u32,
            matrix: matrix.clone(),
        });
        side
    };

    if landscape {
        // Text and pointer on the pad's side, the QR on the other.
        let qr_max = (h - 2.0 * m - 1.6 * url_size).min(0.46 * w);
        let (qr_cx, col_x0, col_x1) = if c.pad == Pad::Right {
            (m + qr_max / 2.0, 2.0 * m + qr_max, w - m)
        } else {
            (w - m - qr_max / 2.0, m, w - 2.0 * m - qr_max)
        };
        let qr_top = ((h - qr_max - 1.6 * url_size) / 2.0).max(m);
        let side = place_qr(&mut items, qr_max, qr_cx, qr_top);
        url_line(
            &mut items,
            c,
            qr_cx,
            qr_top + side,
            qr_max.max(side) + m,
            url_size,
            short,
        );
        // The text column, with the pointer at the pad's edge.
        let (mut x0, mut x1, mut bottom) = (col_x0, col_x1, h - m);
        match c.pad {
            Pad::Below => {
                bottom = h - m - pointer - 0.5 * m;
                let cx = (x0 + x1) / 2.0;
                items.push(Item::Pointer {
                    points: arrow(cx, h - m, pointer, Pad::Below),
                    color: c.accent,
                });
            }
            Pad::Left => {
                items.push(Item::Pointer {
                    points: arrow(m, h / 2.0, pointer, Pad::Left),
                    color: c.accent,
                });
                x0 += pointer + 0.5 * m;
            }
            Pad::Right => {
                items.push(Item::Pointer {
                    points: arrow(w - m, h / 2.0, pointer, Pad::Right),
                    color: c.accent,
                });
                x1 -= pointer + 0.5 * m;
            }
        }
        text_column(&mut items, c, x0, x1, m, bottom, short);
    } else {
        // Portrait: brand and tagline on top, the QR in the middle, the pointer below.
        let cx = w / 2.0;
        let top_block = 0.42 * h;
        let bottom_block = pointer + 1.5 * m;
        let qr_max = (h - top_block - bottom_block - 1.6 * url_size).min(w - 2.0 * m);
        text_column(&mut items, c, m, w - m, m, top_block - 0.5 * m, short);
        let side = place_qr(&mut items, qr_max, cx, top_block);
        url_line(
            &mut items,
            c,
            cx,
            top_block + side,
            w - 2.0 * m,
            url_size,
            short,
        );
        let (tx, ty) = match c.pad {
            Pad::Below => (cx, h - m),
            Pad::Left => (m, h - m - pointer / 2.0),
            Pad::Right => (w - m, h - m - pointer / 2.0),
        };
        items.push(Item::Pointer {
            points: arrow(tx, ty, pointer, c.pad),
            color: c.accent,
        });
    }
    let label = match &c.qr_url {
        Some(_) => format!(
            "{}. {}. Or scan the QR code, or visit {}.",
            c.brand, c.tagline, c.short_url
        ),
        None => format!("{}. {}.", c.brand, c.tagline),
    };
    Frame {
        width,
        height,
        background: c.background,
        items,
        label,
        qr_url: c.qr_url.clone(),
    }
}

/// The short URL, centred on `cx` just under the QR whose bottom edge is at `top`.
fn url_line(
    items: &mut Vec<Item>,
    c: &Content,
    cx: f32,
    top: f32,
    width: f32,
    size: f32,
    short: f32,
) {
    let (us, lines) = fit(
        &c.short_url,
        width,
        size,
        (0.035 * short).max(12.0),
        1,
        false,
    );
    if let Some(line) = lines.into_iter().next() {
        items.push(Item::Text(Text {
            x: cx,
            y: top + 1.2 * us,
            size: us,
            bold: false,
            color: c.foreground,
            centred: true,
            text: line,
        }));
    }
}

/// Logo, brand and tagline stacked and centred vertically between `top` and `bottom`.
fn text_column(
    items: &mut Vec<Item>,
    c: &Content,
    x0: f32,
    x1: f32,
    top: f32,
    bottom: f32,
    short: f32,
) {
    let width = (x1 - x0).max(10.0);
    let (bs, brand) = fit(&c.brand, width, 0.16 * short, 0.06 * short, 2, true);
    let (ts, tag) = fit(&c.tagline, width, 0.085 * short, 0.05 * short, 3, false);
    let logo_h = if c.logo.is_some() { 0.2 * short } else { 0.0 };
    let gap = 0.25 * bs;
    let total = logo_h
        + if logo_h > 0.0 { gap } else { 0.0 }
        + brand.len() as f32 * bs * 1.15
        + gap
        + tag.len() as f32 * ts * 1.25;
    let mut y = top + ((bottom - top - total) / 2.0).max(0.0);
    let cx = (x0 + x1) / 2.0;
    if let Some(logo) = &c.logo {
        let (lw, lh) = (logo.pixels.width() as f32, logo.pixels.height() as f32);
        let scale = (logo_h / lh).min(width / lw);
        items.push(Item::Logo {
            x: cx - lw * scale / 2.0,
            y,
            w: lw * scale,
            h: lh * scale,
            logo: logo.clone(),
        });
        y += logo_h + gap;
    }
    for line in brand {
        y += bs * 1.15;
        items.push(Item::Text(Text {
            x: cx,
            y: y - 0.2 * bs,
            size: bs,
            bold: true,
            color: c.foreground,
            centred: true,
            text: line,
        }));
    }
    y += gap;
    for line in tag {
        y += ts * 1.25;
        items.push(Item::Text(Text {
            x: cx,
            y: y - 0.25 * ts,
            size: ts,
            bold: false,
            color: c.foreground,
            centred: true,
            text: line,
        }));
    }
}

/// Escapes text for XML and HTML (text and attribute values).
pub fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

impl Frame {
    /// The frame as an inline SVG for the page (fonts come from the page's @font-face).
    pub fn svg(&self) -> String {
        let (w, h) = (self.width, self.height);
        let mut s = format!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {w} {h}\" data-w=\"{w}\" data-h=\"{h}\" data-qr=\"{}\" role=\"img\" aria-label=\"{}\" preserveAspectRatio=\"xMidYMid meet\"><rect width=\"{w}\" height=\"{h}\" fill=\"{}\"/>",
            esc(self.qr_url.as_deref().unwrap_or("")),
            esc(&self.label),
            self.background.css()
        );
        for item in &self.items {
            match item {
                Item::Text(Text {
                    x,
                    y,
                    size,
                    bold,
                    color,
                    centred,
                    text,
                }) => {
                    s += &format!(
                        "<text x=\"{x:.1}\" y=\"{y:.1}\" font-family=\"TapkitSans, 'Liberation Sans', Arial, sans-serif\" font-size=\"{size:.1}\" font-weight=\"{}\" fill=\"{}\"{}>{}</text>",
                        if *bold { 700 } else { 400 },
                        color.css(),
                        if *centred {
                            " text-anchor=\"middle\""
                        } else {
                            ""
                        },
                        esc(text)
                    );
                }
                Item::Pointer { points, color } => {
                    let pts: Vec<String> = points
                        .iter()
                        .map(|(x, y)| format!("{x:.1},{y:.1}"))
                        .collect();
                    s += &format!(
                        "<polygon class=\"pulse\" points=\"{}\" fill=\"{}\"/>",
                        pts.join(" "),
                        color.css()
                    );
                }
                Item::Qr {
                    x,
                    y,
                    module,
                    matrix,
                } => {
                    let side = matrix.size + 2 * QUIET;
                    let mut d = String::new();
                    for (mx, my, mw, mh) in matrix.rects() {
                        d += &format!("M{} {}h{}v{}h-{}z", mx + QUIET, my + QUIET, mw, mh, mw);
                    }
                    s += &format!(
                        "<g transform=\"translate({x} {y}) scale({module})\" shape-rendering=\"crispEdges\"><rect width=\"{side}\" height=\"{side}\" fill=\"#fff\"/><path fill=\"#000\" d=\"{d}\"/></g>"
                    );
                }
                Item::Logo { x, y, w, h, logo } => {
                    s += &format!(
                        "<image x=\"{x:.1}\" y=\"{y:.1}\" width=\"{w:.1}\" height=\"{h:.1}\" href=\"data:image/png;base64,{}\"/>",
                        tapkit_core::base64::encode(&logo.png)
                    );
                }
            }
        }
        s += "</svg>";
        s
    }

    /// The frame in pixels (for `snapshot`).
    pub fn raster(&self) -> RgbaImage {
        let bg = self.background.0;
        let mut img =
            RgbaImage::from_pixel(self.width, self.height, Rgba([bg[0], bg[1], bg[2], 255]));
        for item in &self.items {
            match item {
                Item::Text(t) => draw_text(&mut img, t),
                Item::Pointer { points, color } => fill_polygon(&mut img, points, *color),
                Item::Qr {
                    x,
                    y,
                    module,
                    matrix,
                } => {
                    let (side, grey) = matrix.raster(*module as usize, 0);
                    for (i, v) in grey.iter().enumerate() {
                        let (px, py) = (*x + (i % side) as u32, *y + (i / side) as u32);
                        if px < img.width() && py < img.height() {
                            img.put_pixel(px, py, Rgba([*v, *v, *v, 255]));
                        }
                    }
                }
                Item::Logo { x, y, w, h, logo } => {
                    let (tw, th) = ((*w as u32).max(1), (*h as u32).max(1));
                    let scaled = image::imageops::resize(
                        &logo.pixels,
                        tw,
                        th,
                        image::imageops::FilterType::Triangle,
                    );
                    for (lx, ly, p) in scaled.enumerate_pixels() {
                        let (px, py) = (*x as u32 + lx, *y as u32 + ly);
                        if px < img.width() && py < img.height() {
                            let a = f32::from(p.0[3]) / 255.0;
                            let under = *img.get_pixel(px, py);
                            img.put_pixel(px, py, blend(under, [p.0[0], p.0[1], p.0[2]], a));
                        }
                    }
                }
            }
        }
        img
    }
}

fn blend(under: Rgba<u8>, over: [u8; 3], a: f32) -> Rgba<u8> {
    let mix = |u: u8, o: u8| (f32::from(u) * (1.0 - a) + f32::from(o) * a).round() as u8;
    Rgba([
        mix(under.0[0], over[0]),
        mix(under.0[1], over[1]),
        mix(under.0[2], over[2]),
        255,
    ])
}

fn draw_text(img: &mut RgbaImage, t: &Text) {
    let f = font(t.bold);
    let scale = em_scale(&f, t.size);
    let (left, _) = t.extent();
    for (id, offset) in place_glyphs(&t.text, t.size, t.bold).0 {
        let glyph = id.with_scale_and_position(scale, point(left + offset, t.y));
        if let Some(outline) = f.outline_glyph(glyph) {
            let b = outline.px_bounds();
            outline.draw(|gx, gy, cov| {
                let (px, py) = (
                    b.min.x as i64 + i64::from(gx),
                    b.min.y as i64 + i64::from(gy),
                );
                if px >= 0 && py >= 0 && (px as u32) < img.width() && (py as u32) < img.height() {
                    let under = *img.get_pixel(px as u32, py as u32);
                    img.put_pixel(px as u32, py as u32, blend(under, t.color.0, cov.min(1.0)));
                }
            });
        }
    }
}

/// Even-odd fill, sampled at pixel centres with 4×4 supersampling for smooth edges.
fn fill_polygon(img: &mut RgbaImage, pts: &[(f32, f32)], color: Rgb) {
    if pts.len() < 3 {
        return;
    }
    let (mut x0, mut y0, mut x1, mut y1) = (f32::MAX, f32::MAX, f32::MIN, f32::MIN);
    for &(x, y) in pts {
        (x0, y0, x1, y1) = (x0.min(x), y0.min(y), x1.max(x), y1.max(y));
    }
    let inside = |px: f32, py: f32| {
        let mut c = false;
        let mut j = pts.len() - 1;
        for i in 0..pts.len() {
            let (xi, yi) = pts[i];
            let (xj, yj) = pts[j];
            if (yi > py) != (yj > py) && px < (xj - xi) * (py - yi) / (yj - yi) + xi {
                c = !c;
            }
            j = i;
        }
        c
    };
    let (w, h) = (img.width() as f32, img.height() as f32);
    let mut py = y0.max(0.0).floor();
    while py < y1.min(h) {
        let mut px = x0.max(0.0).floor();
        while px < x1.min(w) {
            let mut hits = 0u32;
            for sy in 0..4 {
                for sx in 0..4 {
                    if inside(px + (sx as f32 + 0.5) / 4.0, py + (sy as f32 + 0.5) / 4.0) {
                        hits += 1;
                    }
                }
            }
            if hits > 0 {
                let under = *img.get_pixel(px as u32, py as u32);
                img.put_pixel(
                    px as u32,
                    py as u32,
                    blend(under, color.0, hits as f32 / 16.0),
                );
            }
            px += 1.0;
        }
        py += 1.0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
