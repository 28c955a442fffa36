//! Typesetting: places a report's text on pages, line by line, breaking pages and
//! cutting text to its room.

use std::collections::BTreeSet;

use super::{
    A4_H_MM, A4_W_MM, ASCENT, Block, COLUMN_GAP_MM, CONTINUED_PT, ELLIPSIS, MARGIN_MM, Placed,
    REPLACEMENTS, ReportFonts, ReportLayout, Row, Style, Table, TextReport, has_header,
};
use crate::layout::PT_PER_MM;

/// Room right of `x_mm` up to the right margin, mm.
fn room_right(x_mm: f32) -> f32 {
    (A4_W_MM - MARGIN_MM - x_mm).max(0.0)
}

struct Setter<'a> {
    fonts: &'a ReportFonts,
    pages: Vec<Vec<Placed>>,
    page: Vec<Placed>,
    /// Top of the next line, mm from the bottom.
    y: f32,
    /// Nothing but the continuation line is on this page yet.
    at_top: bool,
    running: String,
    replaced: BTreeSet<char>,
}

impl Setter<'_> {
    /// Advances of `s` in mm after replacing what the font lacks.
    fn shape(&mut self, s: &str, style: Style) -> Vec<(char, f32)> {
        let font = self.fonts.face(style.bold);
        let upm = f32::from(font.pdf_font_metrics.units_per_em.max(1));
        let scale = style.size_pt / upm / PT_PER_MM;
        let advance = |gid: u16| f32::from(font.get_horizontal_advance(gid)) * scale;
        let fallback = REPLACEMENTS.into_iter().find_map(|c| {
            font.lookup_glyph_index(u32::from(c))
                .map(|g| (c, advance(g)))
        });
        let mut out = Vec::with_capacity(s.len());
        for ch in s.chars() {
            let ch = if ch.is_whitespace() { ' ' } else { ch };
            match font.lookup_glyph_index(u32::from(ch)) {
                Some(g) if !ch.is_control() => out.push((ch, advance(g))),
                _ => {
                    self.replaced.insert(ch);
                    out.extend(fallback);
                }
            }
        }
        out
    }

    /// `s` cut to `width` mm (ending in "…" when cut), and its width.
    fn fit(&mut self, s: &str, style: Style, width: f32) -> (String, f32) {
        let glyphs = self.shape(s, style);
        let total: f32 = glyphs.iter().map(|g| g.1).sum();
        if total <= width {
            return (glyphs.iter().map(|g| g.0).collect(), total);
        }
        let ellipsis = self.shape(&ELLIPSIS.to_string(), style);
        let mut used: f32 = ellipsis.iter().map(|g| g.1).sum();
        let mut out = String::new();
        for (c, w) in glyphs {
            if used + w > width {
                break;
            }
            used += w;
            out.push(c);
        }
        let trimmed = out.trim_end().len();
        out.truncate(trimmed);
        out.extend(ellipsis.iter().map(|g| g.0));
        let width = self.shape(&out, style).iter().map(|g| g.1).sum();
        (out, width)
    }

    fn fits(&self, h: f32) -> bool {
        self.y - h >= MARGIN_MM - 0.01
    }

    fn break_page(&mut self) {
        self.pages.push(std::mem::take(&mut self.page));
        self.y = A4_H_MM - MARGIN_MM;
        let title = format!("{} (continued)", self.running);
        self.put(
            MARGIN_MM,
            Style::bold(CONTINUED_PT),
            &title,
            room_right(MARGIN_MM),
        );
        self.y -= Style::bold(CONTINUED_PT).line_mm() + 2.0;
        self.at_top = true;
    }

    /// Breaks the page unless `h` mm still fit (or the page is fresh, so that a block
    /// taller than a page still prints rather than looping).
    fn need(&mut self, h: f32) {
        if !self.fits(h) && !self.at_top {
            self.break_page();
        }
    }

    /// Places `s` on the current line without advancing.
    fn put(&mut self, x: f32, style: Style, s: &str, width: f32) {
        if s.is_empty() {
            return;
        }
        let (text, width_mm) = self.fit(s, style, width);
        self.page.push(Placed {
            x_mm: x,
            baseline_mm: self.y - style.size_pt * ASCENT / PT_PER_MM,
            style,
            text,
            width_mm,
        });
    }

    fn line(&mut self, x: f32, style: Style, s: &str) {
        self.need(style.line_mm());
        self.put(x, style, s, room_right(x));
        self.y -= style.line_mm();
        self.at_top = false;
    }

    fn paragraph(&mut self, x: f32, style: Style, s: &str) {
        let width = room_right(x);
        let mut line = String::new();
        for word in s.split_whitespace() {
            let candidate = if line.is_empty() {
                word.to_owned()
            } else {
                format!("{line} {word}")
            };
            let w: f32 = self.shape(&candidate, style).iter().map(|g| g.1).sum();
            if w > width && !line.is_empty() {
                self.line(x, style, &line);
                line = word.to_owned();
            } else {
                line = candidate;
            }
        }
        if !line.is_empty() {
            self.line(x, style, &line);
        }
    }

    fn table(&mut self, t: &Table) {
        let widths: Vec<f32> = t
            .columns
            .iter()
            .enumerate()
            .map(|(i, c)| match t.columns.get(i + 1) {
                Some(next) => (next.x_mm - c.x_mm - COLUMN_GAP_MM).max(0.0),
                None => room_right(c.x_mm),
            })
            .collect();
        let row_h = Style::regular(t.size_pt).line_mm() + t.row_gap_mm;
        let header = has_header(t).then(|| Row {
            cells: t.columns.iter().map(|c| c.title.clone()).collect(),
            bold: true,
        });
        let put_row = |s: &mut Self, r: &Row| {
            let style = Style {
                size_pt: t.size_pt,
                bold: r.bold,
            };
            for ((c, w), text) in t.columns.iter().zip(&widths).zip(&r.cells) {
                s.put(c.x_mm, style, text, *w);
            }
            s.y -= row_h;
            s.at_top = false;
        };
        let first = if header.is_some() { 2.0 } else { 1.0 };
        self.need(first * row_h);
        if let Some(h) = &header {
            put_row(self, h);
        }
        for r in &t.rows {
            if !self.fits(row_h) {
                self.break_page();
                if let Some(h) = &header {
                    put_row(self, h);
                }
            }
            put_row(self, r);
        }
        if t.rows.is_empty()
            && let Some(empty) = &t.empty
        {
            let x = t.columns.first().map_or(MARGIN_MM, |c| c.x_mm);
            self.line(x, Style::regular(t.size_pt), empty);
        }
    }
}

