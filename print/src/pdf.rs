//! The print-shop PDF, drawn with printpdf and corrected with lopdf.
//!
//! printpdf 0.12.8 writes TrimBox as `[x y w h]` instead of `[llx lly urx ury]`, has no
//! BleedBox, and writes no OutputIntent for PDF/X-1a (`shared/docs/print-reference.md`
//! §B2): [`finish`] rewrites the boxes and adds the intent with lopdf.

use std::collections::BTreeMap;

use printpdf::{
    Color, CurTransMat, DictItem, ExternalStream, ExternalXObject, FontId, Line, LinePoint, Mm, Op,
    PaintMode, ParsedFont, PdfConformance, PdfDocument, PdfFontHandle, PdfPage, PdfSaveOptions,
    Point, Pt, Px, TextItem, WindingOrder, XObjectId, XObjectTransform,
};

use super::layout::{
    CardLayout, DocumentLayout, Imposition, PT_PER_MM, PageBoxes, QrLayout, Rect, SheetKind, Slot,
    TRIM_H, TRIM_W,
};
use super::qr::QUIET;
use super::template::{Cmyk, Template};
use super::{CardFace, PrintError};

fn pt(mm: f32) -> Pt {
    Pt(mm * PT_PER_MM)
}

fn cmyk(c: Cmyk) -> Color {
    Color::Cmyk(printpdf::Cmyk::new(
        c[0] / 100.0,
        c[1] / 100.0,
        c[2] / 100.0,
        c[3] / 100.0,
        None,
    ))
}

/// Registration colour: every separation, for crop marks only.
const REGISTRATION: Cmyk = [100.0, 100.0, 100.0, 100.0];

fn rect_op(r: Rect, mode: PaintMode) -> Op {
    Op::DrawRectangle {
        rectangle: printpdf::Rect {
            x: pt(r.x),
            y: pt(r.y),
            width: pt(r.w),
            height: pt(r.h),
            mode: Some(mode),
            winding_order: Some(WindingOrder::NonZero),
        },
    }
}

fn text_ops(ops: &mut Vec<Op>, font: &FontId, size: f32, x: f32, y: f32, colour: Cmyk, s: &str) {
    ops.push(Op::StartTextSection);
    ops.push(Op::SetFillColor { col: cmyk(colour) });
    ops.push(Op::SetFont {
        font: PdfFontHandle::External(font.clone()),
        size: Pt(size),
    });
    ops.push(Op::SetTextCursor {
        pos: Point { x: pt(x), y: pt(y) },
    });
    ops.push(Op::ShowText {
        items: vec![TextItem::Text(s.to_owned())],
    });
    ops.push(Op::EndTextSection);
}

/// Width of `s` in mm at `size` pt; `Err(ch)` for a character the font lacks.
pub fn text_width_mm(font: &ParsedFont, s: &str, size: f32) -> Result<f32, char> {
    let upm = f32::from(font.pdf_font_metrics.units_per_em.max(1));
    let mut units = 0.0;
    for ch in s.chars() {
        let gid = font.lookup_glyph_index(u32::from(ch)).ok_or(ch)?;
        units += f32::from(font.get_horizontal_advance(gid));
    }
    Ok(units / upm * size / PT_PER_MM)
}

