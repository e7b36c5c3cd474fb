//! A transaction as the window follows it: folded from its numbered events, whether they arrive
//! live, from a replay (`Events(since)`) when the window opens mid-transaction, or both. Events
//! at or below the last applied number are ignored, so replay and live signals may overlap.

use gettextrs::gettext;
use moss_proto::wire::Progress;
use moss_proto::{ErrorKind, status};

use crate::view::{errors::UserError, fill, format};

/// How a transaction ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Done; the daemon's message.
    Succeeded(String),
    /// Cancelled before its point of no return.
    Cancelled,
    /// Failed; the system is as it was.
    Failed(UserError),
}

/// Phases as the daemon reports them (the engine's `Phase`, in its JSON spelling), so that this
/// module needs nothing from the engine.
fn phase_label(phase: &str) -> String {
    match phase {
        "resolve" => gettext("Resolving packages"),
        "fetch" => gettext("Downloading"),
        "unpack" => gettext("Unpacking"),
        "blit" => gettext("Building the new system tree"),
        "triggers" => gettext("Running triggers"),
        "swap" => gettext("Switching to the new state"),
        "boot" => gettext("Updating boot entries"),
        other => other.to_owned(),
    }
}

/// A phase that ended, while nothing newer has started (a truthful headline between phases).
fn finished_label(phase: &str) -> String {
    match phase {
        "resolve" => gettext("Packages resolved"),
        "fetch" => gettext("Downloaded"),
        "unpack" => gettext("Unpacked"),
        "blit" => gettext("New system tree built"),
        "triggers" => gettext("Triggers ran"),
        "swap" => gettext("Switched to the new state"),
        "boot" => gettext("Boot entries updated"),
        other => other.to_owned(),
    }
}

/// What the window shows of one transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransactionView {
    /// Its object path.
    pub path: String,
    /// Its role (`Sync`, `Refresh`, ...), as the daemon names it.
    pub role: String,
    /// Number of the last event applied.
    pub last_sequence: u64,
    /// Whole-transaction percentage (never goes down).
    pub percentage: u32,
    /// The current phase, in the daemon's spelling.
    pub phase: Option<String>,
    /// Whether the current phase has finished (and no other started since).
    pub phase_finished: bool,
    /// Items done and expected in the current phase.
    pub items: (u64, u64),
    /// Bytes downloaded and to download.
    pub bytes: (u64, u64),
    /// Seconds left, when known.
    pub eta_seconds: Option<u64>,
    /// Whether `Cancel` can still stop it.
    pub cancellable: bool,
    /// Whether it is waiting in the queue.
    pub queued: bool,
    /// Warnings the engine reported.
    pub warnings: Vec<String>,
    /// How it ended, once it did.
    pub outcome: Option<Outcome>,
}

impl TransactionView {
    /// A transaction about to be followed.
    pub fn new(path: &str, role: &str) -> Self {
        Self {
            path: path.to_owned(),
            role: role.to_owned(),
            last_sequence: 0,
            percentage: 0,
            phase: None,
            phase_finished: false,
            items: (0, 0),
            bytes: (0, 0),
            eta_seconds: None,
            cancellable: true,
            queued: false,
            warnings: Vec::new(),
            outcome: None,
        }
    }

    /// Apply one numbered event (the JSON of [`Progress`]). Returns whether it was new; an
    /// event of an unknown version is an error the window shows once, not a crash.
    pub fn apply(&mut self, sequence: u64, json: &str) -> Result<bool, String> {
        if sequence <= self.last_sequence {
            return Ok(false);
        }
        let progress = Progress::from_json(json)?;
        self.last_sequence = sequence;
        self.queued = false;
        self.percentage = self.percentage.max(progress.percentage.min(100));
        self.bytes = (progress.bytes_done, progress.bytes_total);
        self.eta_seconds = progress.eta_seconds;
        // The engine's event travels as tagged JSON; reading it as a value keeps this module
        // independent of the engine's types.
        let event = serde_json::to_value(&progress.event).map_err(|error| error.to_string())?;
        let field = |name: &str| event.get(name).and_then(|value| value.as_str());
        let number = |name: &str| {
            event
                .get(name)
                .and_then(|value| value.as_u64())
                .unwrap_or(0)
        };
        match field("event") {
            Some("phase-started") => {
                self.enter(field("phase"));
                self.items = (0, number("total"));
            }
            Some("progress") => {
                self.enter(field("phase"));
                self.items = (number("done"), number("total"));
            }
            // Downloads and unpacking report per item, sometimes without a phase event.
            Some("download-started" | "download-progress" | "download-finished") => {
                self.enter(Some("fetch"));
            }
            Some("unpacked") => self.enter(Some("unpack")),
            Some("phase-finished") => {
                if field("phase") == self.phase.as_deref() {
                    self.phase_finished = true;
                }
                // Past the swap nothing can be undone by a cancel.
                if field("phase") == Some("swap") {
                    self.cancellable = false;
                }
            }
            Some("warning") => {
                if let Some(message) = field("message") {
                    self.warnings.push(message.to_owned());
                }
            }
            _ => {}
        }
        Ok(true)
    }

