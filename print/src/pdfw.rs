//! A PDF 1.3 file written object by object, for print jobs of any size.
//!
//! printpdf builds the whole document in memory: every rectangle of every QR is an `Op`,
//! and then an lopdf object, before a byte is written. That cost 4.4 GB of RSS for
//! 100,000 cards (issue 23). Here each object goes to the output as soon as it is made;
//! what stays in memory is one offset per object and the page list. Fonts and the logo
//! are written once and shared by every page; each card's QR is a Form XObject.
//!
//! What printpdf still does for us is the font subsetting ([`printpdf::subset_font`],
//! allsorts underneath). Which glyphs a job uses is known before the first page (the
//! text of every card is), so the fonts are subset first, and the pages are encoded with
//! the subset's glyph ids.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;
use std::io::{self, Write};

use printpdf::ParsedFont;

use super::layout::PT_PER_MM;
use super::template::Cmyk;

/// An object number in the file being written.
pub type ObjId = u32;

/// Counts the bytes written, so each object's offset is known for the xref table.
struct Counting<W> {
    inner: W,
    pos: u64,
}

impl<W: Write> Write for Counting<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.pos += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Writes objects in any order of reservation, each exactly once, then the xref table.
pub struct PdfWriter<W: Write> {
    out: Counting<io::BufWriter<W>>,
    /// Byte offset of object `i + 1`; 0 while reserved but not yet written.
    offsets: Vec<u64>,
}

impl<W: Write> PdfWriter<W> {
    /// Starts a PDF 1.3 file (the version PDF/X-1a:2001 requires).
    pub fn new(out: W) -> io::Result<Self> {
        let mut out = Counting {
            inner: io::BufWriter::with_capacity(1 << 16, out),
            pos: 0,
        };
        // The second line marks the file as binary for transfer tools.
        out.write_all(b"%PDF-1.3\n%\xE2\xE3\xCF\xD3\n")?;
        Ok(Self {
            out,
            offsets: Vec::new(),
        })
    }

    /// Bytes written so far.
    pub fn position(&self) -> u64 {
        self.out.pos
    }

    /// Reserves an object number to be written later (pages refer to fonts and kids to
    /// their parent before those exist).
    pub fn reserve(&mut self) -> ObjId {
        self.offsets.push(0);
        // Object numbers are 1-based; a job would need 4 billion objects to overflow.
        u32::try_from(self.offsets.len()).unwrap_or(u32::MAX)
    }

    fn begin(&mut self, id: ObjId) -> io::Result<()> {
        let slot = id
            .checked_sub(1)
            .and_then(|i| self.offsets.get_mut(i as usize))
            .ok_or_else(|| io::Error::other(format!("object {id} was never reserved")))?;
        if *slot != 0 {
            return Err(io::Error::other(format!("object {id} written twice")));
        }
        *slot = self.out.pos;
        writeln!(self.out, "{id} 0 obj")
    }

    /// Writes a non-stream object (`body` is its PDF syntax).
    pub fn object(&mut self, id: ObjId, body: &str) -> io::Result<()> {
        self.begin(id)?;
        self.out.write_all(body.as_bytes())?;
        self.out.write_all(b"\nendobj\n")
    }

    /// Writes a stream object; `dict` holds the entries other than `/Length` (and
    /// `/Filter`, added when `deflated`).
    pub fn stream(&mut self, id: ObjId, dict: &str, data: &[u8], deflated: bool) -> io::Result<()> {
        self.begin(id)?;
        let filter = if deflated {
            " /Filter /FlateDecode"
        } else {
            ""
        };
        write!(
            self.out,
            "<< {dict}{filter} /Length {} >>\nstream\n",
            data.len()
        )?;
        self.out.write_all(data)?;
        self.out.write_all(b"\nendstream\nendobj\n")
    }

    /// Writes the xref table and trailer and flushes; every reserved object must have
    /// been written.
    pub fn finish(mut self, root: ObjId, info: ObjId, id: [u8; 16]) -> io::Result<u64> {
        if let Some(i) = self.offsets.iter().position(|&o| o == 0) {
            return Err(io::Error::other(format!(
                "object {} was reserved but never written",
                i + 1
            )));
        }
        let xref = self.out.pos;
        write!(
            self.out,
            "xref\n0 {}\n0000000000 65535 f \n",
            self.offsets.len() + 1
        )?;
        for o in &self.offsets {
            writeln!(self.out, "{o:010} 00000 n ")?;
        }
        let hex: String = id.iter().map(|b| format!("{b:02X}")).collect();
        write!(
            self.out,
            "trailer\n<< /Size {} /Root {root} 0 R /Info {info} 0 R /ID [<{hex}> <{hex}>] >>\nstartxref\n{xref}\n%%EOF\n",
            self.offsets.len() + 1
        )?;
        self.out.flush()?;
        Ok(self.out.pos)
    }
}

