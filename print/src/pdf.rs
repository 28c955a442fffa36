//! The print-shop PDF, streamed: each sheet is checked, drawn and written as it is
//! produced, so a job of any size runs in bounded memory (issue 23: 100,000 cards took
//! 4.4 GB when printpdf held the whole document).
//!
//! The cards of a batch of sheets are prepared on every core (the QR read-back is most
//! of the work), then written in order by [`pdfw::PdfWriter`]. The file is PDF/X-1a:2001
//! as the print shop expects (`shared/docs/print-reference.md`): PDF 1.3, CMYK only,
//! MediaBox/BleedBox/TrimBox on every page, the FOGRA39 output intent, embedded subset
//! fonts (with ToUnicode, so names stay searchable), vector QR codes.

use std::collections::BTreeSet;
use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};

use printpdf::ParsedFont;

use super::layout::{
    CardLayout, DocumentLayout, PageBoxes, QrLayout, Rect, SheetKind, Slot, TRIM_H, TRIM_W,
};
use super::pdfw::{Content, EmbeddedFont, ObjId, PdfWriter, deflate, text_string};
use super::qr::QUIET;
use super::template::{Cmyk, Template};
use super::{CardFace, CardSpec, PrintError};

/// Registration colour: every separation, for crop marks only.
const REGISTRATION: Cmyk = [100.0, 100.0, 100.0, 100.0];
/// Resource names of the two fonts and the logo on every page.
const BOLD: &str = "F1";
const REGULAR: &str = "F2";

/// Width of `s` in mm at `size` pt; `Err(ch)` for a character the font lacks.
pub fn text_width_mm(font: &ParsedFont, s: &str, size: f32) -> Result<f32, char> {
    let upm = f32::from(font.pdf_font_metrics.units_per_em.max(1));
    let mut units = 0.0;
    for ch in s.chars() {
        let gid = font.lookup_glyph_index(u32::from(ch)).ok_or(ch)?;
        units += f32::from(font.get_horizontal_advance(gid));
    }
    Ok(units / upm * size / super::layout::PT_PER_MM)
}

/// The logo as DeviceCMYK samples (width, height, data). Transparent pixels get a colour
/// key that no opaque pixel uses and are masked out with `/Mask` (PDF 1.3 colour-key
/// masking, not soft-mask transparency, so PDF/X-1a stays possible).
fn logo_cmyk(png: &[u8]) -> Result<(usize, usize, Vec<u8>), String> {
    let img = image::load_from_memory(png)
        .map_err(|e| format!("the logo is not a readable PNG: {e}"))?
        .to_rgba8();
    let (w, h) = (img.width() as usize, img.height() as usize);
    let mut data = Vec::with_capacity(w * h * 4);
    for p in img.pixels() {
        let [r, g, b, a] = p.0;
        if a < 128 {
            data.extend_from_slice(&LOGO_KEY);
            continue;
        }
        let (r, g, b) = (
            f32::from(r) / 255.0,
            f32::from(g) / 255.0,
            f32::from(b) / 255.0,
        );
        let k = 1.0 - r.max(g).max(b);
        let f = |v: f32| {
            if k >= 1.0 {
                0.0
            } else {
                (1.0 - v - k) / (1.0 - k)
            }
        };
        // Values are in 0..=1, so the casts cannot overflow.
        let px = [
            (f(r) * 255.0).round() as u8,
            (f(g) * 255.0).round() as u8,
            (f(b) * 255.0).round() as u8,
            (k * 255.0).round() as u8,
        ];
        data.extend_from_slice(if px == LOGO_KEY { &[0, 0, 0, 2] } else { &px });
    }
    Ok((w, h, data))
}

const LOGO_KEY: [u8; 4] = [0, 0, 0, 1];

/// What every page shares: the subset fonts (for drawing) and the logo's size.
struct Shared<'a> {
    t: &'a Template,
    bold_font: &'a ParsedFont,
    regular_font: &'a ParsedFont,
    bold: EmbeddedFont,
    regular: EmbeddedFont,
    /// Logo aspect ratio (height / width), when there is a logo.
    logo: Option<f32>,
}

