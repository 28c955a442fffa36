//! [`layout`]: where everything goes on a screen of a given size. Landscape: the QR
//! (whole pixels per module) on the side away from the pad, brand, tagline and pointer
//! on the pad's side; portrait: brand and tagline on top, the QR in the middle, the
//! pointer below. Text shrinks, then wraps, to fit its column.

use std::sync::Arc;

use tapkit_core::qr::{QUIET, QrMatrix};

use super::{Content, Frame, Item, Pad, Text, text_width};

/// Splits `text` into at most `max_lines` lines no wider than `width` at the largest
/// size from `desired` down to `min` that allows it (the last resort is `min`).
fn fit(
    text: &str,
    width: f32,
    desired: f32,
    min: f32,
    max_lines: usize,
    bold: bool,
) -> (f32, Vec<String>) {
    let mut size = desired;
    loop {
        let lines = wrap(text, width, size, bold);
        let fits =
            lines.len() <= max_lines && lines.iter().all(|l| text_width(l, size, bold) <= width);
        if fits || size <= min {
            let mut lines = lines;
            lines.truncate(max_lines.max(1));
            return (size, lines);
        }
        size = (size * 0.92).max(min);
    }
}

fn wrap(text: &str, width: f32, size: f32, bold: bool) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    let mut cur = String::new();
    for word in text.split_whitespace() {
        let candidate = if cur.is_empty() {
            word.to_owned()
        } else {
            format!("{cur} {word}")
        };
        if cur.is_empty() || text_width(&candidate, size, bold) <= width {
            cur = candidate;
        } else {
            lines.push(std::mem::take(&mut cur));
            cur = word.to_owned();
        }
    }
    if !cur.is_empty() {
        lines.push(cur);
    }
    lines
}

/// An arrow of `size` px with its tip at (`tx`, `ty`), pointing toward `pad`.
fn arrow(tx: f32, ty: f32, size: f32, pad: Pad) -> Vec<(f32, f32)> {
    // Pointing down, tip at the origin: a chevron head on a shaft.
    let s = size;
    let down = [
        (0.0, 0.0),
        (-0.5 * s, -0.5 * s),
        (-0.18 * s, -0.5 * s),
        (-0.18 * s, -s),
        (0.18 * s, -s),
        (0.18 * s, -0.5 * s),
        (0.5 * s, -0.5 * s),
    ];
    down.iter()
        .map(|&(x, y)| match pad {
            Pad::Below => (tx + x, ty + y),
            Pad::Left => (tx - y, ty + x),
            Pad::Right => (tx + y, ty - x),
        })
        .collect()
}

