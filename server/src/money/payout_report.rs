//! A closed month's payout report as files: the CSV for the accountant (spreadsheet-safe
//! cells) and the PDF (a summary page, then a page per partner with the month's
//! commissions), rendered from the stored report lines through the print crate's text
//! report with embedded fonts, so every partner name prints as written.

use tapkit_core::date::format_date;
use tapkit_print::report::{
    Block, Chapter, Column, MARGIN_MM, ReportFonts, Row, Style, Table, TextReport,
};

use super::payouts::Report;
use crate::store::ledger::PeriodCommission;

/// Formats minor units of a unit for people: `1234.50 USD`, `3 × free-basic-service`.
pub fn money(amount: i64, unit: &str) -> String {
    if let Some(v) = unit.strip_prefix("voucher:") {
        return format!("{amount} x {v}");
    }
    let (code, suffix) = match unit.strip_prefix("credit:") {
        Some(c) => (c, " credit"),
        None => (unit, ""),
    };
    let sign = if amount < 0 { "-" } else { "" };
    let a = amount.unsigned_abs();
    format!("{sign}{}.{:02} {code}{suffix}", a / 100, a % 100)
}

/// Spreadsheet-safe CSV cell:
/// - every control character (NUL, tab, line breaks, escape, DEL, C1) becomes U+FFFD, so
///   that a tapped code such as `%00` or a pasted name cannot put raw control bytes in a
///   file that an accountant opens as text;
/// - text then starting with = + - @ is prefixed with ' so that a partner named
///   "=HYPERLINK(…)" cannot run a formula in the accountant's spreadsheet.
pub fn cell(v: &str) -> String {
    let clean: String = v
        .chars()
        .map(|c| if c.is_control() { '\u{FFFD}' } else { c })
        .collect();
    if clean.starts_with(['=', '+', '-', '@']) {
        format!("'{clean}")
    } else {
        clean
    }
}

/// The report as CSV (one line per affiliate and unit).
pub fn csv(r: &Report) -> Result<Vec<u8>, csv::Error> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record([
        "period",
        "affiliate_id",
        "code",
        "name",
        "unit",
        "opening_minor",
        "earned_minor",
        "reversed_minor",
        "issued_minor",
        "held_minor",
        "payout_minor",
        "carried_minor",
        "payout",
    ])?;
    for l in &r.lines {
        w.write_record([
            l.period.clone(),
            l.affiliate_id.to_string(),
            l.code.clone(),
            cell(&l.name),
            l.unit.clone(),
            l.opening_minor.to_string(),
            l.earned_minor.to_string(),
            l.reversed_minor.to_string(),
            l.issued_minor.to_string(),
            l.held_minor.to_string(),
            l.payout_minor.to_string(),
            l.carried_minor.to_string(),
            money(l.payout_minor, &l.unit),
        ])?;
    }
    w.into_inner().map_err(|e| e.into_error().into())
}

/// Totals per unit: (unit, payout, carried).
pub fn totals(r: &Report) -> Vec<(String, i64, i64)> {
    let mut t: Vec<(String, i64, i64)> = Vec::new();
    for l in &r.lines {
        match t.iter_mut().find(|x| x.0 == l.unit) {
            Some(x) => {
                x.1 += l.payout_minor;
                x.2 += l.carried_minor;
            }
            None => t.push((l.unit.clone(), l.payout_minor, l.carried_minor)),
        }
    }
    t.sort();
    t
}

fn row(cells: &[&str], bold: bool) -> Row {
    Row {
        cells: cells.iter().map(|c| (*c).to_owned()).collect(),
        bold,
    }
}

fn table(columns: &[(f32, &str)], size_pt: f32, row_gap_mm: f32, rows: Vec<Row>) -> Block {
    Block::Table(Table {
        columns: columns.iter().map(|(x, t)| Column::new(*x, t)).collect(),
        size_pt,
        row_gap_mm,
        rows,
        empty: None,
    })
}