/// zlib-compresses a stream's data (`/FlateDecode`).
pub fn deflate(data: &[u8]) -> Vec<u8> {
    use flate2::{Compression, write::ZlibEncoder};
    let mut e = ZlibEncoder::new(Vec::with_capacity(data.len() / 3), Compression::default());
    // Writing into a Vec cannot fail.
    let _ = e.write_all(data);
    e.finish().unwrap_or_default()
}

/// A PDF text string: UTF-16BE with a byte-order mark, in hex, so any text is safe.
pub fn text_string(s: &str) -> String {
    let mut out = String::from("<FEFF");
    for u in s.encode_utf16() {
        let _ = write!(out, "{u:04X}");
    }
    out.push('>');
    out
}

/// A number in PDF syntax: at most 4 decimals, no exponent, no `-0`.
pub fn num(out: &mut Vec<u8>, v: f32) {
    let v = if v.is_finite() { v } else { 0.0 };
    let mut s = format!("{v:.4}");
    if s.contains('.') {
        let t = s.trim_end_matches('0').trim_end_matches('.').len();
        s.truncate(t);
    }
    if s == "-0" {
        s = "0".into();
    }
    out.extend_from_slice(s.as_bytes());
}

/// A content stream being drawn, in PDF operators. Coordinates are in mm and converted
/// to points here.
#[derive(Default)]
pub struct Content(pub Vec<u8>);

impl Content {
    fn nums(&mut self, vs: &[f32]) {
        for v in vs {
            num(&mut self.0, *v);
            self.0.push(b' ');
        }
    }

    /// Appends an operator line.
    pub fn op(&mut self, op: &str) {
        self.0.extend_from_slice(op.as_bytes());
        self.0.push(b'\n');
    }

    /// `re` of a rectangle in mm.
    pub fn rect_mm(&mut self, x: f32, y: f32, w: f32, h: f32) {
        self.nums(&[x * PT_PER_MM, y * PT_PER_MM, w * PT_PER_MM, h * PT_PER_MM]);
        self.op("re");
    }

    /// `re` in the current user space units (no conversion).
    pub fn rect_units(&mut self, x: f32, y: f32, w: f32, h: f32) {
        self.nums(&[x, y, w, h]);
        self.op("re");
    }

    /// CMYK fill colour (`k`), from percentages.
    pub fn fill(&mut self, c: Cmyk) {
        self.nums(&c.map(|v| v / 100.0));
        self.op("k");
    }

    /// CMYK stroke colour (`K`), from percentages.
    pub fn stroke(&mut self, c: Cmyk) {
        self.nums(&c.map(|v| v / 100.0));
        self.op("K");
    }

    /// Concatenates a matrix (`cm`): scale `sx, sy` then translate by `tx, ty` mm.
    pub fn transform(&mut self, sx: f32, sy: f32, tx_mm: f32, ty_mm: f32) {
        self.nums(&[sx, 0.0, 0.0, sy, tx_mm * PT_PER_MM, ty_mm * PT_PER_MM]);
        self.op("cm");
    }

    /// A straight line from `a` to `b` in mm, stroked.
    pub fn line_mm(&mut self, a: (f32, f32), b: (f32, f32)) {
        self.nums(&[a.0 * PT_PER_MM, a.1 * PT_PER_MM]);
        self.op("m");
        self.nums(&[b.0 * PT_PER_MM, b.1 * PT_PER_MM]);
        self.op("l");
        self.op("S");
    }

    /// One line of text at (`x`, `y`) mm in `font` (resource `/name`) at `size` pt.
    pub fn text(&mut self, font: &EmbeddedFont, name: &str, size: f32, x: f32, y: f32, s: &str) {
        self.op("BT");
        self.0.push(b'/');
        self.0.extend_from_slice(name.as_bytes());
        self.0.push(b' ');
        self.nums(&[size]);
        self.op("Tf");
        self.nums(&[x * PT_PER_MM, y * PT_PER_MM]);
        self.op("Td");
        self.0.push(b'<');
        for ch in s.chars() {
            let _ = write!(HexSink(&mut self.0), "{:04X}", font.glyph(ch));
        }
        self.0.extend_from_slice(b"> Tj\n");
        self.op("ET");
    }
}

struct HexSink<'a>(&'a mut Vec<u8>);

impl std::fmt::Write for HexSink<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

/// A TrueType font subset to the characters a job uses, ready to embed as a Type0
/// (Identity-H) font with a ToUnicode map, so text stays searchable and copyable.
pub struct EmbeddedFont {
    base_name: String,
    program: Vec<u8>,
    /// Character → glyph id in the subset.
    glyphs: HashMap<char, u16>,
    /// Subset glyph id → (advance in 1/1000 em, the text it stands for).
    widths: BTreeMap<u16, (i64, char)>,
    descriptor: String,
}

