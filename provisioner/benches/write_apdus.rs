//! APDUs and wall time per card for writing a typical 45-character URL onto a blank
//! NTAG215, against the protocol minimum, and for rewriting a card that already holds
//! it. In-process always; through real pcscd + vpcd when run under
//! `scripts/with-pcscd.sh` (see `scripts/bench.sh`). Results go in BENCHMARKS.md.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tapkit_core::ndef;
use tapkit_provisioner::driver::{TagDriver, WriteOptions};
use tapkit_provisioner::reader::pcsc::PcscTransport;
use tapkit_provisioner::reader::sim::{SimReader, SimTag, SimTagKind, SimTransport, vpcd};

const URL: &str = "https://bookings.example.com/r/IRONGYM-7K2M9Q";

fn minimum(url: &str) -> (usize, usize) {
    let pages = (2 + ndef::uri_message(url).len() + 1).div_ceil(4);
    // identify: GET_VERSION + one read that returns UID, lock bytes, CC and the data
    // pages; then one WRITE per page; then one read to verify them.
    (pages, 2 + pages + 1)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn row(what: &str, apdus: u32, writes: u32, per_card: Duration) {
    println!(
        "| {what} | {apdus} | {writes} | {:.1} µs |",
        per_card.as_secs_f64() * 1e6
    );
}

fn main() {
    assert_eq!(URL.len(), 45);
    let opts = WriteOptions::default();
    let (pages, min_apdus) = minimum(URL);
    println!(
        "URL {URL} ({} chars): {pages} pages; protocol minimum {min_apdus} APDUs",
        URL.len()
    );
    println!();
    println!("| case | APDUs | page writes | median wall time per card |");
    println!("|---|---:|---:|---:|");

    let n = 2000;
    let mut fresh = Vec::with_capacity(n);
    let mut again = Vec::with_capacity(n);
    let (mut a1, mut w1, mut a2, mut w2) = (0, 0, 0, 0);
    for i in 0..n {
        let mut d = TagDriver::new(SimTransport::new(
            SimTag::with_seed(SimTagKind::Ntag215, i as u64),
            Vec::new(),
        ));
        let t = Instant::now();
        d.write_url(URL, &opts).expect("write");
        fresh.push(t.elapsed());
        (a1, w1) = (d.traffic().apdus, d.traffic().writes);
        let t = Instant::now();
        let r = d.write_url(URL, &opts).expect("rewrite");
        again.push(t.elapsed());
        assert!(r.already_written);
        (a2, w2) = (d.traffic().apdus - a1, d.traffic().writes - w1);
    }
    row("blank NTAG215, in-process simulator", a1, w1, median(fresh));
    row(
        "same URL again, in-process simulator",
        a2,
        w2,
        median(again),
    );

    let (Ok(reader), Ok(port)) = (std::env::var("PCSC_READER0"), std::env::var("VPCD_PORT0"))
    else {
        println!("\n(no pcscd: run scripts/bench.sh for the numbers through real pcscd + vpcd)");
        return;
    };
    let addr = format!("127.0.0.1:{port}").parse().expect("port");
    let stop = Arc::new(AtomicBool::new(false));
    let mut fresh = Vec::new();
    let mut again = Vec::new();
    for i in 0..50u64 {
        // A new card on the virtual reader for every round.
        let tag = SimTag::with_seed(SimTagKind::Ntag215, 1000 + i);
        let s = stop.clone();
        let server = std::thread::spawn(move || {
            let o = vpcd::VpcdOptions {
                addr,
                image: None,
                reinsert_after: Duration::from_secs(1),
                connect_timeout: Duration::from_secs(5),
            };
            vpcd::serve(SimReader::new(tag, Vec::new()), &o, &s)
        });
        let t = PcscTransport::open(&reader, Duration::from_secs(5), Box::new(|_| {}))
            .expect("card on the virtual reader");
        let mut d = TagDriver::new(t);
        let start = Instant::now();
        d.write_url(URL, &opts).expect("write through pcscd");
        fresh.push(start.elapsed());
        (a1, w1) = (d.traffic().apdus, d.traffic().writes);
        let start = Instant::now();
        d.write_url(URL, &opts).expect("rewrite through pcscd");
        again.push(start.elapsed());
        (a2, w2) = (d.traffic().apdus - a1, d.traffic().writes - w1);
        d.into_transport().close();
        stop.store(true, Ordering::Relaxed);
        let _ = server.join();
        stop.store(false, Ordering::Relaxed);
        // Let pcscd see the card leave before the next one arrives.
        std::thread::sleep(Duration::from_millis(500));
    }
    row("blank NTAG215, real pcscd + vpcd", a1, w1, median(fresh));
    row("same URL again, real pcscd + vpcd", a2, w2, median(again));
}
