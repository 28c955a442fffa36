//! `provisioner print` checked with real tools: poppler (pdfinfo, pdffonts, pdftoppm,
//! pdftotext) for boxes, fonts and text, and zbar (zbarimg) as an independent QR decoder
//! on every card rasterised at 300 dpi and on every PNG.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use tapkit_core::code::ReferralCode;

const DOMAIN: &str = "book.example.com";

struct Dir(PathBuf);

impl Dir {
    fn new(tag: &str) -> Self {
        let d = std::env::temp_dir().join(format!("tapkit-print-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        Self(d)
    }
    fn p(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn tool(name: &str, args: &[&str]) -> Output {
    Command::new(name).args(args).output().unwrap_or_else(|e| {
        panic!("{name} is needed for this test ({e}); scripts/install-deps.sh print installs poppler-utils and zbar-tools")
    })
}

fn csv(path: &Path, names: &[&str]) -> Vec<ReferralCode> {
    let mut s = String::from("name,code\n");
    let mut codes = Vec::new();
    for (i, n) in names.iter().enumerate() {
        let c = ReferralCode::generate(n, 4242 + i as u32);
        s += &format!("\"{}\",{c}\n", n.replace('"', "\"\""));
        codes.push(c);
    }
    std::fs::write(path, s).unwrap();
    codes
}

fn print(d: &Dir, csv: &Path, layout: &str, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_provisioner"))
        .args(["print", "--csv"])
        .arg(csv)
        .args(["--domain", DOMAIN, "--layout", layout, "--out"])
        .arg(d.p("out.pdf"))
        .arg("--layout-json")
        .arg(d.p("layout.json"))
        .args(extra)
        .output()
        .unwrap()
}

/// Every front's QR, cropped from a 300 dpi render of its page, decoded by zbar.
fn decode_all(d: &Dir) -> Vec<(String, String)> {
    let layout: serde_json::Value =
        serde_json::from_slice(&std::fs::read(d.p("layout.json")).unwrap()).unwrap();
    let mut out = Vec::new();
    for c in layout["cards"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["side"] == "front")
    {
        let page = c["page"].as_u64().unwrap() as usize;
        let media = &layout["pages"][page - 1]["media"];
        let page_h_mm = media[3].as_f64().unwrap() * 25.4 / 72.0;
        let q = &c["qr"]["with_quiet_zone"];
        let s = 300.0 / 25.4;
        let (x, y, w, h) = (
            q["x"].as_f64().unwrap(),
            q["y"].as_f64().unwrap(),
            q["w"].as_f64().unwrap(),
            q["h"].as_f64().unwrap(),
        );
        let png = d.p(&format!("crop-{page}-{}", c["code"].as_str().unwrap()));
        let p = page.to_string();
        let r = tool(
            "pdftoppm",
            &[
                "-r",
                "300",
                "-f",
                &p,
                "-l",
                &p,
                "-singlefile",
                "-png",
                "-x",
                &((x * s) as i64).to_string(),
                "-y",
                &(((page_h_mm - y - h) * s) as i64).to_string(),
                "-W",
                &((w * s).ceil() as i64).to_string(),
                "-H",
                &((h * s).ceil() as i64).to_string(),
                d.p("out.pdf").to_str().unwrap(),
                png.to_str().unwrap(),
            ],
        );
        assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
        let z = tool(
            "zbarimg",
            &["--raw", "-q", &format!("{}.png", png.display())],
        );
        out.push((
            c["qr_payload"].as_str().unwrap().to_owned(),
            String::from_utf8_lossy(&z.stdout).trim().to_owned(),
        ));
    }
    out
}

fn boxes(pdf: &Path) -> Vec<(String, [f64; 4])> {
    let o = tool(
        "pdfinfo",
        &["-box", "-f", "1", "-l", "1", pdf.to_str().unwrap()],
    );
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter(|l| l.contains("Box:"))
        .map(|l| {
            let (name, rest) = l.split_once(':').unwrap();
            let v: Vec<f64> = rest
                .split_whitespace()
                .map(|x| x.parse().unwrap())
                .collect();
            (
                name.split_whitespace().last().unwrap().to_owned(),
                [v[0], v[1], v[2], v[3]],
            )
        })
        .collect()
}

const NAMES: [&str; 5] = [
    "Iron Gym",
    "Café Zürich & Co.",
    "Łódź Książki",
    "Glow Day Spa",
    "Bergstraße Karosseriebau und Lackiererei",
];

#[test]
fn one_card_per_page_has_correct_boxes_fonts_codes_and_text() {
    let d = Dir::new("percard");
    let codes = csv(&d.p("p.csv"), &NAMES);
    let o = print(
        &d,
        &d.p("p.csv"),
        "per-card",
        &["--png-dir", d.p("png").to_str().unwrap()],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));

    // Boxes: page = trim + 3 mm bleed; TrimBox inset by 3 mm (8.50 pt).
    let b = boxes(&d.p("out.pdf"));
    let get = |n: &str| b.iter().find(|(k, _)| k == n).unwrap().1;
    assert_eq!(get("MediaBox"), [0.0, 0.0, 259.65, 170.08]);
    assert_eq!(get("BleedBox"), [0.0, 0.0, 259.65, 170.08]);
    assert_eq!(get("TrimBox"), [8.5, 8.5, 251.15, 161.57]);
    let info =
        String::from_utf8_lossy(&tool("pdfinfo", &[d.p("out.pdf").to_str().unwrap()]).stdout)
            .into_owned();
    assert!(info.contains("Pages:           10"), "{info}");
    assert!(info.contains("PDF subtype:    PDF/X-1:2001"), "{info}");

    // Fonts: embedded and subset, and nothing else (no base-14 fallbacks).
    let fonts =
        String::from_utf8_lossy(&tool("pdffonts", &[d.p("out.pdf").to_str().unwrap()]).stdout)
            .into_owned();
    let rows: Vec<&str> = fonts.lines().skip(2).collect();
    assert_eq!(rows.len(), 2, "{fonts}");
    for r in rows {
        assert!(
            r.contains("+LiberationSans") && r.contains("yes yes yes"),
            "not embedded+subset: {r}"
        );
    }

    // CMYK only: no RGB or grey colour operators anywhere in the decompressed streams.
    let qdf = d.p("out.qdf");
    let q = tool(
        "qpdf",
        &[
            "--qdf",
            "--object-streams=disable",
            d.p("out.pdf").to_str().unwrap(),
            qdf.to_str().unwrap(),
        ],
    );
    assert!(q.status.success(), "{}", String::from_utf8_lossy(&q.stderr));
    let raw = String::from_utf8_lossy(&std::fs::read(&qdf).unwrap()).into_owned();
    let ops: Vec<&str> = raw
        .lines()
        .filter_map(|l| l.split_whitespace().last())
        .collect();
    for banned in ["rg", "RG", "g", "G", "sc", "scn"] {
        assert!(
            !ops.contains(&banned),
            "colour operator {banned} found: not CMYK-only"
        );
    }
    assert!(ops.contains(&"k"), "CMYK fills are present");
    assert!(raw.contains("/DeviceCMYK"), "the logo is a CMYK image");

    // Non-ASCII names come out as text (ToUnicode), the long one on two lines.
    let text = String::from_utf8_lossy(
        &tool("pdftotext", &[d.p("out.pdf").to_str().unwrap(), "-"]).stdout,
    )
    .into_owned();
    for n in [
        "Café Zürich & Co.",
        "Łódź Książki",
        "Bergstraße Karosseriebau",
        "und Lackiererei",
    ] {
        assert!(text.contains(n), "{n:?} missing from the PDF text");
    }

    // Every card's QR decodes to exactly its partner's URL.
    let decoded = decode_all(&d);
    assert_eq!(decoded.len(), 5);
    for ((want, got), code) in decoded.iter().zip(&codes) {
        assert_eq!(want, &format!("https://{DOMAIN}/r/{code}?s=qr"));
        assert_eq!(got, want);
    }

    // The card makers' CSV ties pages to codes, QR URLs and chip URLs.
    let csv_text = std::fs::read_to_string(d.p("out.csv")).unwrap();
    let mut lines = csv_text.lines();
    assert_eq!(lines.next(), Some("page,code,name,kind,qr_url,nfc_url"));
    assert_eq!(
        lines.next().unwrap(),
        format!(
            "1,{},Iron Gym,business,https://{DOMAIN}/r/{}?s=qr,https://{DOMAIN}/r/{}?m=00000000000000x000000",
            codes[0], codes[0], codes[0]
        )
    );

    // The portal PNGs: 1024 px, decoding to the same URLs; SVGs alongside.
    for code in &codes {
        let png = d.p(&format!("png/{code}.png"));
        let img = image::open(&png).unwrap();
        assert_eq!((img.width(), img.height()), (1024, 1024));
        let z = tool("zbarimg", &["--raw", "-q", png.to_str().unwrap()]);
        assert_eq!(
            String::from_utf8_lossy(&z.stdout).trim(),
            format!("https://{DOMAIN}/r/{code}?s=qr")
        );
        assert!(
            std::fs::read_to_string(d.p(&format!("png/{code}.svg")))
                .unwrap()
                .starts_with("<svg")
        );
    }

    // The layout: modules no smaller than 0.5 mm, quiet zone inside the trim.
    let layout: serde_json::Value =
        serde_json::from_slice(&std::fs::read(d.p("layout.json")).unwrap()).unwrap();
    for c in layout["cards"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["side"] == "front")
    {
        let q = &c["qr"];
        assert!(q["module_mm"].as_f64().unwrap() >= 0.5);
        assert_eq!(q["ec"], "M");
        let (qz, trim) = (&q["with_quiet_zone"], &c["trim"]);
        let f = |v: &serde_json::Value, k: &str| v[k].as_f64().unwrap();
        assert!(
            f(qz, "x") >= f(trim, "x")
                && f(qz, "x") + f(qz, "w") <= f(trim, "x") + f(trim, "w") + 1e-3
        );
        assert!(
            f(qz, "y") >= f(trim, "y")
                && f(qz, "y") + f(qz, "h") <= f(trim, "y") + f(trim, "h") + 1e-3
        );
    }
}

#[test]
fn imposed_sheets_decode_card_by_card() {
    for (layout, per_sheet, sheet_pt) in [
        ("a4", 10, [595.28, 841.89]),
        ("letter", 8, [612.0, 792.0]),
        ("sra3", 21, [907.09, 1275.59]),
    ] {
        let d = Dir::new(layout);
        let names: Vec<String> = (0..per_sheet + 3)
            .map(|i| format!("{} {i}", NAMES[i % NAMES.len()]))
            .collect();
        let name_refs: Vec<&str> = names.iter().map(String::as_str).collect();
        csv(&d.p("p.csv"), &name_refs);
        let o = print(&d, &d.p("p.csv"), layout, &[]);
        assert!(
            o.status.success(),
            "{layout}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let b = boxes(&d.p("out.pdf"));
        let media = b.iter().find(|(k, _)| k == "MediaBox").unwrap().1;
        assert!(
            (media[2] - sheet_pt[0]).abs() < 0.1 && (media[3] - sheet_pt[1]).abs() < 0.1,
            "{layout}: {media:?}"
        );
        let info =
            String::from_utf8_lossy(&tool("pdfinfo", &[d.p("out.pdf").to_str().unwrap()]).stdout)
                .into_owned();
        assert!(
            info.contains("Pages:           4"),
            "{layout}: two sheets, each with its back: {info}"
        );
        let decoded = decode_all(&d);
        assert_eq!(decoded.len(), per_sheet + 3);
        for (want, got) in decoded {
            assert_eq!(got, want, "{layout}");
        }
    }
}

#[test]
fn a_logo_over_the_qr_raises_error_correction_and_still_decodes() {
    let d = Dir::new("logo");
    csv(&d.p("p.csv"), &NAMES[..2]);
    let assets = Path::new(env!("CARGO_MANIFEST_DIR")).join("../assets");
    let tpl = std::fs::read_to_string(assets.join("templates/default.toml"))
        .unwrap()
        .replace("logo_over_qr = false", "logo_over_qr = true");
    let tpl = tpl.replace("\"../", &format!("\"{}/", assets.display()));
    std::fs::write(d.p("t.toml"), tpl).unwrap();
    let o = print(
        &d,
        &d.p("p.csv"),
        "per-card",
        &["--template", d.p("t.toml").to_str().unwrap()],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let layout: serde_json::Value =
        serde_json::from_slice(&std::fs::read(d.p("layout.json")).unwrap()).unwrap();
    assert_eq!(layout["cards"][0]["qr"]["ec"], "H");
    for (want, got) in decode_all(&d) {
        assert_eq!(got, want);
    }
}

#[test]
fn names_that_cannot_fit_are_refused_with_the_partner_named() {
    let d = Dir::new("toolong");
    let long = "Zentralwerkstatt für Oldtimerrestaurierung Hintertupfingen-Oberberg";
    csv(&d.p("p.csv"), &["Iron Gym", long, "東京ジム"]);
    let o = print(&d, &d.p("p.csv"), "a4", &[]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("nothing was written"), "{err}");
    assert!(
        err.contains(&format!("{long} (")) && err.contains("does not fit on the card"),
        "{err}"
    );
    assert!(
        err.contains("東京ジム") && err.contains("no glyph for '東'"),
        "{err}"
    );
    assert!(!d.p("out.pdf").exists());
}

#[test]
fn bad_templates_are_refused_clearly() {
    let d = Dir::new("badtpl");
    csv(&d.p("p.csv"), &NAMES[..1]);
    std::fs::write(d.p("t.toml"), "[card]\nbleed_mm = 3.0\n").unwrap();
    let o = print(
        &d,
        &d.p("p.csv"),
        "per-card",
        &["--template", d.p("t.toml").to_str().unwrap()],
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("missing field"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}