impl EmbeddedFont {
    /// Subsets `font` (whose file is `bytes`) to `chars`. Characters the font lacks are
    /// left out: the card checks refuse text that uses them before anything is drawn.
    pub fn subset(font: &ParsedFont, bytes: &[u8], chars: &BTreeSet<char>) -> Result<Self, String> {
        let mut by_gid: BTreeMap<u16, String> = BTreeMap::new();
        let mut original: Vec<(char, u16)> = Vec::new();
        for &ch in chars {
            if let Some(gid) = font.lookup_glyph_index(u32::from(ch))
                && gid != 0
            {
                by_gid.entry(gid).or_insert_with(|| ch.to_string());
                original.push((ch, gid));
            }
        }
        let subset = printpdf::subset_font(font, &by_gid)
            .map_err(|e| format!("the font could not be subset: {e}"))?;
        let upm = f32::from(font.pdf_font_metrics.units_per_em.max(1));
        let mut glyphs = HashMap::new();
        let mut widths = BTreeMap::new();
        for (ch, gid) in original {
            if let Some((new, _)) = subset.glyph_mapping.get(&gid) {
                glyphs.insert(ch, *new);
                let adv = f32::from(font.get_horizontal_advance(gid)) * 1000.0 / upm;
                widths.entry(*new).or_insert(((adv.round()) as i64, ch));
            }
        }
        let face = ttf_parser::Face::parse(bytes, 0)
            .map_err(|e| format!("the font is not a TrueType/OpenType font: {e}"))?;
        let scale = |v: i16| (f32::from(v) * 1000.0 / upm).round() as i64;
        let ps_name = face
            .names()
            .into_iter()
            .find(|n| n.name_id == ttf_parser::name_id::POST_SCRIPT_NAME)
            .and_then(|n| n.to_string())
            .or_else(|| font.font_name.clone())
            .unwrap_or_else(|| "Font".into());
        // A PDF name without delimiters: PostScript names are printable ASCII anyway.
        let ps_name: String = ps_name
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            .collect();
        let base_name = format!("{}+{ps_name}", subset_tag(&ps_name, &widths));
        let bbox = face.global_bounding_box();
        let italic = face.italic_angle();
        let weight = face.weight().to_number();
        // StemV is not in any table; estimate it from the weight class, as producers do.
        let stem_v = 50 + (f32::from(weight) / 65.0).powi(2).round() as i64;
        let cap = face.capital_height().unwrap_or(face.ascender());
        // Flags: 4 = symbolic (required for a font addressed by glyph ids, ISO 32000
        // 9.8.2), 64 = italic.
        let flags = 4 | if italic != 0.0 { 64 } else { 0 };
        let descriptor = format!(
            "/Type /FontDescriptor /FontName /{base_name} /Flags {flags} /FontBBox [{} {} {} {}] /ItalicAngle {} /Ascent {} /Descent {} /CapHeight {} /StemV {stem_v}",
            scale(bbox.x_min),
            scale(bbox.y_min),
            scale(bbox.x_max),
            scale(bbox.y_max),
            italic.round() as i64,
            scale(face.ascender()),
            scale(face.descender()),
            scale(cap),
        );
        Ok(Self {
            base_name,
            program: subset.bytes,
            glyphs,
            widths,
            descriptor,
        })
    }

    /// The subset glyph id of `ch` (0, `.notdef`, for a character it lacks).
    pub fn glyph(&self, ch: char) -> u16 {
        self.glyphs.get(&ch).copied().unwrap_or(0)
    }

    /// Writes the font's five objects; `id` is the Type0 font the pages refer to.
    pub fn write<W: Write>(&self, w: &mut PdfWriter<W>, id: ObjId) -> io::Result<()> {
        let (cid, descriptor, file, to_unicode) =
            (w.reserve(), w.reserve(), w.reserve(), w.reserve());
        let name = &self.base_name;
        w.object(
            id,
            &format!(
                "<< /Type /Font /Subtype /Type0 /BaseFont /{name} /Encoding /Identity-H /DescendantFonts [{cid} 0 R] /ToUnicode {to_unicode} 0 R >>"
            ),
        )?;
        let mut widths = String::new();
        for (gid, (adv, _)) in &self.widths {
            let _ = write!(widths, "{gid} [{adv}] ");
        }
        w.object(
            cid,
            &format!(
                "<< /Type /Font /Subtype /CIDFontType2 /BaseFont /{name} /CIDSystemInfo << /Registry (Adobe) /Ordering (Identity) /Supplement 0 >> /FontDescriptor {descriptor} 0 R /DW 1000 /W [{widths}] /CIDToGIDMap /Identity >>"
            ),
        )?;
        w.object(
            descriptor,
            &format!("<< {} /FontFile2 {file} 0 R >>", self.descriptor),
        )?;
        w.stream(
            file,
            &format!("/Length1 {}", self.program.len()),
            &deflate(&self.program),
            true,
        )?;
        w.stream(to_unicode, "", &deflate(self.to_unicode().as_bytes()), true)
    }

