//! QR symbols as module matrices: encoding (the qrcode crate), merged rectangles for
//! vector output, an 8-bit raster and an SVG. Shared by the provisioner's print sheets
//! and the counter display; pixels-to-file export stays with them.

use qrcode::{EcLevel, QrCode};

/// A QR symbol's module matrix (without quiet zone).
#[derive(Debug, Clone)]
pub struct QrMatrix {
    /// Modules per side.
    pub size: usize,
    /// Row-major dark modules.
    pub dark: Vec<bool>,
    /// QR version (1–40).
    pub version: i16,
    /// Error correction level letter.
    pub ec: char,
}

/// The quiet zone, in modules, on every side.
pub const QUIET: usize = 4;

impl QrMatrix {
    /// Encodes `data` at `ec` ('M', 'Q' or 'H').
    pub fn encode(data: &str, ec: char) -> Result<Self, String> {
        let level = match ec {
            'M' => EcLevel::M,
            'Q' => EcLevel::Q,
            'H' => EcLevel::H,
            _ => EcLevel::L,
        };
        let code = QrCode::with_error_correction_level(data.as_bytes(), level)
            .map_err(|e| format!("cannot make a QR code for {data:?}: {e}"))?;
        let size = code.width();
        let dark = code
            .to_colors()
            .into_iter()
            .map(|c| c == qrcode::Color::Dark)
            .collect();
        let version = match code.version() {
            qrcode::Version::Normal(v) | qrcode::Version::Micro(v) => v,
        };
        Ok(Self {
            size,
            dark,
            version,
            ec,
        })
    }

    /// Whether module (x, y) is dark.
    pub fn is_dark(&self, x: usize, y: usize) -> bool {
        self.dark[y * self.size + x]
    }

    /// Dark modules merged into rectangles (x, y, w, h in modules, y down): horizontal
    /// runs per row, stacked when the next row has the same run. Fewer path operators,
    /// smaller files, no hairline seams.
    pub fn rects(&self) -> Vec<(usize, usize, usize, usize)> {
        let mut open: Vec<(usize, usize, usize, usize)> = Vec::new();
        let mut done = Vec::new();
        for y in 0..self.size {
            let mut runs = Vec::new();
            let mut x = 0;
            while x < self.size {
                if self.is_dark(x, y) {
                    let start = x;
                    while x < self.size && self.is_dark(x, y) {
                        x += 1;
                    }
                    runs.push((start, x - start));
                } else {
                    x += 1;
                }
            }
            let mut next_open = Vec::new();
            for (sx, w) in runs {
                if let Some(i) = open
                    .iter()
                    .position(|r| r.0 == sx && r.2 == w && r.1 + r.3 == y)
                {
                    let mut r = open.swap_remove(i);
                    r.3 += 1;
                    next_open.push(r);
                } else {
                    next_open.push((sx, y, w, 1));
                }
            }
            done.append(&mut open);
            open = next_open;
        }
        done.append(&mut open);
        done
    }

    /// Renders to 8-bit grey pixels with the quiet zone, `px` pixels per module,
    /// optionally blanking a centred square of `blank` modules (where a logo sits).
    pub fn raster(&self, px: usize, blank: usize) -> (usize, Vec<u8>) {
        let side = (self.size + 2 * QUIET) * px;
        let mut img = vec![255u8; side * side];
        let lo = (self.size - blank.min(self.size)) / 2;
        let hi = lo + blank;
        for y in 0..self.size {
            for x in 0..self.size {
                let covered = blank > 0 && (lo..hi).contains(&x) && (lo..hi).contains(&y);
                if self.is_dark(x, y) && !covered {
                    for dy in 0..px {
                        let row = (QUIET * px + y * px + dy) * side;
                        let start = row + QUIET * px + x * px;
                        img[start..start + px].fill(0);
                    }
                }
            }
        }
        (side, img)
    }

    /// An SVG with one path of merged rectangles, sized in modules (scales cleanly).
    pub fn svg(&self) -> String {
        let side = self.size + 2 * QUIET;
        let mut d = String::new();
        for (x, y, w, h) in self.rects() {
            d += &format!("M{} {}h{}v{}h-{}z", x + QUIET, y + QUIET, w, h, w);
        }
        format!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {side} {side}\" width=\"1024\" height=\"1024\" shape-rendering=\"crispEdges\"><rect width=\"{side}\" height=\"{side}\" fill=\"#fff\"/><path fill=\"#000\" d=\"{d}\"/></svg>\n"
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rects_cover_exactly_the_dark_modules() {
        let q = QrMatrix::encode("https://example.com/r/0A1B2C", 'M').unwrap();
        assert_eq!((q.version, q.size), (3, 29));
        let mut cover = vec![false; q.size * q.size];
        for (x, y, w, h) in q.rects() {
            for yy in y..y + h {
                for xx in x..x + w {
                    assert!(!cover[yy * q.size + xx], "overlap at {xx},{yy}");
                    cover[yy * q.size + xx] = true;
                }
            }
        }
        assert_eq!(cover, q.dark);
        assert!(q.rects().len() < q.dark.iter().filter(|d| **d).count() / 2);
    }
}
