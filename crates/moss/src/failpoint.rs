//! Crash injection for tests: `MOSS_CRASH_AT=<point>` makes the process SIGKILL itself when a
//! transaction reaches that point, exactly as a power cut or `kill -9` would stop it there.
//!
//! Points, in transaction order: `unpacked`, `blitted`, `journaled`, `swapped`, `recorded`,
//! `archived`. The variable is read once; without it this costs one comparison per point.
//!
//! `MOSS_PAUSE_AT=<point>:<milliseconds>` holds the transaction at a point instead, so tests can
//! act while it is there (cancel it, query beside it, kill the daemon running it).

use std::sync::OnceLock;

static CRASH_AT: OnceLock<Option<String>> = OnceLock::new();
static PAUSE_AT: OnceLock<Option<(String, u64)>> = OnceLock::new();

/// Die here if the environment asks for it.
pub fn point(name: &str) {
    let wanted = CRASH_AT.get_or_init(|| std::env::var("MOSS_CRASH_AT").ok());
    if wanted.as_deref() == Some(name) {
        let _ = nix::sys::signal::kill(nix::unistd::getpid(), nix::sys::signal::Signal::SIGKILL);
    }
    let pause = PAUSE_AT.get_or_init(|| {
        let text = std::env::var("MOSS_PAUSE_AT").ok()?;
        let (point, milliseconds) = text.split_once(':')?;
        Some((point.to_owned(), milliseconds.parse().ok()?))
    });
    if let Some((point, milliseconds)) = pause
        && point == name
    {
        std::thread::sleep(std::time::Duration::from_millis(*milliseconds));
    }
}