    /// The ToUnicode CMap: subset glyph id → the character it draws.
    fn to_unicode(&self) -> String {
        let mut s = String::from(
            "/CIDInit /ProcSet findresource begin\n12 dict begin\nbegincmap\n/CIDSystemInfo << /Registry (Adobe) /Ordering (UCS) /Supplement 0 >> def\n/CMapName /Adobe-Identity-UCS def\n/CMapType 2 def\n1 begincodespacerange\n<0000> <FFFF>\nendcodespacerange\n",
        );
        let entries: Vec<_> = self.widths.iter().collect();
        // At most 100 entries per block (PDF/PostScript CMap limit).
        for block in entries.chunks(100) {
            let _ = writeln!(s, "{} beginbfchar", block.len());
            for (gid, (_, ch)) in block {
                let _ = write!(s, "<{gid:04X}> <");
                for u in ch.encode_utf16(&mut [0; 2]) {
                    let _ = write!(s, "{u:04X}");
                }
                s.push_str(">\n");
            }
            s.push_str("endbfchar\n");
        }
        s.push_str("endcmap\nCMapName currentdict /CMap defineresource pop\nend\nend\n");
        s
    }
}

/// The six capital letters that tag a subset's name (ISO 32000-1 9.6.4), derived from
/// its glyphs so the same job gets the same tag.
fn subset_tag(name: &str, glyphs: &BTreeMap<u16, (i64, char)>) -> String {
    // FNV-1a over the name and glyph ids.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name
        .bytes()
        .chain(glyphs.keys().flat_map(|g| g.to_be_bytes()))
    {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    (0..6)
        .map(|i| char::from(b'A' + ((h >> (i * 8)) % 26) as u8))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_plain_pdf_reals() {
        let s = |v: f32| {
            let mut o = Vec::new();
            num(&mut o, v);
            String::from_utf8(o).unwrap()
        };
        assert_eq!(s(1.0), "1");
        assert_eq!(s(0.25), "0.25");
        assert_eq!(s(-0.00001), "0");
        assert_eq!(s(12.345_67), "12.3457");
        assert_eq!(s(f32::NAN), "0");
        assert_eq!(s(1e9), "1000000000");
    }

    #[test]
    fn text_strings_survive_any_text() {
        assert_eq!(text_string("A)"), "<FEFF00410029>");
        assert_eq!(text_string("😀"), "<FEFFD83DDE00>");
    }

    #[test]
    fn the_xref_points_at_each_object() {
        let mut out = Vec::new();
        {
            let mut w = PdfWriter::new(&mut out).unwrap();
            let (a, b) = (w.reserve(), w.reserve());
            w.object(b, "<< /Type /Pages /Kids [] /Count 0 >>").unwrap();
            w.object(a, &format!("<< /Type /Catalog /Pages {b} 0 R >>"))
                .unwrap();
            let info = w.reserve();
            w.object(info, "<< >>").unwrap();
            assert!(w.object(a, "<< >>").is_err(), "an object is written once");
            w.finish(a, info, [0; 16]).unwrap();
        }
        let doc = lopdf::Document::load_mem(&out).expect("lopdf reads it back");
        assert_eq!(doc.get_pages().len(), 0);
        // Offsets are bytes: skip the binary-marker line before reading as text.
        let head = b"%PDF-1.3\n%\xE2\xE3\xCF\xD3\n".len();
        assert!(out.starts_with(b"%PDF-1.3\n"));
        let text = format!(
            "{}{}",
            " ".repeat(head),
            std::str::from_utf8(&out[head..]).unwrap()
        );
        let xref_at: usize = text
            .rsplit("startxref\n")
            .next()
            .and_then(|t| t.lines().next())
            .and_then(|n| n.parse().ok())
            .unwrap();
        assert!(text[xref_at..].starts_with("xref\n0 4\n"));
        // Each offset starts "N 0 obj".
        for (i, line) in text[xref_at..].lines().skip(3).take(3).enumerate() {
            let off: usize = line[..10].parse().unwrap();
            assert!(text[off..].starts_with(&format!("{} 0 obj", i + 1)));
        }
    }

    #[test]
    fn an_unwritten_object_is_an_error() {
        let mut w = PdfWriter::new(Vec::new()).unwrap();
        let a = w.reserve();
        assert!(w.finish(a, a, [0; 16]).is_err());
    }
}
