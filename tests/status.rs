//! `eurzad status`: what the office's IT admin and a monitoring check read, without writing
//! anything. Exit 0 while no job has failed, 1 when some have (listed with their errors),
//! 2 when there is no database to read.

mod common;

use common::*;

fn status(config: &std::path::Path) -> (Option<i32>, String) {
    eurzad_exit_with_config(&["status"], config)
}

#[tokio::test(flavor = "multi_thread")]
async fn status_gives_the_counts_and_the_failed_jobs_and_exits_1_while_some_failed() {
    let dir = tempfile::tempdir().unwrap();
    let db = test_database(dir.path()).await;
    let config = embedded_config(dir.path(), &db.url, "");

    if db.kind == "sqlite" {
        // Nothing to read yet, and reading creates nothing.
        let (code, out) = status(&config);
        assert_eq!(code, Some(2), "{out}");
        assert!(out.contains("no database at"), "{out}");
        assert!(!dir.path().join("eurzad.db").exists());
    }

    let (ok, out) = eurzad_with_config(&["run", "--once"], &config);
    assert!(ok, "{out}");
    let pool = any_pool(&db.url).await;
    let documents: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM inbound_document")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(documents > 0, "the demo documents arrived");
    let (code, out) = status(&config);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains(&format!("  {documents} documents (the last stored 20"))
            && out.contains(", 0 unconfirmed")
            && out.contains(" 0 failed"),
        "{out}"
    );
    assert!(!out.contains("failed jobs"), "{out}");

    exec(
        &pool,
        "UPDATE job SET status = 'failed', attempts = 5, \
         last_error = 'signature check: the trusted list is unreadable' \
         WHERE id = (SELECT MIN(id) FROM job)",
    )
    .await;
    let (kind, key): (String, String) =
        sqlx::query_as("SELECT kind, key FROM job WHERE status = 'failed'")
            .fetch_one(&pool)
            .await
            .unwrap();
    let (code, out) = status(&config);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains(" 1 failed"), "{out}");
    assert!(
        out.contains(&format!("{kind} {key} after 5 attempts, 20"))
            && out.contains(": signature check: the trusted list is unreadable"),
        "{out}"
    );
    pool.close().await;
}
