//! The state timeline and a state's diff against the active one.

use std::{cmp::Ordering, collections::BTreeSet};

use gettextrs::gettext;
use moss_proto::wire::{Diff, State};

use crate::view::{fill, format};

/// One row of the timeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateRow {
    /// State id.
    pub id: u64,
    /// "State 3".
    pub title: String,
    /// Date, what made it, package count.
    pub subtitle: String,
    /// Whether it is the active state.
    pub active: bool,
    /// Whether it has a boot entry (`None` when the daemon cannot tell).
    pub boot_entry: Option<bool>,
}

/// The timeline, newest first, whatever order the daemon sent. `boot_entries` is `None` when
/// the daemon does not report boot entries.
pub fn timeline(states: &[State], boot_entries: Option<&BTreeSet<u64>>) -> Vec<StateRow> {
    let mut states: Vec<&State> = states.iter().collect();
    states.sort_by_key(|state| std::cmp::Reverse(state.id));
    states
        .into_iter()
        .map(|state| {
            let mut subtitle = vec![format::date(state.created)];
            if !state.summary.is_empty() {
                subtitle.push(state.summary.clone());
            }
            subtitle.push(packages(state.packages));
            StateRow {
                id: state.id,
                title: fill("State {}", &[&state.id.to_string()]),
                subtitle: subtitle.join(" · "),
                active: state.active,
                boot_entry: boot_entries.map(|entries| entries.contains(&state.id)),
            }
        })
        .collect()
}

fn packages(count: u64) -> String {
    if count == 1 {
        gettext("1 package")
    } else {
        fill("{} packages", &[&count.to_string()])
    }
}

/// The active state's id in a listing.
pub fn active_state(states: &[State]) -> Option<u64> {
    states
        .iter()
        .find(|state| state.active)
        .map(|state| state.id)
}

/// What activating a state would change, from the diff `StateDiff(active, selected)`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DiffView {
    /// Packages it would add: `name version-release`.
    pub added: Vec<String>,
    /// Packages it would remove.
    pub removed: Vec<String>,
    /// `name old → new`, where new is newer.
    pub upgraded: Vec<String>,
    /// `name old → new`, where new is older.
    pub downgraded: Vec<String>,
}

impl DiffView {
    /// Sort a diff into sections; `changed` is `(name, version in the active state, version
    /// in the selected state)`.
    pub fn new(diff: &Diff) -> Self {
        let mut view = Self {
            added: diff.added.clone(),
            removed: diff.removed.clone(),
            ..Self::default()
        };
        for (name, old, new) in &diff.changed {
            let line = format!("{name} {old} → {new}");
            if compare_versions(new, old) == Ordering::Less {
                view.downgraded.push(line);
            } else {
                view.upgraded.push(line);
            }
        }
        for section in [
            &mut view.added,
            &mut view.removed,
            &mut view.upgraded,
            &mut view.downgraded,
        ] {
            section.sort();
        }
        view
    }

    /// Whether the two states hold the same packages.
    pub fn is_empty(&self) -> bool {
        self.added.is_empty()
            && self.removed.is_empty()
            && self.upgraded.is_empty()
            && self.downgraded.is_empty()
    }

    /// Titled sections with at least one line, for the window.
    pub fn sections(&self) -> Vec<(String, &[String])> {
        [
            (gettext("Added"), &self.added),
            (gettext("Removed"), &self.removed),
            (gettext("Upgraded"), &self.upgraded),
            (gettext("Downgraded"), &self.downgraded),
        ]
        .into_iter()
        .filter(|(_, lines)| !lines.is_empty())
        .map(|(title, lines)| (title, lines.as_slice()))
        .collect()
    }

