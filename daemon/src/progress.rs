//! From engine events to numbered, monotonic progress.
//!
//! The engine reports events from any thread through [`ForwardingReporter`]; they go down a
//! channel to the transaction that is running, where [`Meter`] numbers them and turns phases into
//! one percentage. Each phase has a fixed weight published here, so the percentage of a whole
//! transaction never goes backwards when a new phase starts (PackageKit's classic complaint).

use std::{
    sync::Mutex,
    time::{Duration, Instant},
};

use moss::events::{Event, Phase, Reporter};
use moss_proto::wire::{PROGRESS_VERSION, Progress};
use tokio::sync::mpsc::UnboundedSender;

/// Weight of each phase in the whole-transaction percentage; they sum to 100.
pub fn weight(phase: Phase) -> u32 {
    match phase {
        Phase::Resolve => 5,
        Phase::Fetch => 30,
        Phase::Unpack => 20,
        Phase::Blit => 25,
        Phase::Triggers => 10,
        Phase::Swap => 5,
        Phase::Boot => 5,
    }
}

/// The engine's reporter inside the daemon: sends events to whichever transaction runs.
#[derive(Debug, Default)]
pub struct ForwardingReporter {
    target: Mutex<Option<UnboundedSender<Event>>>,
}

impl ForwardingReporter {
    /// Send events to `sender` from now on (`None`: drop them).
    pub fn attach(&self, sender: Option<UnboundedSender<Event>>) {
        *self
            .target
            .lock()
            .unwrap_or_else(|poison| poison.into_inner()) = sender;
    }
}

impl Reporter for ForwardingReporter {
    fn report(&self, event: Event) {
        let target = self
            .target
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        if let Some(sender) = target.as_ref() {
            // A closed channel means the transaction ended; late events have nowhere to go.
            let _ = sender.send(event);
        }
    }
}

/// Numbers events and keeps the percentage of one transaction.
#[derive(Debug)]
pub struct Meter {
    sequence: u64,
    finished_weight: u32,
    current: Option<Phase>,
    percentage: u32,
    started: Instant,
    bytes_done: u64,
    bytes_total: u64,
    downloads: std::collections::HashMap<String, u64>,
}

impl Default for Meter {
    fn default() -> Self {
        Self {
            sequence: 0,
            finished_weight: 0,
            current: None,
            percentage: 0,
            started: Instant::now(),
            bytes_done: 0,
            bytes_total: 0,
            downloads: Default::default(),
        }
    }
}

impl Meter {
    /// The percentage so far.
    pub fn percentage(&self) -> u32 {
        self.percentage
    }

    /// The number of the last event.
    pub fn sequence(&self) -> u64 {
        self.sequence
    }

    /// Account for `event` and number it.
    pub fn record(&mut self, event: Event) -> Progress {
        let mut candidate = self.percentage;
        match &event {
            Event::PhaseStarted { phase, .. } => {
                self.current = Some(*phase);
                candidate = self.finished_weight;
            }
            Event::Progress { phase, done, total } if *total > 0 => {
                let share = weight(*phase) as u64 * (*done).min(*total) / *total;
                candidate = self.finished_weight + share as u32;
            }
            Event::PhaseFinished { phase } => {
                self.finished_weight = (self.finished_weight + weight(*phase)).min(100);
                self.current = None;
                candidate = self.finished_weight;
            }
            Event::DownloadStarted { item, bytes } => {
                self.bytes_total += bytes.unwrap_or(0);
                self.downloads.insert(item.clone(), 0);
            }
            Event::DownloadProgress { item, bytes } => {
                let previous = self.downloads.insert(item.clone(), *bytes).unwrap_or(0);
                self.bytes_done += bytes.saturating_sub(previous);
                if self.current == Some(Phase::Fetch) && self.bytes_total > 0 {
                    let share = weight(Phase::Fetch) as u64 * self.bytes_done.min(self.bytes_total)
                        / self.bytes_total;
                    candidate = self.finished_weight + share as u32;
                }
            }
            _ => {}
        }
        // 100 is kept for the end of the transaction: a phase list can be shorter than the weights.
        self.percentage = self.percentage.max(candidate.min(99));
        self.sequence += 1;
        Progress {
            version: PROGRESS_VERSION,
            sequence: self.sequence,
            percentage: self.percentage,
            eta_seconds: self.eta().map(|eta| eta.as_secs()),
            bytes_done: self.bytes_done,
            bytes_total: self.bytes_total,
            event,
        }
    }

    /// Mark the transaction done.
    pub fn complete(&mut self) {
        self.percentage = 100;
    }

    fn eta(&self) -> Option<Duration> {
        if self.percentage == 0 {
            return None;
        }
        let elapsed = self.started.elapsed();
        let total = elapsed.mul_f64(100.0 / f64::from(self.percentage));
        Some(total.saturating_sub(elapsed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_sum_to_one_hundred() {
        let phases = [
            Phase::Resolve,
            Phase::Fetch,
            Phase::Unpack,
            Phase::Blit,
            Phase::Triggers,
            Phase::Swap,
            Phase::Boot,
        ];
        assert_eq!(phases.iter().map(|phase| weight(*phase)).sum::<u32>(), 100);
    }

    #[test]
    fn percentage_never_goes_back_and_events_are_numbered() {
        let mut meter = Meter::default();
        let mut last = 0;
        let events = [
            Event::PhaseStarted {
                phase: Phase::Fetch,
                total: 2,
            },
            Event::DownloadStarted {
                item: "a".into(),
                bytes: Some(100),
            },
            Event::DownloadProgress {
                item: "a".into(),
                bytes: 50,
            },
            Event::DownloadProgress {
                item: "a".into(),
                bytes: 100,
            },
            Event::PhaseFinished {
                phase: Phase::Fetch,
            },
            Event::PhaseStarted {
                phase: Phase::Blit,
                total: 10,
            },
            Event::Progress {
                phase: Phase::Blit,
                done: 5,
                total: 10,
            },
            // A phase restarting its count must not pull the percentage down.
            Event::Progress {
                phase: Phase::Blit,
                done: 1,
                total: 10,
            },
            Event::PhaseFinished { phase: Phase::Blit },
        ];
        for (index, event) in events.into_iter().enumerate() {
            let progress = meter.record(event);
            assert_eq!(progress.sequence, index as u64 + 1);
            assert!(progress.percentage >= last, "{progress:?}");
            last = progress.percentage;
        }
        assert_eq!(last, 55);
        meter.complete();
        assert_eq!(meter.percentage(), 100);
    }
}
