//! Two daemons on one database (PostgreSQL with EURZAD_TEST_POSTGRES_URL, else one SQLite
//! file), both with a register sync scheduled every 2 seconds: each occurrence runs once,
//! claimed by one daemon (`schedule_claim`), and a dropped file is applied once.

mod common;

use std::time::Duration;

use common::*;
use sqlx::Row;

#[tokio::test(flavor = "multi_thread")]
async fn two_daemons_run_each_scheduled_sync_once() {
    let dir = tempfile::tempdir().unwrap();
    let emulator = EmulatorProcess::start(&dir.path().join("emulator"), &[("u", "s", "/u/s")], &[]);
    let db = test_database(dir.path()).await;
    let import = dir.path().join("import");
    std::fs::create_dir_all(&import).unwrap();
    std::fs::copy(
        fixture("registers/basic/parties.csv"),
        import.join("parties.csv"),
    )
    .unwrap();
    let config = daemon_config(
        dir.path(),
        &db.url,
        &emulator.url,
        &[("u", "s", "/u/s")],
        "",
    );
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str(&format!(
        "\n[registers]\ndrop_dir = \"{}\"\n[registers.schedule]\nparties = \"*/2 * * * * *\"\n",
        import.display()
    ));
    std::fs::write(&config, text).unwrap();
    // Migrate once, so that the two daemons do not race to create the schema.
    let status = std::process::Command::new(BIN)
        .args(["migrate", "--config"])
        .arg(&config)
        .status()
        .unwrap();
    assert!(status.success());
    let logs = [dir.path().join("a.log"), dir.path().join("b.log")];
    let mut daemons: Vec<_> = logs.iter().map(|log| spawn_daemon(&config, log)).collect();
    tokio::time::sleep(Duration::from_secs(9)).await;
    for daemon in &mut daemons {
        assert!(
            daemon.try_wait().unwrap().is_none(),
            "a daemon exited early"
        );
        daemon.kill().unwrap();
        daemon.wait().unwrap();
    }
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&db.url).await.unwrap();
    let claims: Vec<(String, String)> =
        sqlx::query("SELECT fire_at, claimed_by FROM schedule_claim ORDER BY fire_at")
            .fetch_all(&pool)
            .await
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
    // Each occurrence was claimed (and run) by exactly one daemon: the claims in the logs
    // add up to the rows, and no two rows share an instant.
    let claimed_in_logs: usize = logs
        .iter()
        .map(|log| {
            std::fs::read_to_string(log)
                .unwrap()
                .matches("scheduled sync claimed")
                .count()
        })
        .sum();
    assert!(claims.len() >= 3, "{claims:?}");
    assert_eq!(claimed_in_logs, claims.len(), "{claims:?}");
    let mut instants: Vec<&String> = claims.iter().map(|c| &c.0).collect();
    instants.dedup();
    assert_eq!(instants.len(), claims.len());
    let runs: Vec<String> = sqlx::query("SELECT status FROM sync_run WHERE register = 'parties'")
        .fetch_all(&pool)
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(runs, ["done"], "the dropped file applied once");
    assert!(import.join("done/parties.csv").exists());
    let parties: i64 = sqlx::query("SELECT COUNT(*) FROM reg_party")
        .fetch_one(&pool)
        .await
        .unwrap()
        .get(0);
    assert_eq!(parties, 3);
    pool.close().await;
}
