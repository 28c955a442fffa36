//! Layout tests: what goes where, without the PDF bytes.

use super::*;

const NAMES: [&str; 2] = ["Café Zürich & Co.", "Łódź Książki"];

fn texts(page: &[Placed]) -> Vec<&str> {
    page.iter().map(|p| p.text.as_str()).collect()
}

fn one_chapter(blocks: Vec<Block>) -> TextReport {
    TextReport {
        title: "test".into(),
        chapters: vec![Chapter {
            running_title: "Test".into(),
            blocks,
        }],
    }
}

fn table(rows: usize) -> Table {
    Table {
        columns: vec![Column::new(MARGIN_MM, "Code"), Column::new(45.0, "Partner")],
        size_pt: 9.0,
        row_gap_mm: 1.0,
        rows: (0..rows)
            .map(|i| Row {
                cells: vec![format!("C{i}"), NAMES[i % 2].into()],
                bold: false,
            })
            .collect(),
        empty: Some("none".into()),
    }
}

#[test]
fn builtin_fonts_cover_latin_names() {
    let f = ReportFonts::builtin();
    let latin = (0xA1..=0x17F_u32)
        .filter_map(char::from_u32)
        .filter(|c| *c != '\u{AD}');
    for bold in [false, true] {
        for c in latin.clone().chain([ELLIPSIS, REPLACEMENTS[1]]) {
            assert!(
                f.face(bold).lookup_glyph_index(u32::from(c)).is_some(),
                "{c:?} (U+{:04X}) missing in the {} face",
                u32::from(c),
                if bold { "bold" } else { "regular" }
            );
        }
    }
}

#[test]
fn names_print_as_written() {
    let mut blocks: Vec<Block> = NAMES
        .iter()
        .map(|n| Block::line(Style::bold(16.0), n))
        .collect();
    blocks.push(Block::Table(table(2)));
    let l = layout(&one_chapter(blocks), ReportFonts::builtin());
    assert_eq!(l.replaced, Vec::<char>::new());
    assert_eq!(l.pages.len(), 1);
    let t = texts(&l.pages[0]);
    assert_eq!(
        t,
        [
            NAMES[0], NAMES[1], "Code", "Partner", "C0", NAMES[0], "C1", NAMES[1]
        ]
    );
}

#[test]
fn missing_glyphs_become_the_replacement_character_and_are_listed() {
    let l = layout(
        &one_chapter(vec![Block::line(
            Style::regular(10.0),
            "Tea 🍵\u{7}House\tOne",
        )]),
        ReportFonts::builtin(),
    );
    assert_eq!(texts(&l.pages[0]), ["Tea □□House One"]);
    assert_eq!(l.replaced, ['\u{7}', '🍵']);
}

#[test]
fn cells_are_cut_at_the_fonts_width_with_an_ellipsis() {
    let long = "Łódź Książki Wielkopolskie Centrum Dystrybucji Sp. z o.o. Oddział Północny";
    let mut t = table(0);
    t.columns.push(Column::new(110.0, "Payout"));
    t.rows.push(Row {
        cells: vec!["C0".into(), long.into(), "10.00 USD".into()],
        bold: false,
    });
    let l = layout(&one_chapter(vec![Block::Table(t)]), ReportFonts::builtin());
    let cell = &l.pages[0][4];
    assert_eq!(cell.x_mm, 45.0);
    assert!(cell.text.ends_with('…'), "{:?}", cell.text);
    let kept = cell.text.trim_end_matches('…');
    assert!(
        long.starts_with(kept) && kept.chars().count() > 20,
        "{kept:?}"
    );
    assert!(
        cell.width_mm <= 110.0 - 45.0 - COLUMN_GAP_MM,
        "{}",
        cell.width_mm
    );
    // The last column may use the room up to the right margin; a line too.
    let line = layout(
        &one_chapter(vec![Block::line(Style::bold(18.0), &long.repeat(2))]),
        ReportFonts::builtin(),
    );
    assert!(line.pages[0][0].width_mm <= A4_W_MM - 2.0 * MARGIN_MM);
    assert!(line.pages[0][0].width_mm > A4_W_MM - 2.0 * MARGIN_MM - 10.0);
}

