//! `eurzad backup --to FILE`: a consistent copy of the SQLite database, taken while the
//! daemon runs, to a new file only. A PostgreSQL database is refused (pg_dump does that).

mod common;

use std::time::Duration;

use common::*;
use sha2::{Digest, Sha256};

#[tokio::test(flavor = "multi_thread")]
async fn a_backup_taken_while_the_daemon_runs_is_a_whole_database() {
    let dir = tempfile::tempdir().unwrap();
    let db = test_database(dir.path()).await;
    let config = embedded_config(dir.path(), &db.url, "poll_interval = \"200ms\"");
    let copy = dir.path().join("copy.db");

    if db.kind == "postgres" {
        let (code, out) =
            eurzad_exit_with_config(&["backup", "--to", copy.to_str().unwrap()], &config);
        assert_ne!(code, Some(0), "{out}");
        assert!(out.contains("pg_dump"), "{out}");
        return;
    }

    let log = dir.path().join("daemon.log");
    let mut daemon = spawn_daemon(&config, &log);
    wait_until(Duration::from_secs(30), "the demo documents", || async {
        try_stored_rows(&db.url)
            .await
            .is_some_and(|rows| rows.len() >= 2)
    })
    .await;
    let (code, out) = eurzad_exit_with_config(&["backup", "--to", copy.to_str().unwrap()], &config);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("copied to"), "{out}");
    let status = stop_with_sigterm(&mut daemon, Duration::from_secs(30)).await;
    assert!(status.success(), "{status}");

    // The copy is a database of its own: whole, every document's content matching its
    // digest, each as the live database holds it.
    let copy_url = format!("sqlite://{}", copy.display());
    let pool = any_pool(&copy_url).await;
    let check: String = sqlx::query_scalar("PRAGMA integrity_check")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(check, "ok");
    pool.close().await;
    let copied = stored_rows(&copy_url).await;
    let live = stored_rows(&db.url).await;
    assert!(copied.len() >= 2 && copied.len() <= live.len());
    for row in &copied {
        assert_eq!(
            hex::encode(Sha256::digest(&row.content)),
            row.content_sha256
        );
        assert!(
            live.iter()
                .any(|l| l.identity_key == row.identity_key && l.content == row.content),
            "{} is in the live database",
            row.nazwa_pliku
        );
    }

    // A backup never overwrites a file.
    let (code, out) = eurzad_exit_with_config(&["backup", "--to", copy.to_str().unwrap()], &config);
    assert_ne!(code, Some(0), "{out}");
    assert!(out.contains("exists already"), "{out}");
}
