//! Tapkit's print files, shared by `provisioner print` and the server's admin console
//! and partner portal: the print shop's files — an imposed or one-card-per-page PDF
//! (CR80 with bleed, TrimBox/BleedBox, crop marks, CMYK only, embedded subset fonts,
//! vector QR), a CSV of codes, a layout description for checks, and a 1024 px PNG and an
//! SVG of each partner's QR for the portal; and plain A4 text reports with embedded
//! fonts ([`report`], the server's payout report).

pub mod layout;
pub mod pdf;
pub mod pdfw;
pub mod qr;
pub mod report;
pub mod template;

use std::path::{Path, PathBuf};

use printpdf::ParsedFont;

use layout::{PT_PER_MM, SheetKind, TRIM_H, TRIM_W};
use qr::{QUIET, QrExport, QrMatrix};
use template::Template;

/// Smallest printed QR module, mm (phones at hand distance need ≥ 0.4; we keep margin).
pub const MIN_MODULE_MM: f32 = 0.5;
/// Smallest size the short URL is shrunk to, pt.
const MIN_URL_PT: f32 = 5.0;

/// Why printing failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum PrintError {
    /// The template or its files are unusable.
    #[error("{0}")]
    Template(String),
    /// Some partners' cards cannot be laid out; nothing was written.
    #[error("nothing was written; fix these partners first:\n{}", .0.join("\n"))]
    Partners(Vec<String>),
    /// The PDF could not be produced.
    #[error("the PDF could not be written: {0}")]
    Pdf(String),
    /// An output file could not be written.
    #[error("cannot write {path}: {reason}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
}

/// One partner's card to print.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardSpec {
    /// Name as printed.
    pub name: String,
    /// Referral code (already checked).
    pub code: String,
    /// Affiliate kind (`business`, `influencer`, `customer`).
    pub kind: String,
    /// The URL its chip carries (with the mirror placeholder when mirroring), listed in
    /// the per-card CSV for the card maker.
    pub nfc_url: String,
    /// A member card: its QR and printed URL name the member's page, `/m/{code}`,
    /// instead of the referral hop `/r/{code}`.
    pub member: bool,
}

impl CardSpec {
    /// What the card's QR encodes.
    pub fn qr_url(&self, domain: &str) -> String {
        if self.member {
            format!("https://{domain}/m/{}", self.code)
        } else {
            qr_url(domain, &self.code)
        }
    }

    /// The URL printed under the QR (no scheme).
    pub fn short_url(&self, domain: &str) -> String {
        format!(
            "{domain}/{}/{}",
            if self.member { "m" } else { "r" },
            self.code
        )
    }
}

/// Everything drawn on one partner's card.
#[derive(Debug, Clone)]
pub struct CardFace {
    /// Partner name.
    pub partner: String,
    /// Referral code.
    pub code: String,
    /// What the QR encodes: `https://{domain}/r/{code}?s=qr`.
    pub qr_payload: String,
    /// The QR.
    pub qr: QrMatrix,
    /// Module size, mm.
    pub module_mm: f32,
    /// The name, on one or two lines.
    pub name_lines: Vec<String>,
    /// The name's size after fitting, pt.
    pub name_pt: f32,
    /// The URL printed under the QR (no scheme).
    pub short_url: String,
    /// Its size, pt.
    pub url_pt: f32,
    /// Side of the logo square on the QR, in modules (0 when none).
    pub logo_modules: usize,
}

/// The QR payload of a printed card.
pub fn qr_url(domain: &str, code: &str) -> String {
    format!("https://{domain}/r/{code}?s=qr")
}

