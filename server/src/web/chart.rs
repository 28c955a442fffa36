//! Server-side SVG charts: bars per day (stacked by series) and horizontal bars. Every
//! chart is an `img` with a title and a text description, and the numbers are also in
//! a table next to it for screen readers and for copying.

use std::fmt::Write;

use maud::{Markup, PreEscaped, html};

/// Colours of the series (≥ 3:1 against white, told apart without red/green).
pub const COLOURS: [&str; 5] = ["#0a58a8", "#b35900", "#2e7d32", "#6a1b9a", "#5c6670"];

const W: f64 = 720.0;
const H: f64 = 220.0;
const LEFT: f64 = 44.0;
const BOTTOM: f64 = 24.0;
const TOP: f64 = 10.0;

fn nice_max(v: i64) -> i64 {
    let v = v.max(1);
    let mag = 10_i64.pow(v.ilog10());
    for m in [1, 2, 5, 10] {
        if v <= m * mag {
            return m * mag;
        }
    }
    10 * mag
}

#[allow(clippy::cast_precision_loss)]
fn f(v: i64) -> f64 {
    v as f64
}

/// Stacked bars: one bar per label, one segment per series.
pub fn stacked_bars(
    id: &str,
    title: &str,
    labels: &[String],
    series: &[&str],
    values: &[Vec<i64>],
) -> Markup {
    let max = nice_max(
        values
            .iter()
            .map(|v| v.iter().sum::<i64>())
            .max()
            .unwrap_or(0),
    );
    let n = labels.len().max(1);
    let plot_w = W - LEFT - 8.0;
    let plot_h = H - BOTTOM - TOP;
    let slot = plot_w / f(i64::try_from(n).unwrap_or(1));
    let bar = (slot * 0.7).max(1.0);
    let mut svg = String::new();
    let total: i64 = values.iter().flatten().sum();
    let _ = write!(
        svg,
        r##"<svg class="chart" viewBox="0 0 {W} {H}" role="img" aria-labelledby="{id}-t {id}-d" xmlns="http://www.w3.org/2000/svg"><title id="{id}-t">{}</title><desc id="{id}-d">{} from {} to {}: {total} in all. The table below has every value.</desc>"##,
        maud::html! { (title) }.into_string(),
        maud::html! { (title) }.into_string(),
        labels.first().map_or("", String::as_str),
        labels.last().map_or("", String::as_str),
    );
    // Gridlines at whole numbers, evenly spaced.
    let steps = [5, 4, 2, 1].into_iter().find(|k| max % k == 0).unwrap_or(1);
    for i in 0..=steps {
        let v = max * i / steps;
        let y = TOP + plot_h - plot_h * f(v) / f(max);
        let _ = write!(
            svg,
            r##"<line x1="{LEFT}" x2="{}" y1="{y:.1}" y2="{y:.1}" stroke="#d0d7de"/><text x="{}" y="{:.1}" font-size="11" text-anchor="end" fill="#4a5560">{v}</text>"##,
            W - 8.0,
            LEFT - 4.0,
            y + 4.0
        );
    }
    for (i, (label, vs)) in labels.iter().zip(values).enumerate() {
        let x = LEFT + slot * f(i64::try_from(i).unwrap_or(0)) + (slot - bar) / 2.0;
        let mut y = TOP + plot_h;
        for (k, v) in vs.iter().enumerate() {
            if *v <= 0 {
                continue;
            }
            let h = plot_h * f(*v) / f(max);
            y -= h;
            let _ = write!(
                svg,
                r##"<rect x="{x:.1}" y="{y:.1}" width="{bar:.1}" height="{h:.1}" fill="{}"><title>{}: {} {v}</title></rect>"##,
                COLOURS[k % COLOURS.len()],
                maud::html! { (label) }.into_string(),
                maud::html! { (series.get(k).copied().unwrap_or("")) }.into_string(),
            );
        }
        // Label the first, the last and every ~7th bar.
        if i == 0 || i + 1 == labels.len() || (n > 10 && i % 7 == 0 && i + 3 < labels.len()) {
            let short = label.get(5..).unwrap_or(label);
            let _ = write!(
                svg,
                r##"<text x="{:.1}" y="{}" font-size="11" text-anchor="middle" fill="#4a5560">{}</text>"##,
                x + bar / 2.0,
                H - 6.0,
                maud::html! { (short) }.into_string()
            );
        }
    }
    svg.push_str("</svg>");
    html! {
        figure {
            (PreEscaped(svg))
            @if series.len() > 1 {
                ul.legend aria-hidden="true" {
                    @for (k, name) in series.iter().enumerate() {
                        li { i style={"background:" (COLOURS[k % COLOURS.len()])} {} (name) }
                    }
                }
            }
            details {
                summary { "The numbers" }
                div.scroll {
                    table {
                        caption { (title) }
                        thead { tr { th scope="col" { "Date" } @for s in series { th.n scope="col" { (s) } } } }
                        tbody {
                            @for (label, vs) in labels.iter().zip(values) {
                                tr { th scope="row" { (label) } @for v in vs { td.n { (v) } } }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Horizontal bars with their value at the end.
pub fn hbars(id: &str, title: &str, items: &[(String, i64)]) -> Markup {
    let max = items.iter().map(|(_, v)| *v).max().unwrap_or(0).max(1);
    let row = 28.0;
    let label_w = 150.0;
    let h = row * f(i64::try_from(items.len()).unwrap_or(0)).max(1.0) + 8.0;
    let mut svg = String::new();
    let _ = write!(
        svg,
        r##"<svg class="chart" viewBox="0 0 {W} {h}" role="img" aria-labelledby="{id}-t {id}-d" xmlns="http://www.w3.org/2000/svg"><title id="{id}-t">{}</title><desc id="{id}-d">{}</desc>"##,
        maud::html! { (title) }.into_string(),
        maud::html! {
            @for (i, (l, v)) in items.iter().enumerate() { @if i > 0 { ", " } (l) ": " (v) }
        }
        .into_string(),
    );
    for (i, (label, v)) in items.iter().enumerate() {
        let y = 4.0 + row * f(i64::try_from(i).unwrap_or(0));
        let w = (W - label_w - 60.0) * f(*v) / f(max);
        let _ = write!(
            svg,
            r##"<text x="{:.1}" y="{:.1}" font-size="13" text-anchor="end" fill="#1b1f24">{}</text><rect x="{label_w}" y="{:.1}" width="{w:.1}" height="{:.1}" fill="{}"/><text x="{:.1}" y="{:.1}" font-size="13" fill="#1b1f24">{v}</text>"##,
            label_w - 8.0,
            y + 17.0,
            maud::html! { (label) }.into_string(),
            y + 3.0,
            row - 8.0,
            COLOURS[i % COLOURS.len()],
            label_w + w + 6.0,
            y + 17.0,
        );
    }
    svg.push_str("</svg>");
    html! { figure { (PreEscaped(svg)) } }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axis_maxima_are_round() {
        assert_eq!(nice_max(0), 1);
        assert_eq!(nice_max(7), 10);
        assert_eq!(nice_max(11), 20);
        assert_eq!(nice_max(430), 500);
        assert_eq!(nice_max(1000), 1000);
    }

    #[test]
    fn charts_escape_labels_and_stay_well_formed() {
        let m = stacked_bars(
            "c",
            "Clicks <per> day",
            &["2026-11-01".into(), "2026-11-02".into()],
            &["NFC", "QR & co"],
            &[vec![1, 2], vec![0, 5]],
        )
        .into_string();
        assert!(m.contains("Clicks &lt;per&gt; day"));
        assert!(!m.contains("<per>"));
        assert!(m.contains("QR &amp; co"));
        let h = hbars("h", "By channel", &[("<b>".into(), 3)]).into_string();
        assert!(h.contains("&lt;b&gt;"));
        let empty = stacked_bars("e", "Nothing", &[], &["x"], &[]).into_string();
        assert!(empty.contains("</svg>"));
    }
}
