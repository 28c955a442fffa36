//! Geometry: the CR80 card, its parts, and how cards are imposed on sheets. All in
//! millimetres with the origin at the bottom left, as in PDF.

use serde::Serialize;

/// CR80 / ISO 7810 ID-1 trim width, mm.
pub const TRIM_W: f32 = 85.6;
/// CR80 trim height, mm.
pub const TRIM_H: f32 = 54.0;
/// Points per millimetre.
pub const PT_PER_MM: f32 = 72.0 / 25.4;
/// Crop mark length, mm (Ghent Workgroup).
pub const MARK_LEN: f32 = 6.0;
/// Gap between the bleed edge and a crop mark, mm.
pub const MARK_GAP: f32 = 1.0;

/// An axis-aligned rectangle in mm.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Rect {
    /// Left.
    pub x: f32,
    /// Bottom.
    pub y: f32,
    /// Width.
    pub w: f32,
    /// Height.
    pub h: f32,
}

impl Rect {
    /// `[llx, lly, urx, ury]` in points, as PDF boxes are written.
    pub fn to_pt(self) -> [f32; 4] {
        let r = |v: f32| (v * PT_PER_MM * 100.0).round() / 100.0;
        [r(self.x), r(self.y), r(self.x + self.w), r(self.y + self.h)]
    }
}

/// Which output form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum SheetKind {
    /// One card per page: trim + bleed, no marks (what plastic-card makers ask for).
    PerCard,
    /// A4 portrait, 10-up (2 × 5, rows share cuts).
    A4,
    /// US Letter portrait, 8-up (2 × 4).
    Letter,
    /// SRA3 portrait, 21-up (3 × 7).
    Sra3,
}

/// An imposed sheet.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Imposition {
    /// Sheet width.
    pub sheet_w: f32,
    /// Sheet height.
    pub sheet_h: f32,
    /// Columns.
    pub cols: usize,
    /// Rows.
    pub rows: usize,
    /// Gap between columns (0 = shared cut).
    pub gutter_x: f32,
    /// Gap between rows (0 = shared cut).
    pub gutter_y: f32,
}

impl SheetKind {
    /// The sheet layout; `None` for one card per page.
    pub fn imposition(self) -> Option<Imposition> {
        Some(match self {
            Self::PerCard => return None,
            Self::A4 => Imposition {
                sheet_w: 210.0,
                sheet_h: 297.0,
                cols: 2,
                rows: 5,
                gutter_x: 8.0,
                gutter_y: 0.0,
            },
            Self::Letter => Imposition {
                sheet_w: 215.9,
                sheet_h: 279.4,
                cols: 2,
                rows: 4,
                gutter_x: 8.0,
                gutter_y: 8.0,
            },
            Self::Sra3 => Imposition {
                sheet_w: 320.0,
                sheet_h: 450.0,
                cols: 3,
                rows: 7,
                gutter_x: 6.0,
                gutter_y: 6.0,
            },
        })
    }

    /// Cards per page.
    pub fn per_page(self) -> usize {
        self.imposition().map_or(1, |i| i.cols * i.rows)
    }
}

/// Where one card sits on its page.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Slot {
    /// The trim box on the page.
    pub trim: Rect,
    /// The area the card may paint: its bleed, cut back where it shares a cut or a
    /// narrow gutter with a neighbour.
    pub clip: Rect,
}

impl Imposition {
    fn origin(&self) -> (f32, f32) {
        let block_w = self.cols as f32 * TRIM_W + (self.cols - 1) as f32 * self.gutter_x;
        let block_h = self.rows as f32 * TRIM_H + (self.rows - 1) as f32 * self.gutter_y;
        (
            (self.sheet_w - block_w) / 2.0,
            (self.sheet_h - block_h) / 2.0,
        )
    }

    /// The slot at column `col`, row `row` (row 0 at the top). `mirror` swaps columns,
    /// for backs printed duplex with a long-edge flip.
    pub fn slot(&self, col: usize, row: usize, bleed: f32, mirror: bool) -> Slot {
        let col = if mirror { self.cols - 1 - col } else { col };
        let (ox, oy) = self.origin();
        let x = ox + col as f32 * (TRIM_W + self.gutter_x);
        let y = oy + (self.rows - 1 - row) as f32 * (TRIM_H + self.gutter_y);
        let side = |inner: bool, gutter: f32| {
            if inner {
                bleed.min(gutter / 2.0)
            } else {
                bleed
            }
        };
        let left = side(col > 0, self.gutter_x);
        let right = side(col + 1 < self.cols, self.gutter_x);
        let top = side(row > 0, self.gutter_y);
        let bottom = side(row + 1 < self.rows, self.gutter_y);
        Slot {
            trim: Rect {
                x,
                y,
                w: TRIM_W,
                h: TRIM_H,
            },
            clip: Rect {
                x: x - left,
                y: y - bottom,
                w: TRIM_W + left + right,
                h: TRIM_H + top + bottom,
            },
        }
    }