/// The report as text-report data: a summary chapter (totals and one row per partner
/// line) and one chapter per partner with its lines and the commissions of the month.
fn pdf_report(r: &Report, program: &str, commissions: &[PeriodCommission]) -> TextReport {
    let title = format!("Payout report {}", r.period);
    let partners = {
        let mut v: Vec<i64> = r.lines.iter().map(|l| l.affiliate_id).collect();
        v.dedup();
        v.len()
    };
    let totals = totals(r)
        .into_iter()
        .map(|(unit, payout, carried)| {
            row(
                &[
                    &format!("Total payout {}", money(payout, &unit)),
                    &format!("carried {}", money(carried, &unit)),
                ],
                false,
            )
        })
        .collect();
    let lines = r
        .lines
        .iter()
        .map(|l| {
            row(
                &[
                    &l.code,
                    &l.name,
                    &money(l.payout_minor, &l.unit),
                    &money(l.carried_minor, &l.unit),
                ],
                false,
            )
        })
        .collect();
    let summary = Chapter {
        running_title: title.clone(),
        blocks: vec![
            Block::line(Style::bold(18.0), &title),
            Block::Space(2.0),
            Block::line(Style::regular(10.0), program),
            Block::Space(1.0),
            Block::paragraph(
                Style::regular(9.0),
                &format!(
                    "Closed {} UTC. Amounts per partner and unit; held = inside the holding period, carried = owed after this payout.",
                    format_date(r.closed_at.div_euclid(86_400_000))
                ),
            ),
            Block::Space(4.0),
            Block::heading(Style::bold(12.0), "Totals"),
            Block::Space(1.0),
            table(&[(MARGIN_MM, ""), (110.0, "")], 10.0, 1.5, totals),
            Block::Space(2.0),
            Block::line(Style::regular(9.0), &format!("{partners} partners")),
            Block::Space(4.0),
            table(
                &[
                    (MARGIN_MM, "Code"),
                    (45.0, "Partner"),
                    (110.0, "Payout"),
                    (155.0, "Carried"),
                ],
                9.0,
                1.0,
                lines,
            ),
        ],
    };
    let mut chapters = vec![summary];
    for lines in r.lines.chunk_by(|a, b| a.affiliate_id == b.affiliate_id) {
        let first = &lines[0];
        let aff = first.affiliate_id;
        let mut blocks = vec![
            Block::line(Style::bold(16.0), &first.name),
            Block::Space(2.0),
            Block::line(
                Style::regular(10.0),
                &format!("Referral code {} - payout report {}", first.code, r.period),
            ),
            Block::Space(4.0),
        ];
        for l in lines {
            let rows = [
                ("Owed at the start of the month", l.opening_minor),
                ("Earned this month", l.earned_minor),
                ("Reversed (refunds, clawbacks)", -l.reversed_minor),
                ("Issued as rewards", -l.issued_minor),
                ("Held (holding period)", l.held_minor),
                ("Payout", l.payout_minor),
                ("Carried to next month", l.carried_minor),
            ]
            .into_iter()
            .filter(|(label, v)| *label != "Issued as rewards" || *v != 0)
            .map(|(label, v)| row(&[label, &money(v, &l.unit)], label == "Payout"))
            .collect();
            blocks.push(Block::heading(Style::bold(11.0), &l.unit));
            blocks.push(Block::Space(1.0));
            blocks.push(table(
                &[(MARGIN_MM + 4.0, ""), (120.0, "")],
                10.0,
                1.0,
                rows,
            ));
            blocks.push(Block::Space(3.0));
        }
        let mine = commissions
            .iter()
            .filter(|pc| pc.line.affiliate_id == aff)
            .map(|pc| {
                let c = &pc.line;
                row(
                    &[
                        &format_date(c.created_at.div_euclid(86_400_000)),
                        &pc.booking_id,
                        pc.channel.as_deref().unwrap_or(""),
                        c.status.as_str(),
                        &money(c.amount_minor, &c.unit),
                    ],
                    false,
                )
            })
            .collect();
        blocks.push(Block::heading(
            Style::bold(11.0),
            "Commissions on the ledger this month",
        ));
        blocks.push(Block::Space(1.0));
        blocks.push(Block::Table(Table {
            columns: [
                (MARGIN_MM + 4.0, "Date"),
                (45.0, "Booking"),
                (95.0, "Channel"),
                (120.0, "Status"),
                (150.0, "Amount"),
            ]
            .iter()
            .map(|(x, t)| Column::new(*x, t))
            .collect(),
            size_pt: 9.0,
            row_gap_mm: 0.5,
            rows: mine,
            empty: Some("none".into()),
        }));
        chapters.push(Chapter {
            running_title: first.name.clone(),
            blocks,
        });
    }
    TextReport { title, chapters }
}