impl Shared<'_> {
    /// Draws the logo `size_mm` wide with its lower left at (`x`, `y`).
    fn logo(&self, c: &mut Content, x: f32, y: f32, size_mm: f32) {
        if let Some(aspect) = self.logo {
            let w = size_mm * super::layout::PT_PER_MM;
            c.op("q");
            c.transform(w, w * aspect, x, y);
            c.op("/Logo Do");
            c.op("Q");
        }
    }

    fn bold_width(&self, s: &str, size: f32) -> f32 {
        text_width_mm(self.bold_font, s, size).unwrap_or(0.0)
    }

    fn regular_width(&self, s: &str, size: f32) -> f32 {
        text_width_mm(self.regular_font, s, size).unwrap_or(0.0)
    }
}

/// Starts a card: clip to its slot, move to its trim origin, paint `background` (card
/// coordinates) in the band colour. The caller ends it with `Q`.
fn begin_card(c: &mut Content, t: &Template, slot: Slot, background: Rect) {
    c.op("q");
    c.rect_mm(slot.clip.x, slot.clip.y, slot.clip.w, slot.clip.h);
    c.op("W n");
    c.transform(1.0, 1.0, slot.trim.x, slot.trim.y);
    c.fill(t.brand.band_cmyk);
    c.rect_mm(background.x, background.y, background.w, background.h);
    c.op("f");
}

/// Draws the front of one card into `slot`, its QR as the form `/Q{i}`; returns the QR
/// form's content and the QR's layout.
fn front(
    c: &mut Content,
    s: &Shared,
    face: &CardFace,
    slot: Slot,
    i: usize,
) -> (Vec<u8>, QrLayout) {
    let t = s.t;
    let b = t.card.bleed_mm;
    let safe = t.card.safe_mm;
    let band = Rect {
        x: -b,
        y: -b,
        w: t.brand.band_width_mm + b,
        h: TRIM_H + 2.0 * b,
    };
    begin_card(c, t, slot, band);
    // Logo, name, tagline on the band.
    let mut y = TRIM_H - safe;
    if !t.front.logo_over_qr && s.logo.is_some() {
        s.logo(c, safe, y - t.front.logo_mm, t.front.logo_mm);
        y -= t.front.logo_mm + 3.0;
    }
    let pt_mm = face.name_pt / super::layout::PT_PER_MM;
    let line_h = pt_mm * 1.15;
    c.fill(t.brand.on_band_cmyk);
    for line in &face.name_lines {
        y -= pt_mm * 0.75;
        c.text(&s.bold, BOLD, face.name_pt, safe, y, line);
        y -= line_h - pt_mm * 0.75;
    }
    c.text(
        &s.regular,
        REGULAR,
        t.front.tagline_pt,
        safe,
        safe + 0.5,
        &t.front.tagline,
    );
    // QR: a form of 100 % K vector modules on white, quiet zone inside the trim.
    let q = &face.qr;
    let side = q.size + 2 * QUIET;
    let m = face.module_mm;
    let box_mm = side as f32 * m;
    let right_w = TRIM_W - t.brand.band_width_mm;
    let qx = t.brand.band_width_mm + (right_w - box_mm) / 2.0;
    let qy = TRIM_H
        - box_mm
        - (TRIM_H - box_mm - safe - face.url_pt / super::layout::PT_PER_MM - 1.0).max(0.0) / 2.0;
    let origin_x = qx + QUIET as f32 * m;
    let origin_top = qy + box_mm - QUIET as f32 * m;
    // The form is drawn in module units, y up, its origin at the code's lower left.
    let mut form = Content::default();
    form.fill(t.brand.text_cmyk);
    let n = q.size as f32;
    for (x, yy, w, h) in q.rects() {
        form.rect_units(x as f32, n - (yy + h) as f32, w as f32, h as f32);
    }
    form.op("f");
    let unit = m * super::layout::PT_PER_MM;
    c.op("q");
    c.transform(unit, unit, origin_x, origin_top - n * m);
    c.op(&format!("/Q{i} Do"));
    c.op("Q");
    if t.front.logo_over_qr {
        let sq = face.logo_modules as f32 * m;
        let lx = origin_x + (n * m - sq) / 2.0;
        let ly = origin_top - (n * m + sq) / 2.0;
        c.fill([0.0; 4]);
        c.rect_mm(lx, ly, sq, sq);
        c.op("f");
        s.logo(c, lx + sq * 0.1, ly + sq * 0.1, sq * 0.8);
    }
    // The short URL under the QR, centred.
    let url_w = s.regular_width(&face.short_url, face.url_pt);
    let ux = t.brand.band_width_mm + (right_w - url_w) / 2.0;
    c.fill(t.brand.text_cmyk);
    c.text(&s.regular, REGULAR, face.url_pt, ux, safe, &face.short_url);
    c.op("Q");
    (
        form.0,
        QrLayout {
            with_quiet_zone: Rect {
                x: slot.trim.x + qx,
                y: slot.trim.y + qy,
                w: box_mm,
                h: box_mm,
            },
            module_mm: m,
            modules: q.size,
            version: q.version,
            ec: q.ec,
        },
    )
}