    /// Crop marks as line segments ((x1, y1), (x2, y2)) in the sheet margins, one pair at
    /// every cut line, clear of the bleed.
    pub fn marks(&self, bleed: f32) -> Vec<((f32, f32), (f32, f32))> {
        let (ox, oy) = self.origin();
        let mut xs = Vec::new();
        for c in 0..self.cols {
            let x = ox + c as f32 * (TRIM_W + self.gutter_x);
            xs.push(x);
            xs.push(x + TRIM_W);
        }
        let mut ys = Vec::new();
        for r in 0..self.rows {
            let y = oy + r as f32 * (TRIM_H + self.gutter_y);
            ys.push(y);
            ys.push(y + TRIM_H);
        }
        xs.dedup_by(|a, b| (*a - *b).abs() < 0.01);
        ys.dedup_by(|a, b| (*a - *b).abs() < 0.01);
        let (top, bottom) = (self.sheet_h - oy, oy);
        let (left, right) = (ox, self.sheet_w - ox);
        let off = bleed + MARK_GAP;
        let mut m = Vec::new();
        for &x in &xs {
            m.push(((x, top + off), (x, top + off + MARK_LEN)));
            m.push(((x, bottom - off), (x, bottom - off - MARK_LEN)));
        }
        for &y in &ys {
            m.push(((left - off, y), (left - off - MARK_LEN, y)));
            m.push(((right + off, y), (right + off + MARK_LEN, y)));
        }
        m
    }
}

/// What a check needs to know about one printed card.
#[derive(Debug, Clone, Serialize)]
pub struct CardLayout {
    /// 1-based page number.
    pub page: usize,
    /// `front` or `back`.
    pub side: &'static str,
    /// Partner name.
    pub partner: String,
    /// Referral code.
    pub code: String,
    /// What the QR encodes (fronts only).
    pub qr_payload: Option<String>,
    /// Trim box on the page, mm.
    pub trim: Rect,
    /// Trim box, `[llx lly urx ury]` in pt.
    pub trim_pt: [f32; 4],
    /// Painted area (bleed, cut back at shared cuts), mm.
    pub clip: Rect,
    /// QR geometry (fronts only).
    pub qr: Option<QrLayout>,
    /// Partner name size after fitting, pt (fronts only).
    pub name_pt: Option<f32>,
}

/// QR geometry on the page.
#[derive(Debug, Clone, Serialize)]
pub struct QrLayout {
    /// The symbol with its quiet zone, mm on the page.
    pub with_quiet_zone: Rect,
    /// Module size, mm.
    pub module_mm: f32,
    /// Modules per side (without quiet zone).
    pub modules: usize,
    /// QR version.
    pub version: i16,
    /// Error correction level.
    pub ec: char,
}

/// Page boxes, pt.
#[derive(Debug, Clone, Serialize)]
pub struct PageBoxes {
    /// MediaBox.
    pub media: [f32; 4],
    /// BleedBox.
    pub bleed: [f32; 4],
    /// TrimBox.
    pub trim: [f32; 4],
}

/// The whole document's layout, for checks (`--layout-json`).
#[derive(Debug, Clone, Serialize)]
pub struct DocumentLayout {
    /// Output form.
    pub layout: SheetKind,
    /// Pages.
    pub pages: Vec<PageBoxes>,
    /// Every card side printed.
    pub cards: Vec<CardLayout>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sheets_fit_with_room_for_marks() {
        for kind in [SheetKind::A4, SheetKind::Letter, SheetKind::Sra3] {
            let imp = kind.imposition().unwrap();
            let (ox, oy) = imp.origin();
            assert!(ox >= 3.0 + MARK_GAP + MARK_LEN, "{kind:?} side margin {ox}");
            assert!(oy >= 3.0 + MARK_GAP + MARK_LEN, "{kind:?} top margin {oy}");
            for m in imp.marks(3.0) {
                for (x, y) in [m.0, m.1] {
                    assert!(
                        (0.0..=imp.sheet_w).contains(&x) && (0.0..=imp.sheet_h).contains(&y),
                        "{kind:?} mark off the sheet"
                    );
                }
            }
        }
        assert_eq!(SheetKind::A4.per_page(), 10);
        assert_eq!(SheetKind::Letter.per_page(), 8);
        assert_eq!(SheetKind::Sra3.per_page(), 21);
    }

    #[test]
    fn slots_do_not_paint_on_each_other() {
        for kind in [SheetKind::A4, SheetKind::Letter, SheetKind::Sra3] {
            let imp = kind.imposition().unwrap();
            let mut clips = Vec::new();
            for r in 0..imp.rows {
                for c in 0..imp.cols {
                    clips.push(imp.slot(c, r, 3.0, false).clip);
                }
            }
            for (i, a) in clips.iter().enumerate() {
                for b in &clips[i + 1..] {
                    let overlap_w = (a.x + a.w).min(b.x + b.w) - a.x.max(b.x);
                    let overlap_h = (a.y + a.h).min(b.y + b.h) - a.y.max(b.y);
                    assert!(
                        overlap_w <= 0.001 || overlap_h <= 0.001,
                        "{kind:?}: {a:?} overlaps {b:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn backs_mirror_for_a_long_edge_flip() {
        let imp = SheetKind::A4.imposition().unwrap();
        let front = imp.slot(0, 2, 3.0, false);
        let back = imp.slot(0, 2, 3.0, true);
        // Flipping the sheet about its vertical axis brings the back onto the front.
        assert!((back.trim.x - (imp.sheet_w - front.trim.x - TRIM_W)).abs() < 0.001);
        assert!((back.trim.y - front.trim.y).abs() < 0.001);
    }
}
