//! The deadline watch with an injected clock: a reminder when two days are left (day 5 of
//! 7), an overdue alert after day 7, each once; and exactly one daily digest per local day
//! across both daylight-saving changes of 2026 (a digest at 02:30, the worst hour).

use std::sync::Arc;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use eurzad::delivery::{DeliveryChannel, DeliveryError, DeliveryFuture, OutgoingLetter};
use eurzad::document::{PulledDocument, SenderData, SubjectData};
use eurzad::jobs::{Office, Watched, watch_deadlines};
use eurzad::notify::Mailer;
use eurzad::notify::schedule::Schedule;
use eurzad::provisioning::deadline::DayCount;
use eurzad::provisioning::{Assessment, Decision};
use eurzad::store::{Notice, Store};
use sqlx::Row;

struct NoChannel;

impl DeliveryChannel for NoChannel {
    fn name(&self) -> &'static str {
        "none"
    }
    fn deliver<'a>(&'a self, _: &'a OutgoingLetter) -> DeliveryFuture<'a> {
        Box::pin(async { Err(DeliveryError::Refused("not in this test".into())) })
    }
}

async fn setup(dir: &std::path::Path) -> (Store, Office) {
    let store = Store::connect(
        &format!("sqlite://{}?mode=rwc", dir.join("eurzad.db").display()),
        2,
    )
    .await
    .unwrap();
    store.migrate().await.unwrap();
    let mail = dir.join("mail");
    std::fs::create_dir_all(&mail).unwrap();
    let office = Office {
        name: "Urząd Miasta Testowo".into(),
        deadline_days: 7,
        deadline_count: DayCount::Calendar,
        seal: eurzad::emulator::demo_pki::office_key(),
        channel: Arc::new(NoChannel),
        proof_channel: Arc::new(NoChannel),
        proof_kinds: Vec::new(),
        electronic: None,
        routes: Vec::new(),
        desk_url: None,
        epuap_certificate: eurzad::emulator::demo_pki::EPUAP_CERT.to_vec(),
        officials: vec!["urzednik@urzad.test".into()],
        zone: chrono_tz::Europe::Warsaw,
        mailer: Mailer::Folder {
            transport: lettre::AsyncFileTransport::new(&mail),
            dir: mail,
            from: "eUrząd <eurzad@urzad.test>".parse().unwrap(),
        },
        routing: Vec::new(),
        reminder_before: TimeDelta::days(2),
        digest: Schedule::new("30 2 * * *", "Europe/Warsaw").unwrap(),
    };
    (store, office)
}

/// A request waiting for an official, received now (the store stamps the receipt).
async fn waiting_request(store: &Store) -> (i64, DateTime<Utc>) {
    let document = PulledDocument {
        dane_podmiotu: SubjectData::default(),
        dane_nadawcy: SenderData::default(),
        data_nadania: "2026-11-20T10:00:00Z".into(),
        nazwa_skrytki: "skrytka".into(),
        adres_skrytki: "/urzad_testowy/skrytka".into(),
        adres_odpowiedzi: Some("/jan_kowalski/skrytka".into()),
        czy_testowe: false,
        dane_dodatkowe: Vec::new(),
        nazwa_pliku: "wniosek.xml".into(),
        typ_pliku: None,
        content: b"<Wniosek/>".to_vec(),
    };
    let stored = store
        .store_pulled("/urzad_testowy/skrytka", &document, "skrot")
        .await
        .unwrap();
    let facts = store.provision_facts(stored.id).await.unwrap();
    let assessment = Assessment {
        decision: Decision::AwaitOfficial(vec!["do sprawdzenia".into()]),
        representations: Vec::new(),
    };
    let deadline = facts.stored_at + TimeDelta::days(7);
    let render = |_: &eurzad::store::RequestRow, _: &str| ("s".to_string(), "b".to_string());
    let notice = Notice {
        officials: &[],
        render: &render,
    };
    // The step finishes the job it holds: the `verify` job the stored document queued.
    let claimed = store
        .claim_jobs(std::time::Duration::from_secs(30), 1)
        .await
        .unwrap();
    let id = store
        .record_assessment(
            claimed[0].claim(),
            &facts,
            None,
            &assessment,
            "Jan Kowalski",
            facts.stored_at,
            deadline,
            &notice,
            Utc::now(),
        )
        .await
        .unwrap();
    (id, facts.stored_at)
}