    fn enter(&mut self, phase: Option<&str>) {
        if phase.is_some() {
            self.phase = phase.map(str::to_owned);
            self.phase_finished = false;
        }
    }

    /// Apply the `Status` property.
    pub fn set_status(&mut self, status: &str) {
        self.queued = status == status::QUEUED || status == status::WAITING;
    }

    /// Apply the `Finished` signal (or the `Result` of a finished transaction).
    pub fn finish(&mut self, status: &str, message: &str, outcome: &str) {
        self.cancellable = false;
        self.outcome = Some(match status {
            status::SUCCEEDED => {
                self.percentage = 100;
                Outcome::Succeeded(message.to_owned())
            }
            status::CANCELLED => Outcome::Cancelled,
            _ => match UserError::from_outcome(message, outcome) {
                UserError::Engine {
                    kind: ErrorKind::Cancelled,
                    ..
                } => Outcome::Cancelled,
                error => Outcome::Failed(error),
            },
        });
    }

    /// Whether it ended.
    pub fn is_finished(&self) -> bool {
        self.outcome.is_some()
    }

    /// Whether to offer Cancel.
    pub fn can_cancel(&self) -> bool {
        self.cancellable && self.outcome.is_none()
    }

    /// The progress bar's fraction.
    pub fn fraction(&self) -> f64 {
        f64::from(self.percentage.min(100)) / 100.0
    }

    /// What it does, as a title ("Updating the system").
    pub fn title(&self) -> String {
        match self.role.as_str() {
            "Sync" => gettext("Updating the system"),
            "Refresh" => gettext("Checking for updates"),
            "Install" => gettext("Installing"),
            "Remove" => gettext("Removing"),
            "Activate state" => gettext("Rolling back"),
            "Prune states" | "Remove states" => gettext("Removing states"),
            "Repair" => gettext("Repairing"),
            "Automatic update" => gettext("Automatic update"),
            other => other.to_owned(),
        }
    }

    /// The line under the title: the phase, or the outcome once it ended.
    pub fn headline(&self) -> String {
        match &self.outcome {
            Some(Outcome::Succeeded(message)) if message.is_empty() => gettext("Done"),
            Some(Outcome::Succeeded(message)) => fill("Done: {}", &[message.as_str()]),
            Some(Outcome::Cancelled) => gettext("Cancelled — nothing was changed"),
            Some(Outcome::Failed(error)) => error.title(),
            None if self.queued => gettext("Waiting for another change to finish"),
            None => match &self.phase {
                Some(phase) if self.phase_finished => finished_label(phase),
                Some(phase) => phase_label(phase),
                None => gettext("Starting"),
            },
        }
    }

    /// Details: bytes, items and time left while running; the error text after a failure.
    pub fn detail(&self) -> String {
        match &self.outcome {
            Some(Outcome::Failed(error)) => return error.detail(),
            Some(_) => return String::new(),
            None => {}
        }
        let mut parts = vec![format!("{} %", self.percentage)];
        let (done, total) = self.bytes;
        if total > 0 {
            parts.push(fill(
                "{} of {}",
                &[&format::bytes(done), &format::bytes(total)],
            ));
        } else if self.items.1 > 0 {
            parts.push(fill(
                "{} of {} items",
                &[&self.items.0.to_string(), &self.items.1.to_string()],
            ));
        }
        if let Some(seconds) = self.eta_seconds {
            parts.push(format::time_left(seconds));
        }
        parts.join(" · ")
    }