/// The logo as a DeviceCMYK image XObject. Transparent pixels get a colour key that no
/// opaque pixel uses and are masked out with `/Mask` (PDF 1.3 colour-key masking, not
/// soft-mask transparency, so PDF/X-1a stays possible).
fn logo_xobject(png: &[u8]) -> Result<(ExternalXObject, usize, usize), String> {
    let img = image::load_from_memory(png)
        .map_err(|e| format!("the logo is not a readable PNG: {e}"))?
        .to_rgba8();
    let (w, h) = (img.width() as usize, img.height() as usize);
    const KEY: [u8; 4] = [0, 0, 0, 1];
    let mut data = Vec::with_capacity(w * h * 4);
    for p in img.pixels() {
        let [r, g, b, a] = p.0;
        if a < 128 {
            data.extend_from_slice(&KEY);
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
        data.extend_from_slice(if px == KEY { &[0, 0, 0, 2] } else { &px });
    }
    let int = |v: usize| DictItem::Int(i64::try_from(v).unwrap_or(0));
    let mut dict = BTreeMap::new();
    dict.insert("Type".into(), DictItem::Name(b"XObject".to_vec()));
    dict.insert("Subtype".into(), DictItem::Name(b"Image".to_vec()));
    dict.insert("Width".into(), int(w));
    dict.insert("Height".into(), int(h));
    dict.insert("ColorSpace".into(), DictItem::Name(b"DeviceCMYK".to_vec()));
    dict.insert("BitsPerComponent".into(), DictItem::Int(8));
    dict.insert(
        "Mask".into(),
        DictItem::Array(
            KEY.iter()
                .flat_map(|&k| [DictItem::Int(k.into()), DictItem::Int(k.into())])
                .collect(),
        ),
    );
    let stream = ExternalStream {
        dict,
        content: data,
        compress: true,
    };
    Ok((
        ExternalXObject {
            stream,
            width: Some(Px(w)),
            height: Some(Px(h)),
            dpi: None,
        },
        w,
        h,
    ))
}

struct Resources {
    bold: FontId,
    regular: FontId,
    bold_font: ParsedFont,
    regular_font: ParsedFont,
    logo: Option<(XObjectId, usize)>,
}

fn logo_op(res: &Resources, x: f32, y: f32, size_mm: f32) -> Option<Op> {
    let (id, px_w) = res.logo.as_ref()?;
    let dpi = *px_w as f32 * 25.4 / size_mm;
    Some(Op::UseXobject {
        id: id.clone(),
        transform: XObjectTransform {
            translate_x: Some(pt(x)),
            translate_y: Some(pt(y)),
            dpi: Some(dpi),
            ..Default::default()
        },
    })
}

/// Starts a card: clip to its slot, move to its trim origin, paint `background` (card
/// coordinates) in the band colour. Ends with `RestoreGraphicsState`.
fn begin_card(ops: &mut Vec<Op>, t: &Template, slot: Slot, background: Rect) {
    ops.push(Op::SaveGraphicsState);
    ops.push(rect_op(slot.clip, PaintMode::Clip));
    ops.push(Op::SetTransformationMatrix {
        matrix: CurTransMat::Translate(pt(slot.trim.x), pt(slot.trim.y)),
    });
    ops.push(Op::SetFillColor {
        col: cmyk(t.brand.band_cmyk),
    });
    ops.push(rect_op(background, PaintMode::Fill));
}

/// Draws the front of one card into `slot`; returns its QR layout.
fn front(
    ops: &mut Vec<Op>,
    t: &Template,
    res: &Resources,
    face: &CardFace,
    slot: Slot,
) -> QrLayout {
    let b = t.card.bleed_mm;
    let safe = t.card.safe_mm;
    // Full-bleed band.
    let band = Rect {
        x: -b,
        y: -b,
        w: t.brand.band_width_mm + b,
        h: TRIM_H + 2.0 * b,
    };
    begin_card(ops, t, slot, band);
    // Logo, name, tagline on the band.
    let mut y = TRIM_H - safe;
    if !t.front.logo_over_qr
        && let Some(op) = logo_op(res, safe, y - t.front.logo_mm, t.front.logo_mm)
    {
        ops.push(op);
        y -= t.front.logo_mm + 3.0;
    }
    let line_h = face.name_pt / PT_PER_MM * 1.15;
    for line in &face.name_lines {
        y -= face.name_pt / PT_PER_MM * 0.75;
        text_ops(
            ops,
            &res.bold,
            face.name_pt,
            safe,
            y,
            t.brand.on_band_cmyk,
            line,
        );
        y -= line_h - face.name_pt / PT_PER_MM * 0.75;
    }
    text_ops(
        ops,
        &res.regular,
        t.front.tagline_pt,
        safe,
        safe + 0.5,
        t.brand.on_band_cmyk,
        &t.front.tagline,
    );
    // QR: 100 % K vector rectangles on white, quiet zone inside the trim.
    let q = &face.qr;
    let side = q.size + 2 * QUIET;
    let m = face.module_mm;
    let box_mm = side as f32 * m;
    let right_w = TRIM_W - t.brand.band_width_mm;
    let qx = t.brand.band_width_mm + (right_w - box_mm) / 2.0;
    let qy =
        TRIM_H - box_mm - (TRIM_H - box_mm - safe - face.url_pt / PT_PER_MM - 1.0).max(0.0) / 2.0;
    ops.push(Op::SetFillColor {
        col: cmyk(t.brand.text_cmyk),
    });
    let origin_x = qx + QUIET as f32 * m;
    let origin_top = qy + box_mm - QUIET as f32 * m;
    for (x, yy, w, h) in q.rects() {
        ops.push(rect_op(
            Rect {
                x: origin_x + x as f32 * m,
                y: origin_top - (yy + h) as f32 * m,
                w: w as f32 * m,
                h: h as f32 * m,
            },
            PaintMode::Fill,
        ));
    }
    if t.front.logo_over_qr {
        let s = face.logo_modules as f32 * m;
        let lx = origin_x + (q.size as f32 * m - s) / 2.0;
        let ly = origin_top - (q.size as f32 * m + s) / 2.0;
        ops.push(Op::SetFillColor {
            col: cmyk([0.0; 4]),
        });
        ops.push(rect_op(
            Rect {
                x: lx,
                y: ly,
                w: s,
                h: s,
            },
            PaintMode::Fill,
        ));
        if let Some(op) = logo_op(res, lx + s * 0.1, ly + s * 0.1, s * 0.8) {
            ops.push(op);
        }
    }
    // The short URL under the QR, centred.
    let url_w = text_width_mm(&res.regular_font, &face.short_url, face.url_pt).unwrap_or(0.0);
    let ux = t.brand.band_width_mm + (right_w - url_w) / 2.0;
    text_ops(
        ops,
        &res.regular,
        face.url_pt,
        ux,
        safe,
        t.brand.text_cmyk,
        &face.short_url,
    );
    ops.push(Op::RestoreGraphicsState);
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
    }
}