/// Draws the back of one card.
fn back(c: &mut Content, s: &Shared, face: &CardFace, slot: Slot) {
    let t = s.t;
    let b = t.card.bleed_mm;
    begin_card(
        c,
        t,
        slot,
        Rect {
            x: -b,
            y: -b,
            w: TRIM_W + 2.0 * b,
            h: TRIM_H + 2.0 * b,
        },
    );
    c.fill(t.brand.on_band_cmyk);
    let w = s.bold_width(&t.back.text, t.back.text_pt);
    c.text(
        &s.bold,
        BOLD,
        t.back.text_pt,
        (TRIM_W - w) / 2.0,
        TRIM_H / 2.0,
        &t.back.text,
    );
    if t.back.show_code {
        let code = format!("Code {}", face.code);
        let w = s.regular_width(&code, 7.0);
        c.text(
            &s.regular,
            REGULAR,
            7.0,
            (TRIM_W - w) / 2.0,
            t.card.safe_mm + 1.0,
            &code,
        );
    }
    c.op("Q");
}

fn marks(c: &mut Content, imp: &super::layout::Imposition, bleed: f32) {
    c.stroke(REGISTRATION);
    c.op("0.25 w");
    for (a, b) in imp.marks(bleed) {
        c.line_mm(a, b);
    }
}

/// What a streamed job produced.
#[derive(Debug)]
pub struct Rendered {
    /// Cards drawn.
    pub cards: usize,
    /// Pages written.
    pub pages: usize,
    /// File size, bytes.
    pub bytes: u64,
    /// Page boxes, and each card's place when it was asked for.
    pub layout: DocumentLayout,
}

/// The characters each font must carry for `cards`: bold for names and the back, regular
/// for the tagline, the short URL and the code on the back.
fn used_chars(cards: &[CardSpec], domain: &str, t: &Template) -> (BTreeSet<char>, BTreeSet<char>) {
    let mut bold: BTreeSet<char> = t.back.text.chars().collect();
    bold.insert(' ');
    let mut regular: BTreeSet<char> = t
        .front
        .tagline
        .chars()
        .chain(domain.chars())
        .chain("/r/Code ".chars())
        .collect();
    for c in cards {
        bold.extend(c.name.chars());
        regular.extend(c.code.chars());
    }
    (bold, regular)
}

/// Page geometry: page size (mm), its boxes, and the slot of card `i` (`mirror` for
/// the back of an imposed sheet).
struct Geometry {
    kind: SheetKind,
    bleed: f32,
    boxes: PageBoxes,
}

impl Geometry {
    fn new(kind: SheetKind, bleed: f32) -> Self {
        match kind.imposition() {
            None => {
                let s = Self::single(bleed);
                Self {
                    kind,
                    bleed,
                    boxes: PageBoxes {
                        media: s.clip.to_pt(),
                        bleed: s.clip.to_pt(),
                        trim: s.trim.to_pt(),
                    },
                }
            }
            Some(imp) => {
                let sheet = Rect {
                    x: 0.0,
                    y: 0.0,
                    w: imp.sheet_w,
                    h: imp.sheet_h,
                };
                Self {
                    kind,
                    bleed,
                    boxes: PageBoxes {
                        media: sheet.to_pt(),
                        bleed: sheet.to_pt(),
                        trim: sheet.to_pt(),
                    },
                }
            }
        }
    }

