//! The store suite, run against both databases: a fresh SQLite file, and a fresh
//! PostgreSQL database on 127.0.0.1:5432 (created and dropped by the test).
//! PostgreSQL missing is a skip with a note, or a failure under `TAPKIT_REQUIRE_PG=1`
//! (set by scripts/test.sh, which starts or installs PostgreSQL first).
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use tapkit_server::store::{Backend, NewClick, Program, Store, StoreError};

async fn sqlite() -> (Store, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(format!(
        "tapkit-store-{}-{}",
        std::process::id(),
        rand_suffix()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("sqlite://{}", dir.join("tapkit.db").display());
    (Store::connect(&url).await.unwrap(), dir)
}

fn rand_suffix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        % 1_000_000_007
}

/// A fresh PostgreSQL database, or None (skip) when the server is not there.
async fn postgres() -> Option<(Store, String)> {
    let admin = std::env::var("TAPKIT_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    sqlx::any::install_default_drivers();
    let conn = sqlx::AnyPool::connect(&admin).await;
    let pool = match conn {
        Ok(p) => p,
        Err(e) if std::env::var("TAPKIT_REQUIRE_PG").as_deref() == Ok("1") => {
            panic!("TAPKIT_REQUIRE_PG=1 but PostgreSQL at {admin} is not reachable: {e}")
        }
        Err(e) => {
            eprintln!("skipped: no PostgreSQL at {admin} ({e}); scripts/test.sh starts one");
            return None;
        }
    };
    let name = format!("tapkit_test_{}_{}", std::process::id(), rand_suffix());
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&pool)
        .await
        .unwrap();
    let base = admin.rsplit_once('/').unwrap().0;
    Some((
        Store::connect(&format!("{base}/{name}")).await.unwrap(),
        name,
    ))
}

/// A second store on the PostgreSQL database `name`: another replica.
async fn replica(name: &str) -> Store {
    let admin = std::env::var("TAPKIT_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let base = admin.rsplit_once('/').unwrap().0;
    Store::connect(&format!("{base}/{name}")).await.unwrap()
}

async fn drop_pg(name: &str) {
    let admin = std::env::var("TAPKIT_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let pool = sqlx::AnyPool::connect(&admin).await.unwrap();
    let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .execute(&pool)
        .await;
}

fn program() -> Program {
    Program {
        id: 1,
        name: "Demo Detailing".into(),
        domain: "book.example.com".into(),
        booking_url: "https://book.example.com/booking".into(),
        cookie_days: 30,
        last_touch: false,
    }
}

fn click(code: &str, affiliate: i64, ip: &str, at: i64) -> NewClick {
    NewClick {
        at,
        code: code.into(),
        affiliate_id: Some(affiliate),
        channel: "link",
        card_id: None,
        counter: None,
        user_agent: Some("Mozilla/5.0".into()),
        referer: None,
        ip_hash: ip.into(),
        outcome: "attributed",
        reason: None,
        rate_limit: true,
        check_counter: false,
        utm: None,
    }
}

/// The suite every backend must pass.
async fn suite(s: &Store) {
    s.ping().await.unwrap();
    s.ensure_program(&program()).await.unwrap();
    s.ensure_program(&Program {
        cookie_days: 2,
        ..program()
    })
    .await
    .unwrap();

    // Affiliates with unique, valid codes.
    let a = s
        .create_affiliate(1, "Iron Gym", "business", Some("gym@example.com"))
        .await
        .unwrap();
    let b = s
        .create_affiliate(1, "Café Zürich & Co.", "influencer", None)
        .await
        .unwrap();
    assert!(
        a.code.starts_with("IRONGYM-") && tapkit_core::code::ReferralCode::parse(&a.code).is_ok()
    );
    assert!(b.code.starts_with("CAFEZURI-"));
    assert_eq!(s.affiliate_by_code(&a.code).await.unwrap().unwrap(), a);
    assert_eq!(s.affiliate_by_code("NOPE-00000").await.unwrap(), None);
    assert!(matches!(
        s.affiliate(999).await,
        Err(StoreError::NotFound("affiliate"))
    ));
    // The database refuses what the API must never write.
    let bad = s.create_affiliate(1, "Robot", "robot", None).await;
    assert!(
        matches!(bad, Err(StoreError::Db(_))),
        "kind is checked by the database"
    );

    // Who needs a card: active business partners without an active card.
    let needs: Vec<i64> = s
        .affiliates(true)
        .await
        .unwrap()
        .iter()
        .map(|x| x.id)
        .collect();
    assert_eq!(needs, vec![a.id]);

    // Cards: one affiliate per UID at a time; re-registering is idempotent.
    let (c, new) = s.register_card(a.id, "04A1B2C3D4E5F6").await.unwrap();
    assert!(new);
    let (again, new) = s.register_card(a.id, "04A1B2C3D4E5F6").await.unwrap();
    assert_eq!((again.id, new), (c.id, false));
    let stolen = s.register_card(b.id, "04A1B2C3D4E5F6").await;
    assert!(
        matches!(stolen, Err(StoreError::CardBound { affiliate_id, .. }) if affiliate_id == a.id)
    );
    assert!(s.affiliates(true).await.unwrap().is_empty());

    // Tap counters only move forward.
    assert!(s.advance_counter(c.id, 3).await.unwrap());
    assert!(
        !s.advance_counter(c.id, 3).await.unwrap(),
        "same counter again is a replay"
    );
    assert!(!s.advance_counter(c.id, 2).await.unwrap());
    assert!(s.advance_counter(c.id, 4).await.unwrap());

    // Retire, then the UID can be bound anew; history keeps both bindings.
    let retired = s.end_card(c.id, "retired").await.unwrap();
    assert_eq!(retired.status, "retired");
    assert!(retired.ended_at.is_some());
    assert!(matches!(
        s.end_card(c.id, "lost").await,
        Err(StoreError::NotFound(_))
    ));
    let (c2, _) = s.register_card(b.id, "04A1B2C3D4E5F6").await.unwrap();
    assert_ne!(c2.id, c.id);
    assert_eq!(s.cards(None).await.unwrap().len(), 2);
    assert_eq!(s.cards(Some(a.id)).await.unwrap().len(), 1);

    // Suspension.
    assert_eq!(
        s.set_affiliate_status(a.id, "suspended")
            .await
            .unwrap()
            .status,
        "suspended"
    );
    assert!(s.set_affiliate_status(a.id, "frozen").await.is_err());

    // Kill-switches: per affiliate and program-wide.
    assert!(!s.channel_killed(1, b.id, "qr").await.unwrap());
    s.kill_channel(1, Some(b.id), "qr").await.unwrap();
    assert!(s.channel_killed(1, b.id, "qr").await.unwrap());
    assert!(!s.channel_killed(1, a.id, "qr").await.unwrap());
    s.kill_channel(1, None, "kiosk").await.unwrap();
    assert!(s.channel_killed(1, a.id, "kiosk").await.unwrap());
    assert!(s.kill_channel(1, None, "carrier-pigeon").await.is_err());

    // Clicks.
    let id = s
        .insert_click(&NewClick {
            at: 1_700_000_000_000,
            code: b.code.clone(),
            affiliate_id: Some(b.id),
            channel: "nfc",
            card_id: Some(c2.id),
            counter: Some(7),
            user_agent: Some("Mozilla/5.0".into()),
            referer: None,
            ip_hash: "ab12".into(),
            outcome: "attributed",
            reason: None,
            rate_limit: false,
            check_counter: false,
            utm: None,
        })
        .await
        .unwrap();
    assert_eq!(
        s.click(id).await.unwrap(),
        Some((Some(b.id), 1_700_000_000_000, "attributed".into()))
    );
    assert_eq!(s.click(id + 1000).await.unwrap(), None);
    assert_eq!(s.click_count().await.unwrap(), 1);

    // Batches: multi-row inserts with reserved ids; the per-IP limit inside the batch.
    let ids = s.allocate_click_ids(100).await.unwrap();
    let next = s.allocate_click_ids(1).await.unwrap();
    assert_eq!(
        (ids.end - ids.start, next.start),
        (100, ids.end),
        "blocks do not overlap"
    );
    assert!(ids.start > id, "ids never reuse an inserted one");
    let mut batch: Vec<NewClick> = (0..130)
        .map(|i| {
            click(
                &b.code,
                b.id,
                if i % 2 == 0 { "ip-a" } else { "ip-b" },
                1_700_000_100_000 + i,
            )
        })
        .collect();
    let batch_ids: Vec<i64> = (ids.start..ids.end)
        .chain(next.start..next.end)
        .chain(s.allocate_click_ids(29).await.unwrap())
        .collect();
    s.insert_clicks(&mut batch, &batch_ids, 10).await.unwrap();
    assert_eq!(s.click_count().await.unwrap(), 131);
    let limited = batch
        .iter()
        .filter(|c| c.reason == Some("rate_limited"))
        .count();
    assert_eq!(
        limited,
        130 - 2 * 10,
        "10 per IP pass, the rest are flagged"
    );
    assert!(batch[..20].iter().all(|c| c.outcome == "attributed"));
    assert_eq!(
        s.click(batch_ids[129]).await.unwrap().unwrap().2,
        "flagged",
        "the flag is what was stored"
    );
    // A later batch sees the committed clicks of the last hour.
    let mut later = vec![
        click(&b.code, b.id, "ip-c", 1_700_000_200_000),
        click(&b.code, b.id, "ip-a", 1_700_000_200_000),
    ];
    let later_ids: Vec<i64> = s.allocate_click_ids(2).await.unwrap().collect();
    s.insert_clicks(&mut later, &later_ids, 10).await.unwrap();
    assert_eq!(
        (later[0].outcome, later[1].outcome),
        ("attributed", "flagged")
    );

    // Analytics over those clicks (types must decode on both databases).
    let (days, cards) = s.analytics(0, 40_000, Some(b.id)).await.unwrap();
    assert_eq!(days.len(), 1, "one UTC day of clicks: {days:?}");
    assert_eq!(days[0].clicks + days[0].flagged, 133);
    assert_eq!(days[0].visitors, 4, "four hashed IPs, one user agent");
    assert_eq!(days[0].by_channel, [1, 0, 0, 21]);
    assert_eq!(cards.len(), 1);

    // What the /r/ hop caches, and the epoch that tells replicas to reload it.
    let e0 = s.change_epoch().await.unwrap();
    let rows = s.directory_rows(1).await.unwrap();
    assert_eq!(rows.epoch, e0);
    assert!(
        rows.affiliates
            .iter()
            .any(|a| a.id == b.id && a.code == b.code)
    );
    assert!(rows.kills.contains(&(None, "kiosk".into())));
    s.set_affiliate_status(b.id, "suspended").await.unwrap();
    assert!(s.change_epoch().await.unwrap() > e0);
    let rows = s.directory_rows(1).await.unwrap();
    assert!(
        rows.affiliates
            .iter()
            .any(|a| a.id == b.id && a.code == b.code && !a.active)
    );
    s.set_affiliate_status(b.id, "active").await.unwrap();

    // The IP-hash key rotates daily: the first candidate of a day wins on every replica;
    // keys older than yesterday are deleted.
    let k = |c: char| c.to_string().repeat(64);
    assert_eq!(s.ip_key(20_000, &k('a')).await.unwrap(), k('a'));
    assert_eq!(
        s.ip_key(20_000, &k('b')).await.unwrap(),
        k('a'),
        "same day, same key"
    );
    assert_eq!(s.ip_key(20_001, &k('c')).await.unwrap(), k('c'));
    assert_eq!(s.ip_key(20_003, &k('d')).await.unwrap(), k('d'));
    assert_eq!(
        s.ip_key(20_000, &k('e')).await.unwrap(),
        k('e'),
        "day 20000 was deleted when day 20003 came: its hashes cannot be recomputed"
    );

    // API tokens by hash.
    s.add_token("provisioner", "deadbeef").await.unwrap();
    assert!(s.token_known("deadbeef").await.unwrap());
    assert!(!s.token_known("beefdead").await.unwrap());
}

#[tokio::test]
async fn the_store_suite_passes_on_sqlite() {
    let (s, dir) = sqlite().await;
    assert_eq!(s.backend(), Backend::Sqlite);
    suite(&s).await;
    // Reopening the file keeps everything (migrations are not re-applied).
    drop(s);
    let s = Store::connect(&format!("sqlite://{}", dir.join("tapkit.db").display()))
        .await
        .unwrap();
    assert_eq!(s.click_count().await.unwrap(), 133);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn the_store_suite_passes_on_postgres() {
    let Some((s, name)) = postgres().await else {
        return;
    };
    assert_eq!(s.backend(), Backend::Postgres);
    suite(&s).await;
    drop(s);
    drop_pg(&name).await;
}

#[tokio::test]
async fn bad_database_urls_are_refused_clearly() {
    let e = Store::connect("mysql://x").await.unwrap_err().to_string();
    assert!(
        e.contains("must start with sqlite:// or postgres://"),
        "{e}"
    );
    for url in ["sqlite::memory:", "sqlite://x.db?mode=memory"] {
        let e = Store::connect(url).await.unwrap_err().to_string();
        assert!(e.contains("use sqlite://PATH to a file"), "{url}: {e}");
    }
}

/// Two replicas (two stores on one PostgreSQL database) writing concurrent batches from
/// the same hashed IP: the limit holds exactly across them.
#[tokio::test]
async fn the_rate_limit_holds_across_replicas_on_postgres() {
    let Some((s1, name)) = postgres().await else {
        return;
    };
    s1.ensure_program(&program()).await.unwrap();
    let a = s1
        .create_affiliate(1, "Iron Gym", "business", None)
        .await
        .unwrap();
    let s2 = replica(&name).await;
    let now = tapkit_server::store::now_ms();
    let mut tasks = Vec::new();
    for (r, store) in [s1.clone(), s2.clone()].into_iter().enumerate() {
        for t in 0..8 {
            let store = store.clone();
            let code = a.code.clone();
            tasks.push(tokio::spawn(async move {
                let mut batch: Vec<NewClick> = (0..5)
                    .map(|i| click(&code, a.id, "same-ip", now + i))
                    .collect();
                let ids: Vec<i64> = store.allocate_click_ids(5).await.unwrap().collect();
                store.insert_clicks(&mut batch, &ids, 7).await.unwrap();
                let _ = (r, t);
                batch.iter().filter(|c| c.outcome == "attributed").count()
            }));
        }
    }
    let mut attributed = 0;
    for t in tasks {
        attributed += t.await.unwrap();
    }
    assert_eq!(
        attributed, 7,
        "exactly the limit, over 80 clicks from two replicas"
    );
    assert_eq!(s2.click_count().await.unwrap(), 80);
    drop((s1, s2));
    drop_pg(&name).await;
}

/// An NFC tap of `card` with `counter`, as the tap handler queues it.
fn tap(card: i64, affiliate: i64, counter: i64, ip: &str) -> NewClick {
    NewClick {
        channel: "nfc",
        card_id: Some(card),
        counter: Some(counter),
        check_counter: true,
        utm: None,
        ..click(
            "IRONGYM-7K2M9Q",
            affiliate,
            ip,
            tapkit_server::store::now_ms(),
        )
    }
}

async fn write(s: &Store, mut batch: Vec<NewClick>) -> Vec<(&'static str, Option<&'static str>)> {
    let ids: Vec<i64> = s
        .allocate_click_ids(batch.len() as i64)
        .await
        .unwrap()
        .collect();
    s.insert_clicks(&mut batch, &ids, 0).await.unwrap();
    // What was returned is what was stored.
    for (c, id) in batch.iter().zip(&ids) {
        assert_eq!(s.click(*id).await.unwrap().unwrap().2, c.outcome);
    }
    batch.iter().map(|c| (c.outcome, c.reason)).collect()
}

/// The counter of a card is checked and advanced in the transaction that stores the
/// tap: within one batch, across batches, and against a card ended since the tap's
/// lookup.
async fn counter_suite(s: &Store) {
    s.ensure_program(&program()).await.unwrap();
    let a = s
        .create_affiliate(1, "Iron Gym", "business", None)
        .await
        .unwrap();
    let (c, _) = s.register_card(a.id, "04A1B2C3D4E5F6").await.unwrap();
    const OK: (&str, Option<&str>) = ("attributed", None);
    const REPLAY: (&str, Option<&str>) = ("flagged", Some("replayed_counter"));
    // One batch: the same counter twice, then a higher one with a gap.
    assert_eq!(
        write(
            s,
            vec![
                tap(c.id, a.id, 5, "p1"),
                tap(c.id, a.id, 5, "p2"),
                tap(c.id, a.id, 9, "p3")
            ]
        )
        .await,
        [OK, REPLAY, OK]
    );
    // Across batches: the same, and a lower one, are replays.
    assert_eq!(write(s, vec![tap(c.id, a.id, 9, "p4")]).await, [REPLAY]);
    assert_eq!(write(s, vec![tap(c.id, a.id, 7, "p5")]).await, [REPLAY]);
    assert_eq!(write(s, vec![tap(c.id, a.id, 10, "p6")]).await, [OK]);
    // A replayed tap is never rate-limited in place of the real one, and a click
    // without a card check is untouched.
    let mut plain = click(&a.code, a.id, "p7", tapkit_server::store::now_ms());
    plain.card_id = Some(c.id);
    plain.counter = Some(1);
    assert_eq!(write(s, vec![plain]).await, [OK]);
    // The card is retired between the tap's lookup and its write: not attributed.
    s.end_card(c.id, "retired").await.unwrap();
    assert_eq!(
        write(s, vec![tap(c.id, a.id, 11, "p8")]).await,
        [("unattributed", Some("card_revoked"))]
    );
    // The stored counter is the highest accepted.
    let card = s.latest_card("04A1B2C3D4E5F6").await.unwrap().unwrap();
    assert_eq!(card.last_counter, Some(10));
}

#[tokio::test]
async fn card_counters_are_decided_with_the_click_on_sqlite() {
    let (s, dir) = sqlite().await;
    counter_suite(&s).await;
    drop(s);
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn card_counters_are_decided_with_the_click_on_postgres() {
    let Some((s, name)) = postgres().await else {
        return;
    };
    counter_suite(&s).await;
    drop(s);
    drop_pg(&name).await;
}

/// Two replicas on one PostgreSQL database receive the same tap URL (one counter) many
/// times at once, in concurrent batches: exactly one is attributed.
#[tokio::test]
async fn one_counter_is_attributed_once_across_replicas_on_postgres() {
    let Some((s1, name)) = postgres().await else {
        return;
    };
    s1.ensure_program(&program()).await.unwrap();
    let a = s1
        .create_affiliate(1, "Iron Gym", "business", None)
        .await
        .unwrap();
    let (c1, _) = s1.register_card(a.id, "04A1B2C3D4E5F6").await.unwrap();
    let (c2, _) = s1.register_card(a.id, "04A1B2C3D4E5F7").await.unwrap();
    let s2 = replica(&name).await;
    let mut tasks = Vec::new();
    for store in [s1.clone(), s2.clone()] {
        for t in 0..8 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                // Both cards in every batch, in both orders: no deadlock either way.
                let mut batch = vec![tap(c1.id, a.id, 42, "x"), tap(c2.id, a.id, 7, "y")];
                if t % 2 == 1 {
                    batch.reverse();
                }
                let ids: Vec<i64> = store.allocate_click_ids(2).await.unwrap().collect();
                store.insert_clicks(&mut batch, &ids, 0).await.unwrap();
                batch
                    .iter()
                    .filter(|c| c.outcome == "attributed")
                    .map(|c| c.card_id.unwrap())
                    .collect::<Vec<_>>()
            }));
        }
    }
    let mut attributed = Vec::new();
    for t in tasks {
        attributed.extend(t.await.unwrap());
    }
    attributed.sort_unstable();
    assert_eq!(attributed, [c1.id, c2.id], "one per card over 32 taps");
    assert_eq!(s2.click_count().await.unwrap(), 32);
    drop((s1, s2));
    drop_pg(&name).await;
}