/// Lays out `c` on a `width`×`height` screen.
pub fn layout(c: &Content, width: u32, height: u32) -> Frame {
    let (w, h) = (width as f32, height as f32);
    let short = w.min(h);
    let m = (0.05 * short).round();
    let mut items = Vec::new();
    let url_size = (0.05 * short).clamp(14.0, 56.0);
    let matrix = c
        .qr_url
        .as_deref()
        .and_then(|u| QrMatrix::encode(u, 'M').ok())
        .map(Arc::new);
    let landscape = w >= h * 1.15;
    let pointer = (0.2 * short).round();

    // The QR block: the code (whole pixels per module) and the short URL under it.
    let place_qr = |items: &mut Vec<Item>, max_side: f32, cx: f32, top: f32| -> f32 {
        let Some(matrix) = &matrix else { return 0.0 };
        let modules = (matrix.size + 2 * QUIET) as f32;
        let module = (max_side / modules).floor().max(1.0);
        let side = module * modules;
        let x = (cx - side / 2.0).round().max(0.0);
        items.push(Item::Qr {
            x: x as u32,
            y: top.round() as u32,
            module: module as u32,
            matrix: matrix.clone(),
        });
        side
    };

    if matrix.is_none() {
        // No QR (a check-in's answer, or waiting for the settings): the words fill the
        // screen, to be read from across the room.
        text_column(&mut items, c, m, w - m, m, h - m, short);
    } else if landscape {
        // Text and pointer on the pad's side, the QR on the other.
        let qr_max = (h - 2.0 * m - 1.6 * url_size).min(0.46 * w);
        let (qr_cx, col_x0, col_x1) = if c.pad == Pad::Right {
            (m + qr_max / 2.0, 2.0 * m + qr_max, w - m)
        } else {
            (w - m - qr_max / 2.0, m, w - 2.0 * m - qr_max)
        };
        let qr_top = ((h - qr_max - 1.6 * url_size) / 2.0).max(m);
        let side = place_qr(&mut items, qr_max, qr_cx, qr_top);
        url_line(
            &mut items,
            c,
            qr_cx,
            qr_top + side,
            qr_max.max(side) + m,
            url_size,
            short,
        );
        // The text column, with the pointer at the pad's edge.
        let (mut x0, mut x1, mut bottom) = (col_x0, col_x1, h - m);
        match c.pad {
            Pad::Below => {
                bottom = h - m - pointer - 0.5 * m;
                let cx = (x0 + x1) / 2.0;
                items.push(Item::Pointer {
                    points: arrow(cx, h - m, pointer, Pad::Below),
                    color: c.accent,
                });
            }
            Pad::Left => {
                items.push(Item::Pointer {
                    points: arrow(m, h / 2.0, pointer, Pad::Left),
                    color: c.accent,
                });
                x0 += pointer + 0.5 * m;
            }
            Pad::Right => {
                items.push(Item::Pointer {
                    points: arrow(w - m, h / 2.0, pointer, Pad::Right),
                    color: c.accent,
                });
                x1 -= pointer + 0.5 * m;
            }
        }
        text_column(&mut items, c, x0, x1, m, bottom, short);
    } else {
        // Portrait: brand and tagline on top, the QR in the middle, the pointer below.
        let cx = w / 2.0;
        let top_block = 0.42 * h;
        let bottom_block = pointer + 1.5 * m;
        let qr_max = (h - top_block - bottom_block - 1.6 * url_size).min(w - 2.0 * m);
        text_column(&mut items, c, m, w - m, m, top_block - 0.5 * m, short);
        let side = place_qr(&mut items, qr_max, cx, top_block);
        url_line(
            &mut items,
            c,
            cx,
            top_block + side,
            w - 2.0 * m,
            url_size,
            short,
        );
        let (tx, ty) = match c.pad {
            Pad::Below => (cx, h - m),
            Pad::Left => (m, h - m - pointer / 2.0),
            Pad::Right => (w - m, h - m - pointer / 2.0),
        };
        items.push(Item::Pointer {
            points: arrow(tx, ty, pointer, c.pad),
            color: c.accent,
        });
    }
    let label = match &c.qr_url {
        Some(_) => format!(
            "{}. {}. Or scan the QR code, or visit {}.",
            c.brand, c.tagline, c.short_url
        ),
        None => format!("{}. {}.", c.brand, c.tagline),
    };
    Frame {
        width,
        height,
        background: c.background,
        items,
        label,
        qr_url: c.qr_url.clone(),
        checkin: None,
    }
}

/// The short URL, centred on `cx` just under the QR whose bottom edge is at `top`.
fn url_line(
    items: &mut Vec<Item>,
    c: &Content,
    cx: f32,
    top: f32,
    width: f32,
    size: f32,
    short: f32,
) {
    let (us, lines) = fit(
        &c.short_url,
        width,
        size,
        (0.035 * short).max(12.0),
        1,
        false,
    );
    if let Some(line) = lines.into_iter().next() {
        items.push(Item::Text(Text {
            x: cx,
            y: top + 1.2 * us,
            size: us,
            bold: false,
            color: c.foreground,
            centred: true,
            text: line,
        }));
    }
}

/// Logo, brand and tagline stacked and centred vertically between `top` and `bottom`.
fn text_column(
    items: &mut Vec<Item>,
    c: &Content,
    x0: f32,
    x1: f32,
    top: f32,
    bottom: f32,
    short: f32,
) {
    let width = (x1 - x0).max(10.0);
    let (bs, brand) = fit(&c.brand, width, 0.16 * short, 0.06 * short, 2, true);
    let (ts, tag) = fit(&c.tagline, width, 0.085 * short, 0.05 * short, 3, false);
    let logo_h = if c.logo.is_some() { 0.2 * short } else { 0.0 };
    let gap = 0.25 * bs;
    let total = logo_h
        + if logo_h > 0.0 { gap } else { 0.0 }
        + brand.len() as f32 * bs * 1.15
        + gap
        + tag.len() as f32 * ts * 1.25;
    let mut y = top + ((bottom - top - total) / 2.0).max(0.0);
    let cx = (x0 + x1) / 2.0;
    if let Some(logo) = &c.logo {
        let (lw, lh) = (logo.pixels.width() as f32, logo.pixels.height() as f32);
        let scale = (logo_h / lh).min(width / lw);
        items.push(Item::Logo {
            x: cx - lw * scale / 2.0,
            y,
            w: lw * scale,
            h: lh * scale,
            logo: logo.clone(),
        });
        y += logo_h + gap;
    }
    for line in brand {
        y += bs * 1.15;
        items.push(Item::Text(Text {
            x: cx,
            y: y - 0.2 * bs,
            size: bs,
            bold: true,
            color: c.foreground,
            centred: true,
            text: line,
        }));
    }
    y += gap;
    for line in tag {
        y += ts * 1.25;
        items.push(Item::Text(Text {
            x: cx,
            y: y - 0.25 * ts,
            size: ts,
            bold: false,
            color: c.foreground,
            centred: true,
            text: line,
        }));
    }
}