fn fits(font: &ParsedFont, lines: &[String], size: f32, width: f32) -> Result<bool, char> {
    for l in lines {
        if pdf::text_width_mm(font, l, size)? > width {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Fits the name into `width` mm: one line from `max` down to `min` pt, then two lines.
fn fit_name(
    font: &ParsedFont,
    name: &str,
    max: f32,
    min: f32,
    width: f32,
) -> Result<Option<(Vec<String>, f32)>, char> {
    let one = vec![name.to_owned()];
    let words: Vec<&str> = name.split_whitespace().collect();
    let mut two: Vec<Vec<String>> = (1..words.len())
        .map(|i| vec![words[..i].join(" "), words[i..].join(" ")])
        .collect();
    // Most balanced split first.
    two.sort_by_key(|l| l[0].chars().count().abs_diff(l[1].chars().count()));
    for candidate in std::iter::once(&one).chain(two.iter()) {
        let mut size = max;
        while size >= min - f32::EPSILON {
            if fits(font, candidate, size, width)? {
                return Ok(Some((candidate.clone(), size)));
            }
            size -= 0.25;
        }
    }
    Ok(None)
}

/// Prepares one partner's card, or says why it cannot be printed.
pub fn prepare(
    p: &CardSpec,
    domain: &str,
    t: &Template,
    bold: &ParsedFont,
    regular: &ParsedFont,
) -> Result<CardFace, String> {
    let code = p.code.clone();
    let payload = p.qr_url(domain);
    let ec = if t.front.logo_over_qr {
        'H'
    } else {
        t.front.qr_ec.chars().next().unwrap_or('M')
    };
    let qr = QrMatrix::encode(&payload, ec)?;
    let right_w = TRIM_W - t.brand.band_width_mm;
    let url_h = t.front.url_pt / PT_PER_MM + 1.0;
    let box_mm = t
        .front
        .qr_mm
        .min(right_w)
        .min(TRIM_H - t.card.safe_mm - url_h);
    let module_mm = (box_mm / (qr.size + 2 * QUIET) as f32 * 100.0).floor() / 100.0;
    if module_mm < MIN_MODULE_MM {
        return Err(format!(
            "{} ({code}): its QR would need {module_mm:.2} mm modules (at least {MIN_MODULE_MM} mm reads reliably); use a shorter domain or a larger qr_mm",
            p.name
        ));
    }
    let logo_modules = if t.front.logo_over_qr {
        (qr.size / 5) | 1
    } else {
        0
    };
    match qr.read_back(logo_modules) {
        Some(text) if text == payload => {}
        other => {
            return Err(format!(
                "{} ({code}): its QR does not read back as {payload} (decoder gave {other:?}); make the logo smaller or turn logo_over_qr off",
                p.name
            ));
        }
    }
    let band_text_w = t.brand.band_width_mm - 2.0 * t.card.safe_mm;
    let (name_lines, name_pt) = match fit_name(
        bold,
        &p.name,
        t.front.name_pt,
        t.front.name_min_pt,
        band_text_w,
    ) {
        Ok(Some(fit)) => fit,
        Ok(None) => {
            return Err(format!(
                "{} ({code}): the name does not fit on the card even at {} pt on two lines; shorten it in the partner list",
                p.name, t.front.name_min_pt
            ));
        }
        Err(ch) => {
            return Err(format!(
                "{} ({code}): the card font has no glyph for {ch:?}; use a template font that covers it",
                p.name
            ));
        }
    };
    let short_url = p.short_url(domain);
    let mut url_pt = t.front.url_pt;
    while pdf::text_width_mm(regular, &short_url, url_pt)
        .map_err(|ch| format!("{}: the font has no glyph for {ch:?}", p.name))?
        > right_w - 2.0
    {
        url_pt -= 0.25;
        if url_pt < MIN_URL_PT {
            return Err(format!(
                "{} ({code}): the URL {short_url} is too long to print under the QR; use a shorter domain",
                p.name
            ));
        }
    }
    Ok(CardFace {
        partner: p.name.clone(),
        code,
        qr_payload: payload,
        qr,
        module_mm,
        name_lines,
        name_pt,
        short_url,
        url_pt,
        logo_modules,
    })
}

/// The portal's QR of `payload`: plain (no logo), level M, a PNG of exactly 1024 px
/// and an SVG.
pub fn portal_qr(payload: &str) -> Result<(Vec<u8>, String), String> {
    let q = QrMatrix::encode(payload, 'M')?;
    Ok((q.png(1024)?, q.svg()))
}

/// What to produce.
#[derive(Debug, Clone)]
pub struct PrintJob {
    /// Output form.
    pub layout: SheetKind,
    /// The PDF.
    pub out: PathBuf,
    /// 1024 px PNG and SVG of each QR go here.
    pub png_dir: Option<PathBuf>,
    /// Layout description (JSON) goes here.
    pub layout_json: Option<PathBuf>,
    /// Print backs (per card: a back page after each front; sheets: a mirrored back
    /// sheet after each front sheet, for a long-edge duplex flip).
    pub backs: bool,
}

/// What was produced.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PrintReport {
    /// Cards.
    pub cards: usize,
    /// PDF pages.
    pub pages: usize,
    /// PDF size, bytes.
    pub pdf_bytes: usize,
    /// Files written.
    pub files: Vec<String>,
}

fn io_error(path: &Path) -> impl Fn(std::io::Error) -> PrintError + '_ {
    move |e| PrintError::Io {
        path: path.display().to_string(),
        reason: e.to_string(),
    }
}

fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), PrintError> {
    let tmp = path.with_extension("part");
    std::fs::write(&tmp, bytes).map_err(io_error(path))?;
    std::fs::rename(&tmp, path).map_err(io_error(path))
}

