//! The batch with a fake server: registrations that fail offline are retried by the
//! next run, and a card the server refuses is not counted done.

use super::*;
use crate::server_api::ServerError;
use tapkit_core::code::ReferralCode;

/// A server that is down for the first `down_for` calls, refuses the UIDs in
/// `refuse`, and records what it registered.
struct FakeServer {
    down_for: usize,
    calls: usize,
    refuse: Vec<String>,
    registered: Vec<(i64, String)>,
}

impl Registrar for FakeServer {
    fn register(
        &mut self,
        p: &Partner,
        uid: &str,
        _key_version: Option<u8>,
    ) -> Result<(), ServerError> {
        self.calls += 1;
        if self.calls <= self.down_for {
            return Err(ServerError::Unreachable {
                url: "http://fake".into(),
                reason: "connection refused".into(),
            });
        }
        if self.refuse.iter().any(|u| u == uid) {
            return Err(ServerError::Refused {
                what: format!("card {uid}"),
                status: 409,
                message: "bound to affiliate 9".into(),
            });
        }
        self.registered
            .push((p.affiliate_id.unwrap_or(-1), uid.to_owned()));
        Ok(())
    }
}

fn partners(n: usize) -> Vec<Partner> {
    (0..n)
        .map(|i| Partner {
            name: format!("Partner {i}"),
            code: ReferralCode::generate("Partner", 40 + i as u32).into(),
            kind: "business".into(),
            affiliate_id: Some(100 + i as i64),
            member_id: None,
        })
        .collect()
}

fn opts() -> BatchOptions {
    BatchOptions {
        domain: "book.example.com".into(),
        mirror: true,
        lock: false,
        password: None,
        pack: [0, 0],
        max_attempts: 2,
        sun: None,
    }
}

fn run(
    path: &std::path::Path,
    partners: &[Partner],
    server: &mut FakeServer,
    script: &str,
    seed: u64,
) -> (Summary, Vec<Entry>) {
    let (mut j, prior) = Journal::open(path).unwrap();
    let mut feed = SimFeed::new(parse_script(script).unwrap(), seed);
    let mut rep = Reporter::new(false, false);
    let stop = AtomicBool::new(false);
    let s = run_batch_with(
        &mut feed,
        partners,
        &mut j,
        &prior,
        &opts(),
        &mut rep,
        &stop,
        Some(server),
    )
    .unwrap();
    drop(j);
    (s, Journal::open(path).unwrap().1)
}

fn tmp(name: &str) -> std::path::PathBuf {
    let p = std::env::temp_dir().join(format!("tapkit-reg-{}-{name}", std::process::id()));
    let _ = std::fs::remove_file(&p);
    p
}

#[test]
fn registrations_that_fail_offline_are_retried_by_the_next_run() {
    let path = tmp("offline.jsonl");
    let ps = partners(3);
    // The server goes away after the first card.
    let mut server = FakeServer {
        down_for: 0,
        calls: 0,
        refuse: vec![],
        registered: vec![],
    };
    let (j0, _) = Journal::open(&path).unwrap();
    drop(j0);
    let (s1, lines) = run(&path, &ps[..1], &mut server, "", 1);
    assert_eq!((s1.done, s1.registration_pending), (1, 0));
    assert_eq!(lines[0].server_registered, Some(true));
    server.down_for = usize::MAX;
    server.calls = 0;
    let (s2, lines) = run(&path, &ps, &mut server, "", 2);
    assert_eq!((s2.done, s2.skipped, s2.registration_pending), (2, 1, 2));
    // One attempt only: later cards do not wait on a server that just failed.
    assert_eq!(server.calls, 1);
    assert_eq!(
        lines
            .iter()
            .filter(|e| e.server_registered == Some(false))
            .count(),
        2
    );
    assert_eq!(pending_registrations(&lines).len(), 2);
    // Back online: the re-run registers both and touches no card.
    server.down_for = 0;
    let (s3, lines) = run(&path, &ps, &mut server, "", 3);
    assert_eq!(
        (
            s3.done,
            s3.skipped,
            s3.registered_late,
            s3.registration_pending
        ),
        (0, 3, 2, 0)
    );
    let late: Vec<&Entry> = lines
        .iter()
        .filter(|e| e.outcome == Outcome::Registered)
        .collect();
    assert_eq!(late.len(), 2);
    assert!(pending_registrations(&lines).is_empty());
    let ids: Vec<i64> = server.registered.iter().map(|r| r.0).collect();
    assert_eq!(ids, vec![100, 101, 102]);
    // Each registered UID is the one written for that partner.
    for (id, uid) in &server.registered {
        let written = lines
            .iter()
            .find(|e| e.affiliate_id == Some(*id) && e.outcome == Outcome::Written)
            .unwrap();
        assert_eq!(written.uid.as_deref(), Some(uid.as_str()));
    }
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn a_card_the_server_refuses_is_not_counted_done() {
    let path = tmp("refused.jsonl");
    let ps = partners(1);
    // First run offline, so the UID is known; then the server refuses that UID.
    let mut server = FakeServer {
        down_for: usize::MAX,
        calls: 0,
        refuse: vec![],
        registered: vec![],
    };
    let (_, lines) = run(&path, &ps, &mut server, "", 5);
    let uid = lines[0].uid.clone().unwrap();
    server.down_for = 0;
    server.refuse = vec![uid];
    // The retry is refused; the partner is then given a fresh card in the same run.
    let (s, lines) = run(&path, &ps, &mut server, "", 6);
    assert_eq!((s.done, s.registered_late), (1, 0), "{lines:#?}");
    let refused = lines.iter().find(|e| e.outcome == Outcome::Failed).unwrap();
    assert!(
        refused
            .detail
            .as_deref()
            .unwrap()
            .contains("bound to affiliate 9"),
        "{refused:?}"
    );
    assert_eq!(lines.last().unwrap().server_registered, Some(true));
    assert_eq!(server.registered.len(), 1);
    std::fs::remove_file(&path).unwrap();
}
