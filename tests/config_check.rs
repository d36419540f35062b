//! The configuration is the IT admin's input: `eurzad check` judges it as the daemon's start
//! would, and a bad one is refused with the file and the key, never with a panic. Seeded
//! mutants of the shipped config.toml (values replaced by wrong ones, lines dropped or
//! doubled, unknown keys, bytes flipped) are loaded as the daemon loads them: each loads, or
//! fails naming the file and what is wrong. `EURZAD_MUTANTS=N` sets the number (default
//! 2000), `EURZAD_MUTATION_SEED=S` the first seed.

mod common;

use std::process::Command;

use common::BIN;
use eurzad::config::{Config, ConfigError};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

fn shipped() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config.toml")).unwrap()
}

/// The shipped config with its `[edoreczenia]` section commented out, for a test to add its
/// own.
fn shipped_without_edoreczenia() -> String {
    let text = shipped();
    assert!(text.contains("\n[edoreczenia]\nendpoint = \"embedded\""));
    text.replace(
        "\n[edoreczenia]\nendpoint = \"embedded\"",
        "\n# [edoreczenia]\n# endpoint = \"embedded\"",
    )
}

/// Runs `eurzad check` in the config's folder, where its relative paths (`var/…`) point.
fn check(config: &std::path::Path) -> (i32, String, String) {
    let output = Command::new(BIN)
        .args(["check", "--config"])
        .arg(config)
        .current_dir(config.parent().unwrap())
        .output()
        .unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn check_accepts_the_shipped_config_and_names_what_it_would_run() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("eurzad.toml");
    std::fs::write(&path, shipped()).unwrap();
    let (code, stdout, stderr) = check(&path);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.contains("is sound"), "{stdout}");
    // What the load warns about reaches the log (it is set up before the load), once.
    assert_eq!(
        stderr
            .matches("its demo key is trusted as a trusted-profile seal")
            .count(),
        1,
        "{stderr}"
    );
    assert!(stdout.contains("sqlite://var/eurzad.db"), "{stdout}");
    // Logs to a pipe (the journal, a file) carry no colour codes (issue 15, point 6).
    assert!(stderr.contains("WARN"), "{stderr}");
    assert!(!stderr.contains('\u{1b}'), "ANSI escapes in {stderr:?}");
    assert!(
        stdout.contains("the embedded emulator; boxes: /urzad_testowy/skrytka"),
        "{stdout}"
    );
    // What the daemon would run with, resolved as its start resolves it: the reply
    // channel, the mailer, the digest in the office's time zone.
    assert!(
        stdout.contains(
            "replies: ePUAP skrytka (nadaj, UPP at once), sealed with the WS-Security key"
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains("digest 0 8 * * * (Europe/Warsaw), reminders 48 h before a deadline"),
        "{stdout}"
    );
    assert!(
        stdout.contains(
            "  e-Doręczenia: the embedded emulator, system AE:PL-00000-00000-EURZD-00.SYSTEM.eurzad; deemed delivered 14 days after D.1 (moved off holidays)\n"
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains(
            "  routes: registration_info: edoreczenia → hybrid → epuap; registration_refusal: edoreczenia → hybrid → epuap; address database answers kept 1day\n"
        ),
        "{stdout}"
    );
    // It opened no database and made no folder (`var/eurzad.db`, `var/mail`): the folder
    // still holds the config alone.
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left, vec![std::ffi::OsString::from("eurzad.toml")]);
}

/// A configuration that runs but leaves officials uninformed is sound, with a warning.
#[test]
fn check_warns_when_no_official_would_be_mailed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("eurzad.toml");
    let text = shipped();
    let from = "officials = [\"sekretariat@urzad.example\"]";
    assert_eq!(text.matches(from).count(), 1);
    std::fs::write(&path, text.replacen(from, "officials = []", 1)).unwrap();
    let (code, stdout, stderr) = check(&path);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(
        stdout.contains("warning: notify.officials is empty"),
        "{stdout}"
    );
    let (_, shipped_out, _) = {
        std::fs::write(&path, shipped()).unwrap();
        check(&path)
    };
    assert!(!shipped_out.contains("warning:"), "{shipped_out}");
}