/// Draws the back of one card.
fn back(ops: &mut Vec<Op>, t: &Template, res: &Resources, face: &CardFace, slot: Slot) {
    let b = t.card.bleed_mm;
    begin_card(
        ops,
        t,
        slot,
        Rect {
            x: -b,
            y: -b,
            w: TRIM_W + 2.0 * b,
            h: TRIM_H + 2.0 * b,
        },
    );
    let w = text_width_mm(&res.bold_font, &t.back.text, t.back.text_pt).unwrap_or(0.0);
    text_ops(
        ops,
        &res.bold,
        t.back.text_pt,
        (TRIM_W - w) / 2.0,
        TRIM_H / 2.0,
        t.brand.on_band_cmyk,
        &t.back.text,
    );
    if t.back.show_code {
        let s = format!("Code {}", face.code);
        let w = text_width_mm(&res.regular_font, &s, 7.0).unwrap_or(0.0);
        text_ops(
            ops,
            &res.regular,
            7.0,
            (TRIM_W - w) / 2.0,
            t.card.safe_mm + 1.0,
            t.brand.on_band_cmyk,
            &s,
        );
    }
    ops.push(Op::RestoreGraphicsState);
}

fn marks(ops: &mut Vec<Op>, imp: &Imposition, bleed: f32) {
    ops.push(Op::SetOutlineColor {
        col: cmyk(REGISTRATION),
    });
    ops.push(Op::SetOutlineThickness { pt: Pt(0.25) });
    for ((x1, y1), (x2, y2)) in imp.marks(bleed) {
        ops.push(Op::DrawLine {
            line: Line {
                points: vec![
                    LinePoint {
                        p: Point {
                            x: pt(x1),
                            y: pt(y1),
                        },
                        bezier: false,
                    },
                    LinePoint {
                        p: Point {
                            x: pt(x2),
                            y: pt(y2),
                        },
                        bezier: false,
                    },
                ],
                is_closed: false,
            },
        });
    }
}