    fn single(b: f32) -> Slot {
        Slot {
            trim: Rect {
                x: b,
                y: b,
                w: TRIM_W,
                h: TRIM_H,
            },
            clip: Rect {
                x: 0.0,
                y: 0.0,
                w: TRIM_W + 2.0 * b,
                h: TRIM_H + 2.0 * b,
            },
        }
    }

    fn slot(&self, i: usize, mirror: bool) -> Slot {
        match self.kind.imposition() {
            None => Self::single(self.bleed),
            Some(imp) => imp.slot(i % imp.cols, i / imp.cols, self.bleed, mirror),
        }
    }
}

/// One sheet (an imposed page, or one card per page), drawn and compressed.
struct SheetOut {
    problems: Vec<String>,
    front: Vec<u8>,
    back: Option<Vec<u8>>,
    /// Each card's QR form: side in modules, deflated content.
    forms: Vec<(usize, Vec<u8>)>,
    cards: Vec<CardLayout>,
}

/// Prepares and draws the cards of one sheet whose front is page `page`. Drawing is
/// skipped once the job has failed (`draw` false): the cards are still checked, so
/// every problem is named.
fn sheet(
    s: &Shared,
    g: &Geometry,
    specs: &[CardSpec],
    domain: &str,
    page: usize,
    opts: (bool, bool, bool),
) -> SheetOut {
    let (backs, keep_cards, draw) = opts;
    let mut out = SheetOut {
        problems: Vec::new(),
        front: Vec::new(),
        back: None,
        forms: Vec::new(),
        cards: Vec::new(),
    };
    let mut faces = Vec::with_capacity(specs.len());
    for p in specs {
        match super::prepare(p, domain, s.t, s.bold_font, s.regular_font) {
            Ok(f) => faces.push(f),
            Err(e) => out.problems.push(e),
        }
    }
    if !draw || !out.problems.is_empty() {
        return out;
    }
    let layout =
        |page: usize, side: &'static str, face: &CardFace, slot: Slot, qr: Option<QrLayout>| {
            CardLayout {
                page,
                side,
                partner: face.partner.clone(),
                code: face.code.clone(),
                qr_payload: qr.as_ref().map(|_| face.qr_payload.clone()),
                trim: slot.trim,
                trim_pt: slot.trim.to_pt(),
                clip: slot.clip,
                name_pt: qr.as_ref().map(|_| face.name_pt),
                qr,
            }
        };
    let mut c = Content::default();
    for (i, face) in faces.iter().enumerate() {
        let slot = g.slot(i, false);
        let (form, q) = front(&mut c, s, face, slot, i);
        out.forms.push((face.qr.size, deflate(&form)));
        if keep_cards {
            out.cards.push(layout(page, "front", face, slot, Some(q)));
        }
    }
    let imposed = g.kind.imposition();
    if let Some(imp) = &imposed {
        marks(&mut c, imp, g.bleed);
    }
    out.front = deflate(&c.0);
    if backs {
        let mut c = Content::default();
        for (i, face) in faces.iter().enumerate() {
            let slot = g.slot(i, true);
            back(&mut c, s, face, slot);
            if keep_cards {
                out.cards.push(layout(page + 1, "back", face, slot, None));
            }
        }
        if let Some(imp) = &imposed {
            marks(&mut c, imp, g.bleed);
        }
        out.back = Some(deflate(&c.0));
    }
    out
}

/// Runs `f` on every item on `threads` threads; results in item order.
pub(crate) fn par_map<T: Sync, R: Send>(
    items: &[T],
    threads: usize,
    f: impl Fn(usize, &T) -> R + Sync,
) -> Result<Vec<R>, PrintError> {
    let next = AtomicUsize::new(0);
    let mut slots: Vec<Option<R>> = std::iter::repeat_with(|| None).take(items.len()).collect();
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads.min(items.len()).max(1))
            .map(|_| {
                scope.spawn(|| {
                    let mut done = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(item) = items.get(i) else { break };
                        done.push((i, f(i, item)));
                    }
                    done
                })
            })
            .collect();
        for w in workers {
            let done = w
                .join()
                .map_err(|_| PrintError::Pdf("a print worker stopped unexpectedly".into()))?;
            for (i, r) in done {
                slots[i] = Some(r);
            }
        }
        Ok(())
    })?;
    Ok(slots.into_iter().flatten().collect())
}

