//! The overview: active state, pending updates, last check and update policy.

use gettextrs::gettext;
use moss_proto::wire::{HistoryEntry, PlanWire};

use crate::view::{fill, format};

/// The update policy as the settings and overview name it.
pub fn policy_label(policy: &str) -> String {
    match policy {
        "none" => gettext("Off"),
        "check" => gettext("Check for updates"),
        "download" => gettext("Download updates"),
        "apply" => gettext("Install updates automatically"),
        other => other.to_owned(),
    }
}

/// The policies in the order the settings list them.
pub const POLICIES: [&str; 4] = ["none", "check", "download", "apply"];

/// What `keep-states` means, under the settings row: the count spelled out, or that every state
/// is kept (0).
pub fn keep_states_caption(count: u32) -> String {
    if count == 0 {
        return gettext("Every state is kept");
    }
    let template = gettextrs::ngettext(
        "After each change, older states beyond the newest {} are removed",
        "After each change, older states beyond the newest {} are removed",
        count,
    );
    template.replacen("{}", &count.to_string(), 1)
}

/// When the repositories were last refreshed (by this window, the CLI or the timer), from the
/// daemon's history: the newest successful `Refresh` or `Automatic update`.
pub fn last_check(history: &[HistoryEntry]) -> Option<u64> {
    history
        .iter()
        .filter(|entry| entry.status == "succeeded")
        .filter(|entry| {
            matches!(
                entry.title.as_str(),
                "Refresh" | "Automatic update" | "Sync"
            )
        })
        .map(|entry| entry.finished)
        .max()
}

/// The "Last check" line.
pub fn last_check_label(history: &[HistoryEntry]) -> String {
    match last_check(history) {
        Some(seconds) => format::date(i64::try_from(seconds).unwrap_or(i64::MAX)),
        None => gettext("Never"),
    }
}

/// The pending updates of a sync plan: `name old → new` lines and new packages.
pub fn pending_updates(plan: &PlanWire) -> Vec<String> {
    let mut lines: Vec<String> = plan
        .change
        .iter()
        .map(|(old, new)| format!("{} {} → {}", new.name, old.version, new.version))
        .collect();
    lines.extend(
        plan.add
            .iter()
            .map(|package| fill("{} {} (new)", &[&package.name, &package.version])),
    );
    lines.extend(
        plan.remove
            .iter()
            .map(|package| fill("{} {} (removed)", &[&package.name, &package.version])),
    );
    lines
}

/// The "Updates" line: how many, or that the system is up to date.
pub fn pending_label(plan: Option<&PlanWire>) -> String {
    match plan.map(pending_updates) {
        None => gettext("Not checked yet"),
        Some(lines) if lines.is_empty() => gettext("Up to date"),
        Some(lines) if lines.len() == 1 => gettext("1 update available"),
        Some(lines) => fill("{} updates available", &[&lines.len().to_string()]),
    }
}

/// The "Active state" line.
pub fn active_state_label(active: u64) -> String {
    if active == 0 {
        gettext("None yet")
    } else {
        fill("State {}", &[&active.to_string()])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use moss_proto::wire::PlannedPackage;

    #[test]
    fn keep_states_caption_says_zero_keeps_every_state() {
        assert_eq!(keep_states_caption(0), "Every state is kept");
        assert_eq!(
            keep_states_caption(3),
            "After each change, older states beyond the newest 3 are removed"
        );
    }

    fn entry(title: &str, status: &str, finished: u64) -> HistoryEntry {
        HistoryEntry {
            transaction: 1,
            title: title.into(),
            uid: 0,
            started: finished - 1,
            finished,
            status: status.into(),
            message: String::new(),
            state: 0,
        }
    }

    fn planned(name: &str, version: &str) -> PlannedPackage {
        PlannedPackage {
            id: String::new(),
            name: name.into(),
            version: version.into(),
            origin: "examples".into(),
            release: 1,
            build_release: 1,
        }
    }

    #[test]
    fn the_last_check_is_the_newest_successful_refresh() {
        let history = [
            entry("Refresh", "succeeded", 1_796_609_602),
            entry("Refresh", "failed", 1_796_700_000),
            entry("Install", "succeeded", 1_796_800_000),
        ];
        assert_eq!(last_check(&history), Some(1_796_609_602));
        assert_eq!(last_check_label(&history), "2026-12-07 02:13 UTC");
        assert_eq!(last_check_label(&[]), "Never");
    }

    #[test]
    fn pending_updates_count_changes_and_new_packages() {
        let plan = PlanWire {
            add: vec![planned("libnew", "1-1")],
            remove: Vec::new(),
            change: vec![(planned("tool", "1-1"), planned("tool", "1-2"))],
        };
        assert_eq!(
            pending_updates(&plan),
            ["tool 1-1 → 1-2", "libnew 1-1 (new)"]
        );
        assert_eq!(pending_label(Some(&plan)), "2 updates available");
        assert_eq!(pending_label(Some(&PlanWire::default())), "Up to date");
        assert_eq!(pending_label(None), "Not checked yet");
    }

    #[test]
    fn labels() {
        assert_eq!(policy_label("download"), "Download updates");
        assert_eq!(active_state_label(0), "None yet");
        assert_eq!(active_state_label(4), "State 4");
    }
}