/// Lays out and draws the document; returns the PDF bytes and its layout.
pub fn render(
    faces: &[CardFace],
    t: &Template,
    kind: SheetKind,
    backs: bool,
) -> Result<(Vec<u8>, DocumentLayout), PrintError> {
    let mut doc = PdfDocument::new(&format!("{} partner cards", t.brand.name));
    doc.metadata.info.conformance = PdfConformance::X1A_2001_PDF_1_3;
    let now = printpdf::OffsetDateTime::now_utc();
    doc.metadata.info.creation_date = now;
    doc.metadata.info.modification_date = now;
    doc.metadata.info.metadata_date = now;
    doc.metadata.info.creator = "Tapkit provisioner".into();
    let mut warnings = Vec::new();
    let parse = |bytes: &[u8], which: &str| {
        ParsedFont::from_bytes(bytes, 0, &mut Vec::new()).ok_or_else(|| {
            PrintError::Template(format!("the {which} font is not a TrueType/OpenType font"))
        })
    };
    let bold_font = parse(&t.bold_bytes, "bold")?;
    let regular_font = parse(&t.regular_bytes, "regular")?;
    let logo = match &t.logo_png {
        Some(png) => {
            let (xo, w, _) = logo_xobject(png).map_err(PrintError::Template)?;
            Some((doc.add_xobject(&xo), w))
        }
        None => None,
    };
    let res = Resources {
        bold: doc.add_font(&bold_font),
        regular: doc.add_font(&regular_font),
        bold_font,
        regular_font,
        logo,
    };
    let b = t.card.bleed_mm;
    let mut pages = Vec::new();
    let mut boxes = Vec::new();
    let mut cards = Vec::new();
    let mut page_no = 0;
    let layout_card =
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
    match kind.imposition() {
        None => {
            let (w, h) = (TRIM_W + 2.0 * b, TRIM_H + 2.0 * b);
            let slot = Slot {
                trim: Rect {
                    x: b,
                    y: b,
                    w: TRIM_W,
                    h: TRIM_H,
                },
                clip: Rect {
                    x: 0.0,
                    y: 0.0,
                    w,
                    h,
                },
            };
            let page_boxes = PageBoxes {
                media: slot.clip.to_pt(),
                bleed: slot.clip.to_pt(),
                trim: slot.trim.to_pt(),
            };
            for face in faces {
                let mut ops = Vec::new();
                let q = front(&mut ops, t, &res, face, slot);
                pages.push(PdfPage::new(Mm(w), Mm(h), ops));
                boxes.push(page_boxes.clone());
                page_no += 1;
                cards.push(layout_card(page_no, "front", face, slot, Some(q)));
                if backs {
                    let mut ops = Vec::new();
                    back(&mut ops, t, &res, face, slot);
                    pages.push(PdfPage::new(Mm(w), Mm(h), ops));
                    boxes.push(page_boxes.clone());
                    page_no += 1;
                    cards.push(layout_card(page_no, "back", face, slot, None));
                }
            }
        }
        Some(imp) => {
            let sheet = Rect {
                x: 0.0,
                y: 0.0,
                w: imp.sheet_w,
                h: imp.sheet_h,
            };
            let page_boxes = PageBoxes {
                media: sheet.to_pt(),
                bleed: sheet.to_pt(),
                trim: sheet.to_pt(),
            };
            for chunk in faces.chunks(imp.cols * imp.rows) {
                for (side, mirror) in [("front", false), ("back", true)] {
                    if side == "back" && !backs {
                        continue;
                    }
                    let mut ops = Vec::new();
                    page_no += 1;
                    for (i, face) in chunk.iter().enumerate() {
                        let slot = imp.slot(i % imp.cols, i / imp.cols, b, mirror);
                        if side == "front" {
                            let q = front(&mut ops, t, &res, face, slot);
                            cards.push(layout_card(page_no, side, face, slot, Some(q)));
                        } else {
                            back(&mut ops, t, &res, face, slot);
                            cards.push(layout_card(page_no, side, face, slot, None));
                        }
                    }
                    marks(&mut ops, &imp, b);
                    pages.push(PdfPage::new(Mm(imp.sheet_w), Mm(imp.sheet_h), ops));
                    boxes.push(page_boxes.clone());
                }
            }
        }
    }
    doc.with_pages(pages);
    let opts = PdfSaveOptions {
        subset_fonts: true,
        ..Default::default()
    };
    let lo = doc.to_lopdf_document(&opts, &mut warnings);
    let bytes = finish(lo, &boxes)?;
    Ok((
        bytes,
        DocumentLayout {
            layout: kind,
            pages: boxes,
            cards,
        },
    ))
}

