//! Renders engine events on stderr: a progress bar per phase (when stderr is a terminal) and
//! warnings as text. `NO_COLOR` disables colour; no bar is drawn when stderr is not a terminal.

use std::{
    io::{IsTerminal, Write},
    sync::Mutex,
};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use moss::events::{Event, Phase, Reporter};

/// The CLI's reporter.
#[derive(Debug)]
pub struct Progress {
    bar: Mutex<Option<ProgressBar>>,
    interactive: bool,
}

impl Progress {
    /// A reporter drawing on stderr.
    pub fn new() -> Self {
        Self {
            bar: Mutex::new(None),
            interactive: std::io::stderr().is_terminal(),
        }
    }

    fn start(&self, phase: Phase, total: u64) {
        let mut slot = self.bar.lock().expect("progress lock");
        if let Some(bar) = slot.take() {
            bar.finish_and_clear();
        }
        if !self.interactive {
            return;
        }
        let colour = std::env::var_os("NO_COLOR").is_none();
        let template = if colour {
            "{prefix:>8.cyan} [{bar:30}] {pos}/{len} {wide_msg}"
        } else {
            "{prefix:>8} [{bar:30}] {pos}/{len} {wide_msg}"
        };
        let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr())
            .with_style(
                ProgressStyle::with_template(template)
                    .expect("template")
                    .progress_chars("=> "),
            )
            .with_prefix(phase_name(phase));
        *slot = Some(bar);
    }
}

fn phase_name(phase: Phase) -> &'static str {
    match phase {
        Phase::Resolve => "resolve",
        Phase::Fetch => "fetch",
        Phase::Unpack => "unpack",
        Phase::Blit => "blit",
        Phase::Triggers => "triggers",
        Phase::Swap => "swap",
        Phase::Boot => "boot",
    }
}

impl Reporter for Progress {
    fn report(&self, event: Event) {
        match event {
            Event::PhaseStarted { phase, total } => self.start(phase, total),
            Event::Progress { done, total, .. } => {
                if let Some(bar) = &*self.bar.lock().expect("progress lock") {
                    bar.set_length(total);
                    bar.set_position(done);
                }
            }
            Event::PhaseFinished { .. } => {
                if let Some(bar) = self.bar.lock().expect("progress lock").take() {
                    bar.finish_and_clear();
                }
            }
            Event::DownloadFinished { item, cached } => {
                let note = if cached { " (cached)" } else { "" };
                self.say(&format!("Fetched {item}{note}"));
            }
            Event::Unpacked { package } => {
                if let Some(bar) = &*self.bar.lock().expect("progress lock") {
                    bar.inc(1);
                    bar.set_message(package);
                }
            }
            Event::Retry {
                item,
                attempt,
                reason,
            } => self.say(&format!("Retrying {item} (attempt {attempt}): {reason}")),
            Event::Warning { message } => self.say(&format!("warning: {message}")),
            Event::DownloadStarted { .. } | Event::DownloadProgress { .. } => {}
        }
    }
}

impl Progress {
    fn say(&self, text: &str) {
        match &*self.bar.lock().expect("progress lock") {
            Some(bar) => bar.println(text),
            None => {
                let _ = writeln!(std::io::stderr(), "{text}");
            }
        }
    }
}
