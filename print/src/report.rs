//! Plain multi-page A4 text reports (the payout report, and any later one) with embedded
//! fonts, so every name prints as written.
//!
//! A [`TextReport`] is plain data: chapters, each starting on a new page, made of
//! lines, headings, wrapped paragraphs, spaces and tables of columns at given x
//! positions. [`layout`] places every piece of text on pages (breaking pages
//! automatically and starting each continuation page with "<running title>
//! (continued)" and the table's column titles again); [`render`] draws that layout
//! with printpdf, the fonts embedded as subsets (CID TrueType, Identity-H, with a
//! ToUnicode map, so text can be copied and searched).
//!
//! Text never overflows: a cell or line wider than its room is cut at the font's real
//! glyph widths and ends with "…". Characters the font has no glyph for never panic
//! and never fail the report: they print as the first of U+FFFD "�", U+25A1 "□" or "?"
//! that the font has (Liberation Sans has no U+FFFD, so "□") and are listed in
//! [`ReportLayout::replaced`] so callers can log them.
//! Whitespace controls (tab, newline) print as a space. The built-in Liberation Sans
//! covers Latin-1, Latin Extended-A, Greek and Cyrillic.

use std::sync::LazyLock;

use printpdf::{
    FontId, Mm, Op, ParsedFont, PdfDocument, PdfFontHandle, PdfPage, PdfSaveOptions, Point, Pt,
    TextItem,
};

use crate::PrintError;
use crate::layout::PT_PER_MM;
use crate::template::{DEFAULT_BOLD, DEFAULT_REGULAR};

/// A4 width, mm.
pub const A4_W_MM: f32 = 210.0;
/// A4 height, mm.
pub const A4_H_MM: f32 = 297.0;
/// Margin on every side, mm.
pub const MARGIN_MM: f32 = 18.0;
/// Space kept between a table cell and the next column, mm.
pub const COLUMN_GAP_MM: f32 = 2.0;
/// Line advance as a multiple of the font size.
const LEADING: f32 = 1.3;
/// Baseline below the top of a line, as a multiple of the font size (Liberation Sans
/// accented capitals reach 0.9 em).
const ASCENT: f32 = 0.9;
/// Size of the "(continued)" line on continuation pages, pt.
const CONTINUED_PT: f32 = 10.0;
/// Marks text cut to fit.
const ELLIPSIS: char = '…';
/// Printed for a character the font lacks: the first of these the font has.
const REPLACEMENTS: [char; 3] = ['\u{FFFD}', '\u{25A1}', '?'];

/// Size and weight of a piece of text.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Style {
    /// Font size, pt.
    pub size_pt: f32,
    /// Bold face instead of regular.
    pub bold: bool,
}

impl Style {
    /// Regular face at `size_pt`.
    pub const fn regular(size_pt: f32) -> Self {
        Self {
            size_pt,
            bold: false,
        }
    }

    /// Bold face at `size_pt`.
    pub const fn bold(size_pt: f32) -> Self {
        Self {
            size_pt,
            bold: true,
        }
    }

    fn line_mm(self) -> f32 {
        self.size_pt * LEADING / PT_PER_MM
    }
}

/// A column of a [`Table`].
#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    /// Left edge from the page's left edge, mm. A cell may use the room up to the next
    /// column (less [`COLUMN_GAP_MM`]), the last one up to the right margin.
    pub x_mm: f32,
    /// Title in the bold header row; a table whose titles are all empty has no header.
    pub title: String,
}

impl Column {
    /// A column at `x_mm` titled `title`.
    pub fn new(x_mm: f32, title: &str) -> Self {
        Self {
            x_mm,
            title: title.to_owned(),
        }
    }
}

/// A row of a [`Table`]: one cell per column (missing cells are empty, extra ones are
/// not printed).
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// Cell texts.
    pub cells: Vec<String>,
    /// Print the row in bold.
    pub bold: bool,
}