fn boxes_pdf(b: [f32; 4]) -> String {
    let mut v = Vec::new();
    for (i, x) in b.iter().enumerate() {
        if i > 0 {
            v.push(b' ');
        }
        super::pdfw::num(&mut v, *x);
    }
    format!("[{}]", String::from_utf8_lossy(&v))
}

fn parse_font(bytes: &[u8], which: &str) -> Result<ParsedFont, PrintError> {
    ParsedFont::from_bytes(bytes, 0, &mut Vec::new()).ok_or_else(|| {
        PrintError::Template(format!("the {which} font is not a TrueType/OpenType font"))
    })
}

/// Lays out, checks and draws `cards` into `out`, streaming: each batch of sheets is
/// prepared on every core and written before the next is started. If any card cannot be
/// printed, every such card is named and the output is incomplete: write to a temporary
/// file and keep it only on success ([`super::run`] does).
///
/// `keep_cards` keeps each card's place in the returned layout (for `--layout-json`);
/// without it memory does not grow with the job.
pub fn render_to<W: Write>(
    cards: &[CardSpec],
    domain: &str,
    t: &Template,
    kind: SheetKind,
    backs: bool,
    keep_cards: bool,
    out: W,
) -> Result<Rendered, PrintError> {
    let io = |e: std::io::Error| PrintError::Pdf(e.to_string());
    let bold_font = parse_font(&t.bold_bytes, "bold")?;
    let regular_font = parse_font(&t.regular_bytes, "regular")?;
    let (bold_chars, regular_chars) = used_chars(cards, domain, t);
    let subset = |f: &ParsedFont, b: &[u8], c: &BTreeSet<char>, which: &str| {
        EmbeddedFont::subset(f, b, c)
            .map_err(|e| PrintError::Template(format!("the {which} font: {e}")))
    };
    let logo = t
        .logo_png
        .as_deref()
        .map(logo_cmyk)
        .transpose()
        .map_err(PrintError::Template)?;
    let shared = Shared {
        t,
        bold: subset(&bold_font, &t.bold_bytes, &bold_chars, "bold")?,
        regular: subset(&regular_font, &t.regular_bytes, &regular_chars, "regular")?,
        bold_font: &bold_font,
        regular_font: &regular_font,
        logo: logo
            .as_ref()
            .map(|(w, h, _)| *h as f32 / (*w).max(1) as f32),
    };
    let g = Geometry::new(kind, t.card.bleed_mm);

    let mut w = PdfWriter::new(out).map_err(io)?;
    let (catalog, pages_id, info, intent) = (w.reserve(), w.reserve(), w.reserve(), w.reserve());
    let (bold_id, regular_id, fonts) = (w.reserve(), w.reserve(), w.reserve());
    shared.bold.write(&mut w, bold_id).map_err(io)?;
    shared.regular.write(&mut w, regular_id).map_err(io)?;
    w.object(
        fonts,
        &format!("<< /{BOLD} {bold_id} 0 R /{REGULAR} {regular_id} 0 R >>"),
    )
    .map_err(io)?;
    let logo_id = match logo {
        Some((lw, lh, data)) => {
            let id = w.reserve();
            let mask: Vec<String> = LOGO_KEY
                .iter()
                .flat_map(|k| [k.to_string(), k.to_string()])
                .collect();
            w.stream(
                id,
                &format!(
                    "/Type /XObject /Subtype /Image /Width {lw} /Height {lh} /ColorSpace /DeviceCMYK /BitsPerComponent 8 /Mask [{}]",
                    mask.join(" ")
                ),
                &deflate(&data),
                true,
            )
            .map_err(io)?;
            Some(id)
        }
        None => None,
    };

    let per_page = kind.per_page();
    let sheets: Vec<&[CardSpec]> = cards.chunks(per_page).collect();
    let pages_per_sheet = if backs { 2 } else { 1 };
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(8);
    let batch = (threads * 8).max(1);
    let mut kids: Vec<ObjId> = Vec::new();
    let mut problems = Vec::new();
    let mut placed = Vec::new();
    let media = boxes_pdf(g.boxes.media);
    let bleed = boxes_pdf(g.boxes.bleed);
    let trim = boxes_pdf(g.boxes.trim);
    for (b, chunk) in sheets.chunks(batch).enumerate() {
        let draw = problems.is_empty();
        let done = par_map(chunk, threads, |i, specs| {
            let page = (b * batch + i) * pages_per_sheet + 1;
            sheet(&shared, &g, specs, domain, page, (backs, keep_cards, draw))
        })?;
        for s in done {
            problems.extend(s.problems);
            if !problems.is_empty() {
                continue;
            }
            let mut xobjects = String::new();
            if let Some(id) = logo_id {
                xobjects.push_str(&format!("/Logo {id} 0 R "));
            }
            for (i, (side, data)) in s.forms.iter().enumerate() {
                let id = w.reserve();
                w.stream(
                    id,
                    &format!(
                        "/Type /XObject /Subtype /Form /BBox [0 0 {side} {side}] /Resources << >>"
                    ),
                    data,
                    true,
                )
                .map_err(io)?;
                xobjects.push_str(&format!("/Q{i} {id} 0 R "));
            }
            let resources = format!(
                "<< /ProcSet [/PDF /Text /ImageC] /Font {fonts} 0 R /XObject << {xobjects}>> >>"
            );
            for content in std::iter::once(&s.front).chain(s.back.as_ref()) {
                let (cid, pid) = (w.reserve(), w.reserve());
                w.stream(cid, "", content, true).map_err(io)?;
                w.object(
                    pid,
                    &format!(
                        "<< /Type /Page /Parent {pages_id} 0 R /MediaBox {media} /BleedBox {bleed} /TrimBox {trim} /Resources {resources} /Contents {cid} 0 R >>"
                    ),
                )
                .map_err(io)?;
                kids.push(pid);
            }
            placed.extend(s.cards);
        }
    }
    if !problems.is_empty() {
        return Err(PrintError::Partners(problems));
    }

    let mut kid_refs = String::with_capacity(kids.len() * 10);
    for k in &kids {
        kid_refs.push_str(&format!("{k} 0 R "));
    }
    w.object(
        pages_id,
        &format!(
            "<< /Type /Pages /Kids [{kid_refs}] /Count {} >>",
            kids.len()
        ),
    )
    .map_err(io)?;
    w.object(
        intent,
        "<< /Type /OutputIntent /S /GTS_PDFX /OutputConditionIdentifier (FOGRA39) /RegistryName (http://www.color.org) /Info (Coated FOGRA39 \\(ISO 12647-2:2004\\)) >>",
    )
    .map_err(io)?;
    w.object(
        catalog,
        &format!("<< /Type /Catalog /Pages {pages_id} 0 R /OutputIntents [{intent} 0 R] >>"),
    )
    .map_err(io)?;
    let now = printpdf::OffsetDateTime::now_utc();
    let date = format!(
        "(D:{:04}{:02}{:02}{:02}{:02}{:02}Z)",
        now.year(),
        u8::from(now.month()),
        now.day(),
        now.hour(),
        now.minute(),
        now.second()
    );
    let title = format!("{} partner cards", t.brand.name);
    w.object(
        info,
        &format!(
            "<< /Title {} /Creator (Tapkit provisioner) /Producer (Tapkit) /CreationDate {date} /ModDate {date} /GTS_PDFXVersion (PDF/X-1:2001) /GTS_PDFXConformance (PDF/X-1a:2001) /Trapped /False >>",
            text_string(&title)
        ),
    )
    .map_err(io)?;
    let id = document_id(&title, &date, kids.len());
    let bytes = w.finish(catalog, info, id).map_err(io)?;
    Ok(Rendered {
        cards: cards.len(),
        pages: kids.len(),
        bytes,
        layout: DocumentLayout {
            layout: kind,
            pages: vec![g.boxes.clone(); kids.len()],
            cards: placed,
        },
    })
}

/// The file identifier the trailer carries (PDF/X requires one): a hash of what makes
/// this document.
fn document_id(title: &str, date: &str, pages: usize) -> [u8; 16] {
    let mut out = [0u8; 16];
    for (half, seed) in [0xcbf2_9ce4_8422_2325u64, 0x6c62_272e_07bb_0142]
        .iter()
        .enumerate()
    {
        let mut h = *seed;
        for b in title.bytes().chain(date.bytes()).chain(pages.to_be_bytes()) {
            h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
        out[half * 8..half * 8 + 8].copy_from_slice(&h.to_be_bytes());
    }
    out
}
