//! The sd_notify protocol as systemd's Type=notify uses it: READY=1 once running, a STATUS
//! line with the counts and the boxes' health, WATCHDOG=1 at half of WATCHDOG_USEC,
//! STOPPING=1 on SIGTERM, then a clean exit. systemd is not PID 1 here, so the test plays
//! systemd: it binds the notification socket itself.

mod common;

use std::os::unix::net::UnixDatagram;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Receives notifications into `seen` until `done(seen)`, failing after `timeout`.
fn receive_until_seen(
    socket: &UnixDatagram,
    what: &str,
    timeout: Duration,
    seen: &mut Vec<String>,
    done: impl Fn(&[String]) -> bool,
) {
    let start = Instant::now();
    let mut buffer = [0u8; 4096];
    while !done(seen) {
        assert!(
            start.elapsed() < timeout,
            "no {what} within {timeout:?}; got {seen:?}"
        );
        if let Ok(n) = socket.recv(&mut buffer) {
            seen.push(String::from_utf8_lossy(&buffer[..n]).into_owned());
        }
    }
}

/// Receives until a notification carries the line `wanted`.
fn receive_until(socket: &UnixDatagram, wanted: &str, timeout: Duration, seen: &mut Vec<String>) {
    receive_until_seen(socket, wanted, timeout, seen, |seen| {
        seen.iter().any(|m| m.lines().any(|l| l == wanted))
    });
}

#[test]
fn notifies_ready_watchdog_and_stopping() {
    let dir = tempfile::tempdir().unwrap();
    let socket_path = dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        format!(
            "[database]\nurl = \"sqlite://{db}\"\n[epuap]\nendpoint = \"embedded\"\npoll_interval = \"500ms\"\n\
             [[epuap.boxes]]\npodmiot = \"urzad_testowy\"\nnazwa = \"skrytka\"\nadres = \"/urzad_testowy/skrytka\"\n\
             [emulator]\nstate_dir = \"{state}\"\n",
            db = dir.path().join("eurzad.db").display(),
            state = dir.path().join("emulator").display()
        ),
    )
    .unwrap();
    let mut daemon = common::Daemon::from(
        Command::new(common::BIN)
            .args(["run", "--config"])
            .arg(&config)
            .env("NOTIFY_SOCKET", &socket_path)
            .env("WATCHDOG_USEC", "400000")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let mut seen = Vec::new();
    receive_until(&socket, "READY=1", Duration::from_secs(20), &mut seen);
    // Then the status line for `systemctl status`: the counts and the box's health.
    let status = |seen: &[String]| {
        seen.iter()
            .flat_map(|m| m.lines())
            .find(|l| l.starts_with("STATUS=") && l.contains(" documents, "))
            .map(str::to_string)
    };
    receive_until_seen(
        &socket,
        "status line",
        Duration::from_secs(10),
        &mut seen,
        |seen| status(seen).is_some(),
    );
    let line = status(&seen).unwrap();
    assert!(
        line.contains(" unconfirmed; jobs: ") && line.contains("; box /urzad_testowy/skrytka: "),
        "{line}"
    );
    // Two pings: the watchdog keeps going, it is not a one-off.
    receive_until(&socket, "WATCHDOG=1", Duration::from_secs(5), &mut seen);
    let pings = seen.iter().filter(|m| m.contains("WATCHDOG=1")).count();
    receive_until_seen(
        &socket,
        "two more pings",
        Duration::from_secs(5),
        &mut seen,
        |seen| seen.iter().filter(|m| m.contains("WATCHDOG=1")).count() >= pings + 2,
    );
    unsafe { libc::kill(daemon.id() as i32, libc::SIGTERM) };
    receive_until(&socket, "STOPPING=1", Duration::from_secs(10), &mut seen);
    let status = daemon.wait().unwrap();
    assert!(status.success(), "clean exit: {status}");
}
