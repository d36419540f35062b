//! Measuring helpers shared by the benches.

use std::process::Command;
use std::time::Duration;

/// CPU time (user + system) and peak RSS (KiB) of this process, from getrusage.
pub fn cpu_time() -> (Duration, u64) {
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    (
        tv(usage.ru_utime) + tv(usage.ru_stime),
        usage.ru_maxrss as u64,
    )
}

/// Seconds per RSA-2048 signature according to `openssl speed`.
pub fn openssl_rsa2048_sign() -> Duration {
    let output = Command::new("openssl")
        .args(["speed", "-seconds", "2", "rsa2048"])
        .output()
        .expect("openssl is installed");
    let text = String::from_utf8_lossy(&output.stdout);
    // "rsa 2048 bits 0.000712s 0.000021s   1404.5  47619.0"
    let line = text
        .lines()
        .find(|l| l.trim_start().starts_with("rsa 2048 bits"))
        .unwrap_or_else(|| panic!("unexpected openssl speed output:\n{text}"));
    let sign: f64 = line
        .split_whitespace()
        .nth(3)
        .unwrap()
        .trim_end_matches('s')
        .parse()
        .unwrap();
    Duration::from_secs_f64(sign)
}
