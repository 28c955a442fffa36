//! QR codes for cards and the portal: the module matrix (from `tapkit_core::qr`), a
//! 1024 px PNG, and a read-back check with an independent decoder (rqrr) so that no
//! unreadable code is ever exported.

use image::ImageEncoder;
pub use tapkit_core::qr::{QUIET, QrMatrix};

/// What the provisioner adds to a QR matrix: the read-back check and PNG export.
pub trait QrExport {
    /// Decodes a raster of this code with rqrr; `Some(text)` if it reads.
    fn read_back(&self, blank: usize) -> Option<String>;
    /// A square PNG of about `target` pixels: whole pixels per module (crisp edges) and
    /// the quiet zone around.
    fn png(&self, target: usize) -> Result<Vec<u8>, String>;
}

impl QrExport for QrMatrix {
    fn read_back(&self, blank: usize) -> Option<String> {
        // A full raster decode (finder detection included) costs ~3.8 ms per code at any
        // resolution: most of `print`'s time, kept on purpose (BENCHMARKS.md).
        let (side, img) = self.raster(2, blank);
        let mut prepared =
            rqrr::PreparedImage::prepare_from_greyscale(side, side, |x, y| img[y * side + x]);
        let grids = prepared.detect_grids();
        grids
            .first()
            .and_then(|g| g.decode().ok())
            .map(|(_, text)| text)
    }

    fn png(&self, target: usize) -> Result<Vec<u8>, String> {
        let px = (target / (self.size + 2 * QUIET)).max(1);
        let (code_side, code) = self.raster(px, 0);
        // Centre the code on a canvas of exactly `target` pixels (the rest is quiet zone).
        let side = target.max(code_side);
        let off = (side - code_side) / 2;
        let mut img = vec![255u8; side * side];
        for y in 0..code_side {
            img[(off + y) * side + off..(off + y) * side + off + code_side]
                .copy_from_slice(&code[y * code_side..(y + 1) * code_side]);
        }
        let mut out = Vec::new();
        let w = u32::try_from(side).map_err(|_| "image too large".to_owned())?;
        image::codecs::png::PngEncoder::new(&mut out)
            .write_image(&img, w, w, image::ExtendedColorType::L8)
            .map_err(|e| format!("PNG encoding failed: {e}"))?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_back_and_png_svg_are_well_formed() {
        let url = "https://book.example.com/r/IRONGYM-7K2M9Q?s=qr";
        let q = QrMatrix::encode(url, 'M').unwrap();
        assert_eq!(q.read_back(0).as_deref(), Some(url));
        let h = QrMatrix::encode(url, 'H').unwrap();
        assert_eq!(
            h.read_back(h.size / 4).as_deref(),
            Some(url),
            "level H survives a centred logo"
        );
        let png = q.png(1024).unwrap();
        let img = image::load_from_memory(&png).unwrap();
        assert_eq!((img.width(), img.height()), (1024, 1024));
        assert!(q.svg().starts_with("<svg") && q.svg().contains("viewBox=\"0 0 41 41\""));
    }
}