/// Rows of text in columns; its header row is repeated on each continuation page.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    /// Columns, left to right.
    pub columns: Vec<Column>,
    /// Font size of the header and the rows, pt.
    pub size_pt: f32,
    /// Extra space after each row, mm.
    pub row_gap_mm: f32,
    /// The rows.
    pub rows: Vec<Row>,
    /// Printed under the header when there are no rows.
    pub empty: Option<String>,
}

/// One piece of a chapter, placed below the previous one.
#[derive(Debug, Clone, PartialEq)]
pub enum Block {
    /// One line starting at `x_mm`, cut to the right margin.
    Line {
        /// The text.
        text: String,
        /// Its style.
        style: Style,
        /// Left edge, mm.
        x_mm: f32,
    },
    /// One line at the left margin that is never left alone at the bottom of a page: it
    /// moves to the next page unless the first line of the following block fits too.
    Heading {
        /// The text.
        text: String,
        /// Its style.
        style: Style,
    },
    /// Text wrapped at spaces between `x_mm` and the right margin.
    Paragraph {
        /// The text.
        text: String,
        /// Its style.
        style: Style,
        /// Left edge, mm.
        x_mm: f32,
    },
    /// Vertical space, mm (dropped at the top of a page).
    Space(f32),
    /// A table.
    Table(Table),
}

impl Block {
    /// A line at the left margin.
    pub fn line(style: Style, text: &str) -> Self {
        Self::Line {
            text: text.to_owned(),
            style,
            x_mm: MARGIN_MM,
        }
    }

    /// A heading (kept with what follows).
    pub fn heading(style: Style, text: &str) -> Self {
        Self::Heading {
            text: text.to_owned(),
            style,
        }
    }

    /// A wrapped paragraph at the left margin.
    pub fn paragraph(style: Style, text: &str) -> Self {
        Self::Paragraph {
            text: text.to_owned(),
            style,
            x_mm: MARGIN_MM,
        }
    }

    /// Height of this block's first line (what a heading above it keeps with it), mm.
    fn lead_mm(&self) -> f32 {
        match self {
            Self::Line { style, .. } | Self::Heading { style, .. } => style.line_mm(),
            Self::Paragraph { style, .. } => style.line_mm(),
            Self::Space(_) => 0.0,
            Self::Table(t) => {
                let line = Style::regular(t.size_pt).line_mm() + t.row_gap_mm;
                if has_header(t) { 2.0 * line } else { line }
            }
        }
    }
}

/// A part of a report that starts on a new page.
#[derive(Debug, Clone, PartialEq)]
pub struct Chapter {
    /// Printed as "<running title> (continued)" at the top of its continuation pages.
    pub running_title: String,
    /// Its content, top to bottom.
    pub blocks: Vec<Block>,
}

/// A whole report.
#[derive(Debug, Clone, PartialEq)]
pub struct TextReport {
    /// The PDF's title (document metadata).
    pub title: String,
    /// Its chapters; each starts on a new page.
    pub chapters: Vec<Chapter>,
}

/// The regular and bold faces a report is set in.
#[derive(Debug, Clone)]
pub struct ReportFonts {
    regular: ParsedFont,
    bold: ParsedFont,
}

static BUILTIN: LazyLock<ReportFonts> = LazyLock::new(|| {
    ReportFonts::from_bytes(DEFAULT_REGULAR, DEFAULT_BOLD)
        // Compiled-in files, parsed by `builtin_fonts_cover_latin_names` in every test
        // run: failing here is a broken build, not a runtime condition.
        .expect("the built-in Liberation Sans fonts parse")
});

impl ReportFonts {
    /// Parses TrueType/OpenType regular and bold faces.
    pub fn from_bytes(regular: &[u8], bold: &[u8]) -> Result<Self, PrintError> {
        let parse = |b: &[u8], which: &str| {
            ParsedFont::from_bytes(b, 0, &mut Vec::new()).ok_or_else(|| {
                PrintError::Template(format!(
                    "the report's {which} font is not a TrueType/OpenType font"
                ))
            })
        };
        Ok(Self {
            regular: parse(regular, "regular")?,
            bold: parse(bold, "bold")?,
        })
    }