/// Mistakes that the daemon used to find only after it had opened the database and drained
/// the boxes are now found at load, by `check` and by the start alike.
#[test]
fn check_refuses_what_the_start_would_refuse_naming_file_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "proof_of_delivery = []",
            "proof_of_delivery = [\"registration_refusl\"]",
            "provisioning.proof_of_delivery: unknown letter kind \"registration_refusl\"",
        ),
        (
            "[provisioning]",
            "[provisioning]\nseal_private_key = \"/nonexistent/seal.key\"",
            "provisioning.seal_private_key: goes together with provisioning.seal_certificate",
        ),
        (
            "[provisioning]",
            "[provisioning]\nseal_private_key = \"/nonexistent/seal.key\"\nseal_certificate = \"/nonexistent/seal.pem\"",
            "provisioning.seal_private_key: cannot read /nonexistent/seal.key",
        ),
        (
            "officials = [\"sekretariat@urzad.example\"]",
            "officials = [\"sekretariat(at)urzad.example\"]",
            "notify.officials",
        ),
        (
            "[log]",
            "[portal]\nlisten = \"127.0.0.1:8090\"\n\n[log]",
            "portal.token_file: required with portal.listen",
        ),
        (
            "[log]",
            "[portal]\nconnections_during_sync = 0\n\n[log]",
            "portal.connections_during_sync: must be at least 1",
        ),
        (
            "[log]",
            "[portal]\nrest_during_sync = -0.5\n\n[log]",
            "portal.rest_during_sync: must be between 0 and 10",
        ),
        (
            "[log]",
            "[edoreczenia]\nendpoint = \"https://uaapi-ow.poczta-polska.pl\"\nade = \"AE:PL-12345-67890-abcde-12\"\n\n[log]",
            "edoreczenia.ade: \"AE:PL-12345-67890-abcde-12\" is not an e-Doręczenia address (AE:PL-NNNNN-NNNNN-XXXXX-NN): the third group is five upper-case letters or digits",
        ),
        (
            "[log]",
            "[edoreczenia]\nendpoint = \"https://uaapi-ow.poczta-polska.pl\"\nade = \"AE:PL-12345-67890-ABCDE-12\"\nsystem_certificate = \"/nonexistent/edor.pem\"\nsystem_private_key = \"/nonexistent/edor.key\"\n\n[log]",
            "edoreczenia.system_certificate: cannot read /nonexistent/edor.pem",
        ),
        (
            "[log]",
            "[edoreczenia]\nendpoint = \"http://uaapi.example\"\n\n[log]",
            "edoreczenia.endpoint: \"http://uaapi.example\": https:// only",
        ),
        (
            "digest_cron = \"0 8 * * *\"",
            "digest_cron = \"0 8 * *\"",
            "notify.digest_cron",
        ),
        (
            "[delivery.routes]",
            "[delivery.routes]\nregistration_refusal = []",
            "delivery.routes.registration_refusal: empty: a letter of this kind could go nowhere",
        ),
        (
            "[delivery.routes]",
            "[delivery.routes]\nregistration_info = [\"hybrid\", \"epuap\", \"hybrid\"]",
            "delivery.routes.registration_info: hybrid is named twice",
        ),
        (
            "[delivery.routes]",
            "[delivery.routes]\nregistration_info = [\"poczta\"]",
            "unknown variant `poczta`, expected one of `edoreczenia`, `hybrid`, `epuap`",
        ),
        (
            "[delivery.routes]",
            "[delivery.routes]\nrejestracja = [\"hybrid\"]",
            "delivery.routes: unknown letter kind \"rejestracja\"",
        ),
        (
            "[registers.schedule]",
            "[registers.schedule]\nledger = \"0 2 30 2 *\"",
            "registers.schedule.ledger: schedule \"0 2 30 2 *\" in Europe/Warsaw: it never fires",
        ),
        (
            "poll_interval = \"30s\"",
            "poll_interval = \"30 sekund\"",
            "poll_interval",
        ),
        // Plain SMTP, with a password, to another machine (issue 15, point 4).
        (
            "# smtp_host = \"smtp.urzad.example\"",
            "smtp_host = \"smtp.urzad.example\"\nsmtp_security = \"none\"\nsmtp_user = \"eurzad\"\nsmtp_password_file = \"/etc/hostname\"",
            "notify.smtp_security: SMTP: \"none\" (plain SMTP) is allowed only to a loopback host, not \"smtp.urzad.example\"",
        ),
        (
            "# smtp_host = \"smtp.urzad.example\"",
            "smtp_host = \"10.0.0.25\"\nsmtp_security = \"none\"",
            "notify.smtp_security",
        ),
        // `check` reads the password file as the mailer would.
        (
            "# smtp_host = \"smtp.urzad.example\"",
            "smtp_host = \"smtp.urzad.example\"\nsmtp_user = \"eurzad\"\nsmtp_password_file = \"/nonexistent/smtp-password\"",
            "notify.smtp_password_file: SMTP: cannot read /nonexistent/smtp-password",
        ),
    ];
    for (n, (from, to, expected)) in cases.iter().enumerate() {
        let text = shipped_without_edoreczenia();
        assert_eq!(
            text.matches(from).count(),
            1,
            "{from:?} is in config.toml once"
        );
        let path = dir.path().join(format!("case-{n}.toml"));
        std::fs::write(&path, text.replacen(from, to, 1)).unwrap();
        let (code, stdout, stderr) = check(&path);
        assert_eq!(code, 2, "{to}: {stdout}{stderr}");
        assert!(
            stderr.contains(&path.display().to_string()) && stderr.contains(expected),
            "{to}: the error names the file and {expected:?}: {stderr}"
        );
        assert!(stdout.is_empty(), "{stdout}");
    }
}

