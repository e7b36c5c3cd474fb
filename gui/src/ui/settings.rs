//! Settings: the background update policy.

use std::{cell::Cell, rc::Rc};

use adw::prelude::*;
use gettextrs::gettext;

use crate::{bus, view::overview};

use super::{shell::Shell, widgets};

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
    let (version_row, version) = widgets::value_row(&gettext("mossd version"));
    let (root_row, root) = widgets::value_row(&gettext("Installation root"));
    let about = adw::PreferencesGroup::builder()
        .title(gettext("Daemon"))
        .build();
    about.add(&version_row);
    about.add(&root_row);
    column.append(&group);
    column.append(&about);
    shell.on_reload(move || {
        let (policy, version, root) = (policy.clone(), version.clone(), root.clone());
        let guard = showing_daemon_value.clone();
        gtk::glib::spawn_future_local(async move {
            let answer = bus::query(|manager| async move {
                Ok((
                    manager.update_policy().await?,
                    manager.version().await?,
                    manager.root().await?,
                ))
            })
            .await;
            if let Ok((current, daemon_version, daemon_root)) = answer {
                if let Some(index) = overview::POLICIES.iter().position(|p| *p == current) {
                    guard.set(true);
                    policy.set_selected(index as u32);
                }
                guard.set(false);
                version.set_text(&daemon_version);
                root.set_text(&daemon_root);
            }
        });
    });
    widgets::page(&column).upcast()
}
