//! CPU clocks, for the figures a run reports about itself (`eurzad run --once` and the benches).

use std::time::Duration;

/// This process's CPU time so far, user and system, all threads.
pub fn process() -> Duration {
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage fills the struct it is given.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

/// The calling thread's CPU clock, in nanoseconds. Only differences taken on one thread,
/// around code that does not yield to the runtime, mean anything.
pub fn thread() -> u64 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime fills the struct it is given; this clock always exists on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) };
    now.tv_sec as u64 * 1_000_000_000 + now.tv_nsec as u64
}

/// Nanoseconds of this thread's CPU time since `started` (a [`thread`] reading).
pub fn thread_since(started: u64) -> u64 {
    thread().saturating_sub(started)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_thread_clock_counts_work_done_on_this_thread_and_not_sleep() {
        let started = thread();
        std::thread::sleep(Duration::from_millis(50));
        let slept = thread_since(started);
        let started = thread();
        let mut x = 0u64;
        while thread_since(started) < 20_000_000 {
            x = std::hint::black_box(x.wrapping_add(1));
        }
        let worked = thread_since(started);
        assert!(slept < 10_000_000, "sleeping counted {slept} ns of CPU");
        assert!(worked >= 20_000_000, "{worked} ns");
        assert!(process() >= Duration::from_nanos(worked));
    }
}