const WRONG_VALUES: [&str; 30] = [
    "\"0 2 30 2 *\"",
    "\"*/0 * * * *\"",
    "\"0 0 * * 8\"",
    "\"@reboot\"",
    "\"0 2 * * * *\"",
    "\"L * * * *\"",
    "\"0 2 31 4 *\"",
    "\"59 23 29 2 *\"",
    "\"\"",
    "\"x\"",
    "-1",
    "0",
    "99999999999999999999",
    "\"0s\"",
    "\"-5s\"",
    "\"99999999999y\"",
    "\"* * * * * * * *\"",
    "\"61 * * * *\"",
    "true",
    "[]",
    "{}",
    "[\"\"]",
    "\"🙂\"",
    "\"../../etc/passwd\"",
    "\"sqlite://\"",
    "\"postgres://\"",
    "\"http://\"",
    "\"https://ws.epuap.gov.pl\"",
    "1.5",
    "\"credential:missing\"",
];

fn mutate(text: &str, rng: &mut StdRng) -> String {
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let settings: Vec<usize> = (0..lines.len())
        .filter(|&i| {
            let l = lines[i].trim_start();
            !l.starts_with('#') && l.contains(" = ")
        })
        .collect();
    for _ in 0..rng.random_range(1..=2) {
        let i = settings[rng.random_range(0..settings.len())];
        match rng.random_range(0..6) {
            0..=2 => {
                let key = lines[i].split(" = ").next().unwrap().to_string();
                let value = WRONG_VALUES[rng.random_range(0..WRONG_VALUES.len())];
                lines[i] = format!("{key} = {value}");
            }
            3 => lines[i] = format!("# {}", lines[i]),
            4 => {
                let copy = lines[i].clone();
                lines.insert(i, copy);
            }
            _ => lines.insert(i, "bogus_key = 1".to_string()),
        }
    }
    let mut text = lines.join("\n");
    if rng.random_bool(0.2) {
        let mut bytes = text.into_bytes();
        let at = rng.random_range(0..bytes.len());
        let markup = b"=[]\"'#\n{}.";
        bytes[at] = markup[rng.random_range(0..markup.len())];
        text = String::from_utf8_lossy(&bytes).into_owned();
    }
    text
}

#[test]
fn mutants_of_the_shipped_config_load_or_name_file_and_fault() {
    let count: u64 = std::env::var("EURZAD_MUTANTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let first: u64 = std::env::var("EURZAD_MUTATION_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_261_127);
    // With two register schedules, so that cron patterns are mutated too.
    let genuine = shipped().replacen(
        "[registers.schedule]",
        "[registers.schedule]\nledger = \"30 2 * * *\"\nparties = \"0 3 * * 1-5\"",
        1,
    );
    Config::daemon_from_toml("config.toml", &genuine).expect("the shipped config loads");
    let (mut loaded, mut refused) = (0u64, 0u64);
    for seed in first..first + count {
        let mut rng = StdRng::seed_from_u64(seed);
        let mutant = mutate(&genuine, &mut rng);
        match Config::daemon_from_toml("config.toml", &mutant) {
            Ok(_) => loaded += 1,
            Err(error) => {
                refused += 1;
                let text = error.to_string();
                assert!(
                    text.starts_with("config.toml: ") && text.len() > "config.toml: ".len(),
                    "mutant {seed}: the error names the file and the fault: {text}"
                );
                match &error {
                    ConfigError::Parse { message, .. } => assert!(
                        message.contains("line") || message.contains("epuap.boxes"),
                        "mutant {seed}: a parse error says where: {text}\n{mutant}"
                    ),
                    ConfigError::Invalid { key, .. } => {
                        assert!(!key.is_empty(), "mutant {seed}: {text}")
                    }
                    ConfigError::Read { .. } => panic!("mutant {seed}: nothing to read: {text}"),
                }
            }
        }
    }
    println!("{count} mutants: {loaded} loaded, {refused} refused");
    if count >= 500 {
        assert!(
            refused * 2 >= count,
            "most mutants are wrong: {refused} of {count}"
        );
        assert!(
            loaded * 50 >= count,
            "some mutants still load: {loaded} of {count}"
        );
    }
}

