//! The two renderers of a laid-out [`Frame`]: [`Frame::svg`] for the page and
//! [`Frame::raster`] for `snapshot`, drawing the same items with the same font metrics.

use ab_glyph::{Font, point};
use image::{Rgba, RgbaImage};
use tapkit_core::qr::QUIET;

use super::{Frame, Item, Rgb, Text, em_scale, font, place_glyphs};

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
            "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {w} {h}\" data-w=\"{w}\" data-h=\"{h}\" data-qr=\"{}\"{} role=\"img\" aria-label=\"{}\" preserveAspectRatio=\"xMidYMid meet\"><rect width=\"{w}\" height=\"{h}\" fill=\"{}\"/>",
            esc(self.qr_url.as_deref().unwrap_or("")),
            self.checkin
                .map_or_else(String::new, |n| format!(" data-checkin=\"{n}\"")),
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
