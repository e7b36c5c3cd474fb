//! Settings: the background update policy and how many states mossd keeps.

use std::{cell::Cell, rc::Rc};

use adw::prelude::*;
use gettextrs::gettext;

use crate::{bus, view::overview};

use super::{accessible, shell::Shell, widgets};

/// The largest `keep-states` the row offers; mossd accepts any count, a person needs no more.
const MOST_STATES_KEPT: f64 = 100.0;

/// Build the page.
pub fn build(shell: &Rc<Shell>) -> gtk::Widget {
    let column = widgets::column();
    let group = adw::PreferencesGroup::builder()
        .title(gettext("Background Updates"))
        .description(gettext(
            "What the daily update timer does. mossd keeps it in /etc/moss/mossd.kdl.",
        ))
        .build();
    let labels: Vec<String> = overview::POLICIES
        .iter()
        .map(|policy| overview::policy_label(policy))
        .collect();
    let model = gtk::StringList::new(&labels.iter().map(String::as_str).collect::<Vec<_>>());
    let policy = adw::ComboRow::builder()
        .title(gettext("Update policy"))
        .model(&model)
        .build();
    accessible::name(&policy, &gettext("Update policy"));
    group.add(&policy);
    // Set while the row shows the daemon's value, so that only a person's choice is sent.
    let showing_daemon_value = Rc::new(Cell::new(true));
    let shell_for_policy = shell.clone();
    let guard = showing_daemon_value.clone();
    policy.connect_selected_notify(move |row| {
        if guard.get() {
            return;
        }
        let Some(chosen) = overview::POLICIES.get(row.selected() as usize).copied() else {
            return;
        };
        let shell = shell_for_policy.clone();
        gtk::glib::spawn_future_local(async move {
            match bus::set_update_policy(chosen).await {
                Ok(()) => shell.toast(&crate::view::fill(
                    "Background updates: {}",
                    &[&overview::policy_label(chosen)],
                )),
                Err(error) => shell.report(&gettext("Changing background updates"), &error),
            }
            // Show what the daemon has now, whether the change was made or refused.
            shell.reload();
        });
    });
    let (states_group, keep_states) = keep_states_group(shell, &showing_daemon_value);
    let (version_row, version) = widgets::value_row(&gettext("mossd version"));
    let (root_row, root) = widgets::value_row(&gettext("Installation root"));
    let about = adw::PreferencesGroup::builder()
        .title(gettext("Daemon"))
        .build();
    about.add(&version_row);
    about.add(&root_row);
    column.append(&group);
    column.append(&states_group);
    column.append(&about);
    shell.on_reload(move || {
        let (policy, version, root) = (policy.clone(), version.clone(), root.clone());
        let keep_states = keep_states.clone();
        let guard = showing_daemon_value.clone();
        gtk::glib::spawn_future_local(async move {
            let answer = bus::query(|manager| async move {
                Ok((
                    manager.update_policy().await?,
                    manager.keep_states().await?,
                    manager.version().await?,
                    manager.root().await?,
                ))
            })
            .await;
            if let Ok((current, kept, daemon_version, daemon_root)) = answer {
                guard.set(true);
                if let Some(index) = overview::POLICIES.iter().position(|p| *p == current) {
                    policy.set_selected(index as u32);
                }
                keep_states.show(kept);
                guard.set(false);
                version.set_text(&daemon_version);
                root.set_text(&daemon_root);
            }
        });
    });
    widgets::page(&column).upcast()
}

/// The keep-states row's controls, for the reload to show the daemon's value.
#[derive(Clone)]
struct KeepStates {
    row: adw::ActionRow,
    count: gtk::SpinButton,
}

impl KeepStates {
    fn show(&self, count: u32) {
        self.count.set_value(f64::from(count));
        self.row.set_subtitle(&overview::keep_states_caption(count));
    }
}

/// "States to keep": a spin button whose changes, made by a person (not by a reload), are sent
/// to mossd with `SetKeepStates`. The Settings page is reloaded either way, so a refused change
/// shows the daemon's value again.
fn keep_states_group(
    shell: &Rc<Shell>,
    showing_daemon_value: &Rc<Cell<bool>>,
) -> (adw::PreferencesGroup, KeepStates) {
    let group = adw::PreferencesGroup::builder()
        .title(gettext("States"))
        .description(gettext(
            "Older states are kept for rolling back. mossd keeps the setting in /etc/moss/mossd.kdl.",
        ))
        .build();
    let count = gtk::SpinButton::with_range(0.0, MOST_STATES_KEPT, 1.0);
    count.set_valign(gtk::Align::Center);
    count.set_numeric(true);
    accessible::name(&count, &gettext("States to keep"));
    let row = adw::ActionRow::builder()
        .title(gettext("States to keep"))
        .subtitle(overview::keep_states_caption(0))
        .activatable_widget(&count)
        .build();
    row.add_suffix(&count);
    group.add(&row);
    let guard = showing_daemon_value.clone();
    let shell = shell.clone();
    count.connect_value_changed(move |spin| {
        if guard.get() {
            return;
        }
        let chosen = spin.value_as_int().max(0).unsigned_abs();
        let shell = shell.clone();
        gtk::glib::spawn_future_local(async move {
            match bus::set_keep_states(chosen).await {
                Ok(()) => shell.toast(&overview::keep_states_caption(chosen)),
                Err(error) => shell.report(&gettext("Changing the states to keep"), &error),
            }
            shell.reload();
        });
    });
    (group, KeepStates { row, count })
}