    /// The text an assistive technology reads for the progress bar.
    pub fn accessible_description(&self) -> String {
        format!("{}: {}. {}", self.title(), self.headline(), self.detail())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(sequence: u64, percentage: u32, body: &str) -> String {
        format!(
            r#"{{"version":1,"sequence":{sequence},"percentage":{percentage},"eta_seconds":12,"bytes_done":1500000,"bytes_total":3000000,"event":{body}}}"#
        )
    }

    #[test]
    fn a_stream_of_events_shows_phase_bytes_and_time_left() {
        let mut view = TransactionView::new("/com/serpentos/Moss1/Transaction/1", "Sync");
        assert_eq!(view.headline(), "Starting");
        let started = event(
            1,
            10,
            r#"{"event":"phase-started","phase":"fetch","total":4}"#,
        );
        assert!(view.apply(1, &started).unwrap());
        assert_eq!(view.title(), "Updating the system");
        assert_eq!(view.headline(), "Downloading");
        assert_eq!(view.detail(), "10 % · 1.5 MB of 3.0 MB · about 12 s left");
        assert!(view.can_cancel());
    }

    #[test]
    fn replayed_events_are_applied_once_and_percentage_never_goes_down() {
        let mut view = TransactionView::new("/t/1", "Sync");
        let first = event(
            1,
            40,
            r#"{"event":"progress","phase":"blit","done":2,"total":5}"#,
        );
        let second = event(
            2,
            30,
            r#"{"event":"progress","phase":"blit","done":3,"total":5}"#,
        );
        assert!(view.apply(1, &first).unwrap());
        assert!(view.apply(2, &second).unwrap());
        // The same events again, as a replay after the live signals.
        assert!(!view.apply(1, &first).unwrap());
        assert!(!view.apply(2, &second).unwrap());
        assert_eq!(view.last_sequence, 2);
        assert_eq!(view.percentage, 40);
        assert_eq!(view.items, (3, 5));
        assert_eq!(view.headline(), "Building the new system tree");
    }

    #[test]
    fn between_phases_the_headline_says_what_finished() {
        let mut view = TransactionView::new("/t/1", "Install");
        let started = event(
            1,
            5,
            r#"{"event":"phase-started","phase":"resolve","total":0}"#,
        );
        let finished = event(2, 10, r#"{"event":"phase-finished","phase":"resolve"}"#);
        let download = event(
            3,
            20,
            r#"{"event":"download-started","item":"nano","bytes":9}"#,
        );
        view.apply(1, &started).unwrap();
        assert_eq!(view.headline(), "Resolving packages");
        view.apply(2, &finished).unwrap();
        assert_eq!(view.headline(), "Packages resolved");
        view.apply(3, &download).unwrap();
        assert_eq!(view.headline(), "Downloading");
    }

    #[test]
    fn cancel_is_offered_until_the_swap() {
        let mut view = TransactionView::new("/t/1", "Sync");
        let swapped = event(1, 90, r#"{"event":"phase-finished","phase":"swap"}"#);
        view.apply(1, &swapped).unwrap();
        assert!(!view.can_cancel());
    }

    #[test]
    fn outcomes_are_told_apart() {
        let mut view = TransactionView::new("/t/1", "Sync");
        view.finish("succeeded", "state 3", "{}");
        assert_eq!(view.headline(), "Done: state 3");
        assert_eq!(view.fraction(), 1.0);
        assert!(!view.can_cancel());

        let mut cancelled = TransactionView::new("/t/2", "Sync");
        cancelled.finish("cancelled", "", "");
        assert_eq!(cancelled.headline(), "Cancelled — nothing was changed");

        let mut failed = TransactionView::new("/t/3", "Refresh");
        failed.finish(
            "failed",
            "examples: cannot fetch",
            r#"{"kind":"repository"}"#,
        );
        assert_eq!(failed.headline(), "A repository could not be used");
        assert_eq!(failed.detail(), "examples: cannot fetch");
    }

    #[test]
    fn unknown_event_versions_are_an_error_not_a_crash() {
        let mut view = TransactionView::new("/t/1", "Sync");
        let future = event(
            1,
            10,
            r#"{"event":"phase-started","phase":"fetch","total":1}"#,
        )
        .replace(r#""version":1"#, r#""version":9"#);
        assert!(view.apply(1, &future).is_err());
        assert_eq!(view.last_sequence, 0);
    }

    #[test]
    fn a_queued_transaction_says_it_waits() {
        let mut view = TransactionView::new("/t/1", "Install");
        view.set_status("queued");
        assert_eq!(view.headline(), "Waiting for another change to finish");
    }
}