/// Rewrites the page boxes, adds the PDF/X-1a output intent, compresses, serialises.
fn finish(mut lo: lopdf::Document, boxes: &[PageBoxes]) -> Result<Vec<u8>, PrintError> {
    use lopdf::{Dictionary, Object, StringFormat};
    let arr = |b: [f32; 4]| Object::Array(b.iter().map(|v| Object::Real(*v)).collect());
    let pages: Vec<lopdf::ObjectId> = lo.get_pages().values().copied().collect();
    if pages.len() != boxes.len() {
        return Err(PrintError::Pdf(format!(
            "{} pages written but {} laid out",
            pages.len(),
            boxes.len()
        )));
    }
    for (id, b) in pages.iter().zip(boxes) {
        let d = lo
            .get_object_mut(*id)
            .and_then(Object::as_dict_mut)
            .map_err(|e| PrintError::Pdf(e.to_string()))?;
        d.set("MediaBox", arr(b.media));
        d.set("BleedBox", arr(b.bleed));
        d.set("TrimBox", arr(b.trim));
        d.remove(b"CropBox");
    }
    let text = |s: &str| Object::String(s.as_bytes().to_vec(), StringFormat::Literal);
    let mut intent = Dictionary::new();
    intent.set("Type", Object::Name(b"OutputIntent".to_vec()));
    intent.set("S", Object::Name(b"GTS_PDFX".to_vec()));
    intent.set("OutputConditionIdentifier", text("FOGRA39"));
    intent.set("RegistryName", text("http://www.color.org"));
    intent.set("Info", text("Coated FOGRA39 (ISO 12647-2:2004)"));
    let intent_id = lo.add_object(intent);
    let root = lo
        .trailer
        .get(b"Root")
        .and_then(Object::as_reference)
        .map_err(|e| PrintError::Pdf(e.to_string()))?;
    lo.get_object_mut(root)
        .and_then(Object::as_dict_mut)
        .map_err(|e| PrintError::Pdf(e.to_string()))?
        .set(
            "OutputIntents",
            Object::Array(vec![Object::Reference(intent_id)]),
        );
    if let Ok(info_id) = lo.trailer.get(b"Info").and_then(Object::as_reference)
        && let Ok(info) = lo.get_object_mut(info_id).and_then(Object::as_dict_mut)
    {
        info.set("GTS_PDFXVersion", text("PDF/X-1:2001"));
        info.set("GTS_PDFXConformance", text("PDF/X-1a:2001"));
        info.set("Trapped", Object::Name(b"False".to_vec()));
    }
    lo.compress();
    let mut out = Vec::new();
    lo.save_to(&mut out)
        .map_err(|e| PrintError::Pdf(e.to_string()))?;
    Ok(out)
}