    /// One sentence for the whole diff.
    pub fn summary(&self) -> String {
        if self.is_empty() {
            return gettext("Same packages as the active state");
        }
        let parts = [
            (self.added.len(), "{} added"),
            (self.removed.len(), "{} removed"),
            (self.upgraded.len(), "{} upgraded"),
            (self.downgraded.len(), "{} downgraded"),
        ];
        parts
            .iter()
            .filter(|(count, _)| *count > 0)
            .map(|(count, message)| fill(message, &[&count.to_string()]))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Compare `version-release` strings the way people read them: runs of digits by value,
/// everything else by text. Exact ordering rules belong to the engine; this only decides which
/// heading a change goes under.
pub fn compare_versions(left: &str, right: &str) -> Ordering {
    let (mut left, mut right) = (left.as_bytes(), right.as_bytes());
    loop {
        match (left.first(), right.first()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(a), Some(b)) if a.is_ascii_digit() && b.is_ascii_digit() => {
                let left_digits = left.iter().take_while(|c| c.is_ascii_digit()).count();
                let right_digits = right.iter().take_while(|c| c.is_ascii_digit()).count();
                let trim = |digits: &[u8]| {
                    let start = digits.iter().take_while(|c| **c == b'0').count();
                    digits[start..].to_vec()
                };
                let (a, b) = (trim(&left[..left_digits]), trim(&right[..right_digits]));
                let order = a.len().cmp(&b.len()).then_with(|| a.cmp(&b));
                if order != Ordering::Equal {
                    return order;
                }
                left = &left[left_digits..];
                right = &right[right_digits..];
            }
            (Some(a), Some(b)) => {
                if a != b {
                    return a.cmp(b);
                }
                left = &left[1..];
                right = &right[1..];
            }
        }
    }
}

/// Whether a state may be rolled back to (activated) or removed from the window: neither for
/// the active state.
pub fn can_change(selected: u64, active: Option<u64>) -> bool {
    Some(selected) != active
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(id: u64, active: bool, packages: u64) -> State {
        State {
            id,
            created: 1_796_609_602 + id as i64 * 60,
            summary: if id == 1 {
                "Install".into()
            } else {
                String::new()
            },
            description: String::new(),
            packages,
            active,
        }
    }

    #[test]
    fn the_timeline_is_newest_first_and_marks_active_and_boot_entries() {
        let states = [state(1, false, 1), state(3, true, 12), state(2, false, 2)];
        let boot: BTreeSet<u64> = [3].into();
        let rows = timeline(&states, Some(&boot));
        assert_eq!(rows.iter().map(|row| row.id).collect::<Vec<_>>(), [3, 2, 1]);
        assert_eq!(rows[0].title, "State 3");
        assert_eq!(rows[0].subtitle, "2026-12-07 02:16 UTC · 12 packages");
        assert!(rows[0].active && rows[0].boot_entry == Some(true));
        assert_eq!(
            rows[2].subtitle,
            "2026-12-07 02:14 UTC · Install · 1 package"
        );
        assert_eq!(rows[2].boot_entry, Some(false));
        assert_eq!(timeline(&states, None)[0].boot_entry, None);
        assert_eq!(active_state(&states), Some(3));
        assert!(!can_change(3, Some(3)) && can_change(1, Some(3)));
    }

    #[test]
    fn a_diff_is_sorted_into_added_removed_upgraded_and_downgraded() {
        let diff = Diff {
            added: vec!["pineapple 1-1".into()],
            removed: vec!["tool 1-2".into(), "italian-pizza 1-1".into()],
            changed: vec![
                ("nano".into(), "8.0-1".into(), "8.2-3".into()),
                ("tool".into(), "1-10".into(), "1-9".into()),
            ],
        };
        let view = DiffView::new(&diff);
        assert_eq!(view.added, ["pineapple 1-1"]);
        assert_eq!(view.removed, ["italian-pizza 1-1", "tool 1-2"]);
        assert_eq!(view.upgraded, ["nano 8.0-1 → 8.2-3"]);
        assert_eq!(view.downgraded, ["tool 1-10 → 1-9"]);
        assert_eq!(
            view.summary(),
            "1 added, 2 removed, 1 upgraded, 1 downgraded"
        );
        let titles: Vec<String> = view
            .sections()
            .into_iter()
            .map(|(title, _)| title)
            .collect();
        assert_eq!(titles, ["Added", "Removed", "Upgraded", "Downgraded"]);
    }

    #[test]
    fn identical_states_say_so() {
        let view = DiffView::new(&Diff::default());
        assert!(view.is_empty() && view.sections().is_empty());
        assert_eq!(view.summary(), "Same packages as the active state");
    }

    #[test]
    fn versions_compare_numerically() {
        assert_eq!(compare_versions("1-10", "1-9"), Ordering::Greater);
        assert_eq!(compare_versions("2.11-1", "2.9-1"), Ordering::Greater);
        assert_eq!(compare_versions("1.0-01", "1.0-1"), Ordering::Equal);
        assert_eq!(compare_versions("1.0", "1.0-1"), Ordering::Less);
    }
}
