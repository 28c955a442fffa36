//! Times the parts of preparing a card's QR (encode, rasterise + decode read-back), to
//! see where `provisioner print` spends its time. `cargo run --release --example qr_timing`
use std::time::Instant;
use tapkit_provisioner::print::qr::{QrExport, QrMatrix};

fn main() {
    let n = 1000;
    let urls: Vec<String> = (0..n)
        .map(|i| format!("https://book.example.com/r/PARTNERB-{i:05}X?s=qr"))
        .collect();
    let t = Instant::now();
    let codes: Vec<QrMatrix> = urls
        .iter()
        .map(|u| QrMatrix::encode(u, 'M').expect("encodes"))
        .collect();
    let enc = t.elapsed();
    let t = Instant::now();
    let ok = codes
        .iter()
        .zip(&urls)
        .filter(|(q, u)| q.read_back(0).as_deref() == Some(u.as_str()))
        .count();
    let dec = t.elapsed();
    println!(
        "{n} QR codes: encode {:.2} ms each, read-back {:.2} ms each ({ok} of {n} read back)",
        enc.as_secs_f64() * 1e3 / n as f64,
        dec.as_secs_f64() * 1e3 / n as f64
    );
}