/// Places every piece of text of `report` on A4 pages.
pub(super) fn set(report: &TextReport, fonts: &ReportFonts) -> ReportLayout {
    let mut s = Setter {
        fonts,
        pages: Vec::new(),
        page: Vec::new(),
        y: A4_H_MM - MARGIN_MM,
        at_top: true,
        running: String::new(),
        replaced: BTreeSet::new(),
    };
    for (ci, chapter) in report.chapters.iter().enumerate() {
        if ci > 0 {
            s.pages.push(std::mem::take(&mut s.page));
        }
        s.y = A4_H_MM - MARGIN_MM;
        s.at_top = true;
        s.running = chapter.running_title.clone();
        for (bi, block) in chapter.blocks.iter().enumerate() {
            match block {
                Block::Line { text, style, x_mm } => s.line(*x_mm, *style, text),
                Block::Heading { text, style } => {
                    let next = chapter.blocks[bi + 1..]
                        .iter()
                        .find(|b| !matches!(b, Block::Space(_)))
                        .map_or(0.0, Block::lead_mm);
                    let gap: f32 = chapter.blocks[bi + 1..]
                        .iter()
                        .map_while(|b| match b {
                            Block::Space(mm) => Some(*mm),
                            _ => None,
                        })
                        .sum();
                    s.need(style.line_mm() + gap + next);
                    s.line(MARGIN_MM, *style, text);
                }
                Block::Paragraph { text, style, x_mm } => s.paragraph(*x_mm, *style, text),
                Block::Space(mm) => {
                    if !s.at_top {
                        s.y = (s.y - mm).max(MARGIN_MM);
                    }
                }
                Block::Table(t) => s.table(t),
            }
        }
    }
    s.pages.push(s.page);
    ReportLayout {
        pages: s.pages,
        replaced: s.replaced.into_iter().collect(),
    }
}