/// The report as a PDF: a summary page (totals and one row per partner line) and one
/// page per partner with its lines and the commissions of the month (more pages when
/// long, each headed "(continued)"). Set in the print crate's text reports with
/// embedded Liberation Sans, so names print as written; text wider than its column is
/// cut with "…", and a character the font lacks prints as "□" and is logged.
pub fn pdf(r: &Report, program: &str, commissions: &[PeriodCommission]) -> Vec<u8> {
    let out =
        tapkit_print::report::render(&pdf_report(r, program, commissions), ReportFonts::builtin());
    if !out.layout.replaced.is_empty() {
        tracing::warn!(
            period = %r.period,
            missing = ?out.layout.replaced,
            "the payout PDF font has no glyph for some characters; they print as a box"
        );
    }
    out.pdf
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::ledger::PayoutLine;

    #[test]
    fn amounts_read_like_money() {
        assert_eq!(money(123_450, "USD"), "1234.50 USD");
        assert_eq!(money(-5, "EUR"), "-0.05 EUR");
        assert_eq!(money(2500, "credit:USD"), "25.00 USD credit");
        assert_eq!(
            money(2, "voucher:free-basic-service"),
            "2 x free-basic-service"
        );
        assert_eq!(cell("=1+1"), "'=1+1");
        assert_eq!(cell("Joe's Gym"), "Joe's Gym");
        assert_eq!(cell("\0=1+1"), "\u{FFFD}=1+1");
        assert_eq!(cell("\t=cmd"), "\u{FFFD}=cmd");
        assert_eq!(
            cell("a\u{1b}[31mb\nc\u{7f}\u{85}"),
            "a\u{FFFD}[31mb\u{FFFD}c\u{FFFD}\u{FFFD}"
        );
        assert_eq!(cell("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(cell(CAFE), CAFE);
    }

    const CAFE: &str = "Café Zürich & Co.";
    const LODZ: &str = "Łódź Książki";
    const LONG: &str = "Centrum Dystrybucji Książek Północ Sp. z o.o.";

    fn line(affiliate_id: i64, name: &str, unit: &str, payout_minor: i64) -> PayoutLine {
        PayoutLine {
            id: affiliate_id,
            period: "2026-05".into(),
            affiliate_id,
            code: format!("P{affiliate_id}-7K2M9Q"),
            name: name.into(),
            unit: unit.into(),
            opening_minor: 0,
            earned_minor: payout_minor,
            reversed_minor: 0,
            issued_minor: 0,
            held_minor: 0,
            payout_minor,
            carried_minor: 0,
            paid_at: None,
            paid_reference: None,
        }
    }

    fn commission(affiliate_id: i64, i: i64) -> PeriodCommission {
        let c = crate::store::money::CommissionLine {
            id: i,
            booking_ref: i,
            affiliate_id,
            status: crate::store::vocab::CommissionStatus::Earned,
            unit: "USD".into(),
            amount_minor: 250,
            basis_minor: Some(2500),
            tier: None,
            rule: None,
            month: "2026-05".into(),
            payable_at: None,
            transaction_id: None,
            reason: None,
            created_at: 1_778_000_000_000,
        };
        PeriodCommission {
            line: c,
            booking_id: format!("résa-{i}"),
            channel: Some("nfc".into()),
        }
    }

    fn poppler(tool: &str, pdf: &[u8]) -> String {
        let path = std::env::temp_dir().join(format!(
            "tapkit-payout-unit-{}-{tool}.pdf",
            std::process::id()
        ));
        std::fs::write(&path, pdf).unwrap();
        let mut cmd = std::process::Command::new(tool);
        if tool == "pdftotext" {
            cmd.args(["-layout"]).arg(&path).arg("-");
        } else {
            cmd.arg(&path);
        }
        let out = cmd.output().unwrap_or_else(|e| {
            panic!("{tool} (poppler-utils; scripts/install-deps.sh print) is needed: {e}")
        });
        let _ = std::fs::remove_file(&path);
        assert!(out.status.success(), "{tool} failed");
        String::from_utf8(out.stdout).unwrap()
    }

    #[test]
    fn pdf_prints_every_name_as_written_in_embedded_fonts() {
        let r = Report {
            period: "2026-05".into(),
            closed_at: 1_780_300_800_000,
            lines: vec![
                line(1, CAFE, "USD", 15_000),
                line(1, CAFE, "credit:USD", 1_000),
                line(2, LODZ, "USD", 2_500),
                line(3, LONG, "USD", 500),
            ],
        };
        // Enough commissions for Café Zürich's list to run onto a second page.
        let commissions: Vec<_> = (0..70)
            .map(|i| commission(1, i))
            .chain([commission(2, 70)])
            .collect();
        let pdf = pdf(&r, "Programme Éte", &commissions);
        let text = poppler("pdftotext", &pdf);
        for want in [
            "Payout report 2026-05",
            "Programme Éte",
            CAFE,
            LODZ,
            // Its own page's title is the whole name ...
            LONG,
            "Referral code P2-7K2M9Q",
            &format!("{CAFE} (continued)"),
            "résa-69",
            "Total payout 180.00 USD",
        ] {
            assert!(text.contains(want), "{want:?} not in the PDF text:\n{text}");
        }
        // ... while the summary's Partner column cuts it at the column's width.
        let summary_row = text
            .lines()
            .find(|l| l.contains("P3-7K2M9Q"))
            .unwrap_or_default();
        assert!(
            summary_row.contains("Centrum Dystrybucji Książek")
                && summary_row.contains('…')
                && !summary_row.contains(LONG),
            "{summary_row:?}"
        );
        assert!(!text.contains('?'), "{text}");
        assert_eq!(text.matches(CAFE).count(), 4, "summary ×2, page, continued");
        assert_eq!(
            text.matches("Referral code").count(),
            3,
            "one page per partner"
        );
        assert_eq!(
            text.matches('\u{c}').count(),
            5,
            "summary + 2 + 1 + 1 pages"
        );
        let fonts = poppler("pdffonts", &pdf);
        let faces: Vec<&str> = fonts.lines().skip(2).collect();
        assert_eq!(faces.len(), 2, "{fonts}");
        for f in faces {
            let cols: Vec<&str> = f.split_whitespace().collect();
            assert!(cols[0].contains("+LiberationSans"), "{fonts}");
            assert_eq!(
                cols[cols.len() - 5..cols.len() - 2],
                ["yes", "yes", "yes"],
                "embedded, subset, with a Unicode map:\n{fonts}"
            );
        }
    }
}