/// Lays out `cards` and renders the PDF in memory (no file is touched): the PDF bytes
/// and the layout. Every card is checked; if any cannot be printed, nothing is returned
/// and every problem is named. For large jobs use [`run`], which streams to a file.
pub fn render_pdf(
    cards: &[CardSpec],
    domain: &str,
    t: &Template,
    kind: SheetKind,
    backs: bool,
) -> Result<(Vec<u8>, layout::DocumentLayout), PrintError> {
    let mut out = Vec::new();
    let r = pdf::render_to(cards, domain, t, kind, backs, true, &mut out)?;
    Ok((out, r.layout))
}

/// Renders every output of `job` for `partners`.
pub fn run(
    partners: &[CardSpec],
    domain: &str,
    t: &Template,
    job: &PrintJob,
) -> Result<PrintReport, PrintError> {
    // The PDF is streamed into a temporary file beside the output and renamed only when
    // every card was drawn, so a failed job leaves no partial PDF under the real name.
    let tmp = job.out.with_extension("part");
    let rendered = (|| {
        let file = std::fs::File::create(&tmp).map_err(io_error(&job.out))?;
        let r = pdf::render_to(
            partners,
            domain,
            t,
            job.layout,
            job.backs,
            job.layout_json.is_some(),
            &file,
        )?;
        file.sync_all().map_err(io_error(&job.out))?;
        Ok(r)
    })();
    let rendered = match rendered {
        Ok(r) => r,
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
    };
    std::fs::rename(&tmp, &job.out).map_err(io_error(&job.out))?;
    let mut files = vec![job.out.display().to_string()];
    if job.layout == SheetKind::PerCard {
        // The form plastic-card makers ask for: artwork one card per page + a CSV that
        // ties each page to its code, its printed QR and the URL its chip gets.
        let csv_path = job.out.with_extension("csv");
        let mut w = csv::Writer::from_writer(Vec::new());
        let io = |e: csv::Error| PrintError::Io {
            path: csv_path.display().to_string(),
            reason: e.to_string(),
        };
        w.write_record(["page", "code", "name", "kind", "qr_url", "nfc_url"])
            .map_err(io)?;
        let pages_per_card = if job.backs { 2 } else { 1 };
        for (i, p) in partners.iter().enumerate() {
            w.write_record([
                (i * pages_per_card + 1).to_string(),
                p.code.clone(),
                p.name.clone(),
                p.kind.clone(),
                p.qr_url(domain),
                p.nfc_url.clone(),
            ])
            .map_err(io)?;
        }
        let bytes = w.into_inner().map_err(|e| PrintError::Io {
            path: csv_path.display().to_string(),
            reason: e.to_string(),
        })?;
        write_atomic(&csv_path, &bytes)?;
        files.push(csv_path.display().to_string());
    }
    if let Some(dir) = &job.png_dir {
        std::fs::create_dir_all(dir).map_err(io_error(dir))?;
        let threads = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(8);
        let written = pdf::par_map(partners, threads, |_, p| {
            let (png, svg) = portal_qr(&p.qr_url(domain)).map_err(PrintError::Template)?;
            let png_path = dir.join(format!("{}.png", p.code));
            write_atomic(&png_path, &png)?;
            let svg_path = dir.join(format!("{}.svg", p.code));
            write_atomic(&svg_path, svg.as_bytes())?;
            Ok::<_, PrintError>([png_path, svg_path])
        })?;
        for paths in written {
            files.extend(paths?.iter().map(|p| p.display().to_string()));
        }
    }
    if let Some(path) = &job.layout_json {
        let json = serde_json::to_vec_pretty(&rendered.layout)
            .map_err(|e| PrintError::Pdf(e.to_string()))?;
        write_atomic(path, &json)?;
        files.push(path.display().to_string());
    }
    Ok(PrintReport {
        cards: rendered.cards,
        pages: rendered.pages,
        pdf_bytes: usize::try_from(rendered.bytes).unwrap_or(usize::MAX),
        files,
    })
}