async fn subjects(store: &Store, prefix: &str) -> Vec<String> {
    let Store::Sqlite(pool) = store else {
        unreachable!()
    };
    sqlx::query("SELECT subject FROM notification WHERE key LIKE $1 ORDER BY key")
        .bind(format!("{prefix}%"))
        .fetch_all(pool)
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

#[tokio::test]
async fn a_reminder_on_day_five_and_an_alert_after_day_seven_each_once() {
    let dir = tempfile::tempdir().unwrap();
    let (store, office) = setup(dir.path()).await;
    let (id, received) = waiting_request(&store).await;
    let at =
        |days: i64, minutes: i64| received + TimeDelta::days(days) + TimeDelta::minutes(minutes);
    let watch = |now| {
        let (store, office) = (&store, &office);
        async move {
            let w: Watched = watch_deadlines(store, office, now).await.unwrap();
            (w.reminders, w.overdue)
        }
    };
    assert_eq!(watch(at(1, 0)).await, (0, 0));
    assert_eq!(
        watch(at(4, 23 * 60)).await,
        (0, 0),
        "more than two days left"
    );
    assert_eq!(watch(at(5, 1)).await, (1, 0), "day 5: two days left");
    assert_eq!(watch(at(6, 0)).await, (0, 0), "the reminder goes once");
    assert_eq!(watch(at(6, 23 * 60 + 59)).await, (0, 0), "not overdue yet");
    assert_eq!(watch(at(7, 1)).await, (0, 1), "after day 7: overdue");
    assert_eq!(watch(at(9, 0)).await, (0, 0), "the alert goes once");
    assert_eq!(
        subjects(&store, "reminder:").await,
        vec![format!(
            "Przypomnienie: termin odpowiedzi na wniosek nr {id} mija {}",
            (received + TimeDelta::days(7))
                .with_timezone(&chrono_tz::Europe::Warsaw)
                .format("%d.%m.%Y, %H:%M")
        )]
    );
    assert_eq!(
        subjects(&store, "overdue:").await,
        vec![format!(
            "PILNE: przekroczony termin odpowiedzi na wniosek nr {id}"
        )]
    );
}

/// Steps the clock through `days` from `start` in 7-minute ticks; returns the local dates
/// the digests were for, in order.
async fn digest_days(
    store: &Store,
    office: &Office,
    start: DateTime<Utc>,
    days: i64,
) -> Vec<String> {
    let before = subjects(store, "digest:").await.len();
    let mut now = start;
    while now < start + TimeDelta::days(days) {
        watch_deadlines(store, office, now).await.unwrap();
        now += TimeDelta::minutes(7);
    }
    subjects(store, "digest:").await[before..]
        .iter()
        .map(|s| {
            s.strip_prefix("Zestawienie dzienne eUrząd z dnia ")
                .unwrap()
                .split(':')
                .next()
                .unwrap()
                .to_string()
        })
        .collect()
}

#[tokio::test]
async fn exactly_one_digest_per_day_across_both_dst_changes_of_2026() {
    let dir = tempfile::tempdir().unwrap();
    let (store, office) = setup(dir.path()).await;
    waiting_request(&store).await;
    // Spring: 29 March 2026, 02:00 → 03:00 (02:30 does not exist that day).
    let spring = digest_days(
        &store,
        &office,
        Utc.with_ymd_and_hms(2026, 3, 27, 12, 0, 0).unwrap(),
        5,
    )
    .await;
    assert_eq!(
        spring,
        [
            "27.03.2026",
            "28.03.2026",
            "29.03.2026",
            "30.03.2026",
            "31.03.2026",
            "01.04.2026"
        ],
        "the first is the catch-up of the previous occurrence"
    );
    // Autumn: 25 October 2026, 03:00 → 02:00 (02:30 happens twice that day).
    let autumn = digest_days(
        &store,
        &office,
        Utc.with_ymd_and_hms(2026, 10, 23, 12, 0, 0).unwrap(),
        5,
    )
    .await;
    assert_eq!(
        autumn,
        [
            "23.10.2026",
            "24.10.2026",
            "25.10.2026",
            "26.10.2026",
            "27.10.2026",
            "28.10.2026"
        ]
    );
    // Each digest lists the request waiting for an official.
    let Store::Sqlite(pool) = &store else {
        unreachable!()
    };
    let body: String =
        sqlx::query("SELECT body FROM notification WHERE key LIKE 'digest:%' LIMIT 1")
            .fetch_one(pool)
            .await
            .unwrap()
            .get(0);
    assert!(body.contains("czeka na decyzję urzędnika"), "{body}");
}