    /// Liberation Sans Regular and Bold (SIL OFL 1.1, `assets/fonts`), built into the
    /// binary and parsed once.
    pub fn builtin() -> &'static Self {
        &BUILTIN
    }

    fn face(&self, bold: bool) -> &ParsedFont {
        if bold { &self.bold } else { &self.regular }
    }
}

/// A piece of text on a page.
#[derive(Debug, Clone, PartialEq)]
pub struct Placed {
    /// Left edge, mm from the page's left edge.
    pub x_mm: f32,
    /// Baseline, mm from the page's bottom edge.
    pub baseline_mm: f32,
    /// Its style.
    pub style: Style,
    /// The text as printed (after cutting and replacing missing characters).
    pub text: String,
    /// Its width, mm.
    pub width_mm: f32,
}

/// Where every piece of text of a report goes.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportLayout {
    /// Pages, each a list of texts.
    pub pages: Vec<Vec<Placed>>,
    /// Characters the fonts lack, printed as "□" (see the module docs; sorted, each
    /// once).
    pub replaced: Vec<char>,
}

/// A rendered report.
#[derive(Debug, Clone)]
pub struct RenderedReport {
    /// The PDF.
    pub pdf: Vec<u8>,
    /// Its layout.
    pub layout: ReportLayout,
}

fn has_header(t: &Table) -> bool {
    t.columns.iter().any(|c| !c.title.is_empty())
}

/// Places every piece of text of `report` on A4 pages (see the module docs).
pub fn layout(report: &TextReport, fonts: &ReportFonts) -> ReportLayout {
    setter::set(report, fonts)
}

/// Lays out and draws `report` as a PDF with `fonts` embedded as subsets.
pub fn render(report: &TextReport, fonts: &ReportFonts) -> RenderedReport {
    let layout = layout(report, fonts);
    let mut doc = PdfDocument::new(&report.title);
    let now = printpdf::OffsetDateTime::now_utc();
    doc.metadata.info.creation_date = now;
    doc.metadata.info.modification_date = now;
    doc.metadata.info.metadata_date = now;
    doc.metadata.info.creator = "Tapkit".into();
    let regular: FontId = doc.add_font(&fonts.regular);
    let bold: FontId = doc.add_font(&fonts.bold);
    let pages = layout
        .pages
        .iter()
        .map(|items| {
            let mut ops = Vec::with_capacity(items.len() * 5);
            for p in items {
                ops.push(Op::StartTextSection);
                ops.push(Op::SetFont {
                    font: PdfFontHandle::External(if p.style.bold {
                        bold.clone()
                    } else {
                        regular.clone()
                    }),
                    size: Pt(p.style.size_pt),
                });
                ops.push(Op::SetTextCursor {
                    pos: Point::new(Mm(p.x_mm), Mm(p.baseline_mm)),
                });
                ops.push(Op::ShowText {
                    items: vec![TextItem::Text(p.text.clone())],
                });
                ops.push(Op::EndTextSection);
            }
            PdfPage::new(Mm(A4_W_MM), Mm(A4_H_MM), ops)
        })
        .collect();
    doc.with_pages(pages);
    let opts = PdfSaveOptions {
        subset_fonts: true,
        ..Default::default()
    };
    // printpdf writes an empty GTS_PDFXVersion into every document's Info, which readers
    // take as a PDF/X claim (`pdfinfo`: "PDF subtype: PDF/X"); a report is not one.
    let mut lo = doc.to_lopdf_document(&opts, &mut Vec::new());
    if let Ok(info) = lo
        .trailer
        .get(b"Info")
        .and_then(lopdf::Object::as_reference)
        && let Ok(dict) = lo.get_object_mut(info).and_then(lopdf::Object::as_dict_mut)
    {
        dict.remove(b"GTS_PDFXVersion");
    }
    lo.compress();
    let mut pdf = Vec::new();
    if lo.save_to(&mut pdf).is_err() {
        // Writing to memory has no I/O to fail; should lopdf refuse anyway, printpdf's
        // own serialisation is the same document with the empty claim left in.
        pdf = doc.save(&opts, &mut Vec::new());
    }
    RenderedReport { pdf, layout }
}

mod setter;
#[cfg(test)]
mod tests;