/// Issue 15, point 8: commands check only the parts of the configuration they use. A
/// configuration for register syncs alone (a database and a drop folder, no `[epuap]`) used to
/// be refused by every command with "epuap.boxes: no box configured".
#[tokio::test(flavor = "multi_thread")]
async fn a_sync_only_configuration_serves_the_commands_that_need_no_epuap() {
    let dir = tempfile::tempdir().unwrap();
    let db = common::test_database(dir.path()).await;
    let import = common::basic_registers_drop_dir(dir.path());
    let config = dir.path().join("sync.toml");
    std::fs::write(
        &config,
        format!(
            "[database]\nurl = \"{}\"\n\n[registers]\ndrop_dir = \"{}\"\n",
            db.url,
            import.display()
        ),
    )
    .unwrap();
    let run = |args: &[&str]| common::eurzad_exit_with_config(args, &config);
    let (code, out) = run(&["sync"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("parties") && out.contains("inserted"), "{out}");
    let (code, out) = run(&["status"]);
    assert_eq!(code, Some(0), "{out}");
    let backup = dir.path().join("copy.db");
    let (code, out) = run(&["backup", "--to", backup.to_str().unwrap()]);
    if db.kind == "sqlite" {
        assert_eq!(code, Some(0), "{out}");
    } else {
        // PostgreSQL is backed up with pg_dump; the command says so (not "no box").
        assert!(out.contains("pg_dump") && !out.contains("epuap"), "{out}");
    }
    let (code, out) = run(&["requests", "list"]);
    assert_eq!(code, Some(0), "{out}");
    let letter = common::fixture("signed/pismo-ogolne-signed.xml");
    let (code, out) = run(&["verify", letter.to_str().unwrap()]);
    // Judged (not trusted: this configuration names no anchor), not refused for a missing box.
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains(&format!("trust: the configuration {}", config.display())),
        "{out}"
    );
    // The daemon needs ePUAP: its start and `check` name the key.
    for args in [&["check"][..], &["run", "--once"]] {
        let (code, out) = run(args);
        assert_eq!(code, Some(2), "{args:?}: {out}");
        assert!(
            out.contains("sync.toml: epuap.endpoint: not set"),
            "{args:?}: {out}"
        );
    }
}

/// `[edoreczenia]` is resolved with the rest: the system's key is checked against its
/// certificate, and `check` names the system e-Doręczenia will know it as.
#[test]
fn check_resolves_the_edoreczenia_system_and_refuses_a_key_of_another_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let pki = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/pki");
    let with = |key: &str| {
        shipped_without_edoreczenia().replace(
            "[log]",
            &format!(
                "[edoreczenia]\nendpoint = \"https://uaapi-ow.poczta-polska.pl\"\n\
                 ade = \"AE:PL-12345-67890-ABCDE-12\"\nsystem_certificate = \"{pki}/office.pem\"\n\
                 system_private_key = \"{pki}/{key}\"\n\n[log]"
            ),
        )
    };
    let path = dir.path().join("eurzad.toml");
    std::fs::write(&path, with("office.key")).unwrap();
    let (code, stdout, stderr) = check(&path);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(
        stdout.contains(
            "e-Doręczenia: https://uaapi-ow.poczta-polska.pl, system AE:PL-12345-67890-ABCDE-12.SYSTEM.eurzad, \
             token from https://uaapi-ow.poczta-polska.pl/auth/realms/EDOR"
        ),
        "{stdout}"
    );
    std::fs::write(&path, with("rogue.key")).unwrap();
    let (code, stdout, stderr) = check(&path);
    assert_eq!(code, 2, "{stdout}{stderr}");
    assert!(
        stderr.contains("edoreczenia.system_private_key / edoreczenia.system_certificate"),
        "{stderr}"
    );
}