#[test]
fn long_tables_continue_on_new_pages_with_their_header() {
    let rows = 150;
    let l = layout(
        &one_chapter(vec![
            Block::line(Style::bold(18.0), "Title"),
            Block::Table(table(rows)),
        ]),
        ReportFonts::builtin(),
    );
    assert!(l.pages.len() >= 3, "{} pages", l.pages.len());
    let mut seen = Vec::new();
    for (i, page) in l.pages.iter().enumerate() {
        let t = texts(page);
        if i == 0 {
            assert_eq!(&t[..3], ["Title", "Code", "Partner"]);
        } else {
            assert_eq!(&t[..3], ["Test (continued)", "Code", "Partner"], "page {i}");
        }
        for p in page {
            assert!(
                p.baseline_mm >= MARGIN_MM,
                "page {i}: {p:?} in the bottom margin"
            );
            assert!(
                p.baseline_mm <= A4_H_MM - MARGIN_MM,
                "page {i}: {p:?} in the top margin"
            );
        }
        seen.extend(
            page.iter()
                .filter(|p| p.x_mm == MARGIN_MM && p.text.starts_with('C') && p.text != "Code")
                .map(|p| p.text.clone()),
        );
    }
    let want: Vec<String> = (0..rows).map(|i| format!("C{i}")).collect();
    assert_eq!(seen, want, "every row once, in order");
}

#[test]
fn empty_tables_say_so_and_chapters_start_new_pages() {
    let mut r = one_chapter(vec![
        Block::line(Style::bold(16.0), "One"),
        Block::Table(table(0)),
    ]);
    r.chapters.push(Chapter {
        running_title: "Two".into(),
        blocks: vec![Block::Space(5.0), Block::line(Style::bold(16.0), "Two")],
    });
    let l = layout(&r, ReportFonts::builtin());
    assert_eq!(l.pages.len(), 2);
    assert_eq!(texts(&l.pages[0]), ["One", "Code", "Partner", "none"]);
    assert_eq!(texts(&l.pages[1]), ["Two"]);
    // A space at the top of a page is dropped: both titles sit at the same height.
    assert_eq!(l.pages[0][0].baseline_mm, l.pages[1][0].baseline_mm);
}

#[test]
fn a_heading_is_never_left_alone_at_the_bottom_of_a_page() {
    // Fill the page until exactly one 11 pt line is left, then a heading and a table.
    let style = Style::regular(10.0);
    let room = A4_H_MM - 2.0 * MARGIN_MM;
    let n = ((room - Style::bold(11.0).line_mm()) / style.line_mm()).floor() as usize;
    let mut blocks: Vec<Block> = (0..n)
        .map(|i| Block::line(style, &format!("l{i}")))
        .collect();
    blocks.push(Block::heading(Style::bold(11.0), "Commissions"));
    blocks.push(Block::Space(1.0));
    blocks.push(Block::Table(table(3)));
    let l = layout(&one_chapter(blocks), ReportFonts::builtin());
    assert_eq!(l.pages.len(), 2);
    assert_eq!(l.pages[0].len(), n, "the heading moved with its table");
    assert_eq!(
        &texts(&l.pages[1])[..3],
        ["Test (continued)", "Commissions", "Code"]
    );
}

#[test]
fn paragraphs_wrap_inside_the_margins() {
    let text = "Closed 2026-05-01 UTC. Amounts per partner and unit; held = inside the holding period, carried = owed after this payout.";
    let l = layout(
        &one_chapter(vec![Block::paragraph(Style::regular(12.0), text)]),
        ReportFonts::builtin(),
    );
    let lines = &l.pages[0];
    assert!(lines.len() >= 2, "{lines:?}");
    assert!(
        lines
            .iter()
            .all(|p| p.width_mm <= A4_W_MM - 2.0 * MARGIN_MM)
    );
    assert!(lines.iter().all(|p| !p.text.contains('…')));
    assert_eq!(texts(lines).join(" "), text);
    assert!(lines[1].baseline_mm < lines[0].baseline_mm);
}
