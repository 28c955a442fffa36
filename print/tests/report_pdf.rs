//! The text report as poppler reads it: every name comes back exactly, and the fonts are
//! embedded subsets (`pdftotext`, `pdffonts`: poppler-utils, `scripts/install-deps.sh print`).

use std::path::PathBuf;
use std::process::Command;

use tapkit_print::report::{
    Block, Chapter, Column, MARGIN_MM, ReportFonts, Row, Style, Table, TextReport, render,
};

const NAMES: [&str; 2] = ["Café Zürich & Co.", "Łódź Książki"];

fn poppler(tool: &str, pdf: &[u8], args: &[&str]) -> String {
    let path: PathBuf =
        std::env::temp_dir().join(format!("tapkit-report-{}-{tool}.pdf", std::process::id()));
    std::fs::write(&path, pdf).expect("write the PDF to the temp dir");
    let out = Command::new(tool)
        .args(args)
        .arg(&path)
        .args(if tool == "pdftotext" {
            &["-"][..]
        } else {
            &[][..]
        })
        .output()
        .unwrap_or_else(|e| {
            panic!("{tool} (poppler-utils; scripts/install-deps.sh print) is needed: {e}")
        });
    let _ = std::fs::remove_file(&path);
    assert!(
        out.status.success(),
        "{tool} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("poppler prints UTF-8")
}

fn report(rows_per_partner: usize) -> TextReport {
    let summary = Chapter {
        running_title: "Payout report 2026-05".into(),
        blocks: vec![
            Block::line(Style::bold(18.0), "Payout report 2026-05"),
            Block::Space(2.0),
            Block::Table(Table {
                columns: vec![Column::new(MARGIN_MM, "Code"), Column::new(45.0, "Partner")],
                size_pt: 9.0,
                row_gap_mm: 1.0,
                rows: NAMES
                    .iter()
                    .enumerate()
                    .map(|(i, n)| Row {
                        cells: vec![format!("P{i}-7K2M9Q"), (*n).into()],
                        bold: false,
                    })
                    .collect(),
                empty: None,
            }),
        ],
    };
    let partners = NAMES.iter().map(|n| Chapter {
        running_title: (*n).into(),
        blocks: vec![
            Block::line(Style::bold(16.0), n),
            Block::heading(Style::bold(11.0), "Commissions"),
            Block::Table(Table {
                columns: vec![Column::new(22.0, "Booking"), Column::new(95.0, "Amount")],
                size_pt: 9.0,
                row_gap_mm: 0.5,
                rows: (0..rows_per_partner)
                    .map(|i| Row {
                        cells: vec![format!("bk-{i}"), "12.00 EUR".into()],
                        bold: false,
                    })
                    .collect(),
                empty: Some("none".into()),
            }),
        ],
    });
    TextReport {
        title: "Payout report 2026-05".into(),
        chapters: std::iter::once(summary).chain(partners).collect(),
    }
}

#[test]
fn names_come_back_exactly_from_the_pdf() {
    let r = render(&report(80), ReportFonts::builtin());
    assert_eq!(r.layout.replaced, Vec::<char>::new());
    let text = poppler("pdftotext", &r.pdf, &["-layout"]);
    for name in NAMES {
        // Once on the summary, once as its page title, once per continuation page.
        assert!(
            text.matches(name).count() >= 3,
            "{name:?} not printed as written:\n{text}"
        );
        assert!(text.contains(&format!("{name} (continued)")), "{text}");
    }
    assert!(!text.contains('?') && !text.contains('\u{FFFD}'), "{text}");
    let pages = text.matches('\u{c}').count();
    assert_eq!(pages, r.layout.pages.len(), "form feeds = pages");
}

#[test]
fn fonts_are_embedded_subsets_with_unicode_maps() {
    let r = render(&report(1), ReportFonts::builtin());
    let fonts = poppler("pdffonts", &r.pdf, &[]);
    let rows: Vec<&str> = fonts.lines().skip(2).collect();
    assert_eq!(rows.len(), 2, "regular and bold:\n{fonts}");
    for row in rows {
        let cols: Vec<&str> = row.split_whitespace().collect();
        // name type... encoding emb sub uni object ID
        let n = cols.len();
        assert!(n >= 7, "{fonts}");
        assert_eq!(
            &cols[n - 5..n - 2],
            ["yes", "yes", "yes"],
            "emb sub uni:\n{fonts}"
        );
        assert!(
            cols[0].contains('+') && cols[0].contains("LiberationSans"),
            "a named subset:\n{fonts}"
        );
        assert_eq!(cols[n - 6], "Identity-H", "{fonts}");
    }
    // Subset, not the whole 400 KB faces.
    assert!(r.pdf.len() < 120_000, "{} bytes", r.pdf.len());
}

#[test]
fn the_pdf_has_its_title_and_pages_and_claims_no_pdf_x() {
    let r = render(&report(80), ReportFonts::builtin());
    let info = poppler("pdfinfo", &r.pdf, &[]);
    assert!(
        info.lines()
            .any(|l| l.starts_with("Title:") && l.ends_with("Payout report 2026-05")),
        "{info}"
    );
    let pages = info
        .lines()
        .find_map(|l| l.strip_prefix("Pages:"))
        .map(str::trim);
    assert_eq!(
        pages,
        Some(r.layout.pages.len().to_string().as_str()),
        "{info}"
    );
    assert!(!info.contains("PDF/X"), "a report is not PDF/X:\n{info}");
    assert!(info.contains("A4"), "{info}");
}
