//! Overview: active state, pending updates, last check, update policy; Check for Updates and
//! Update.

use std::rc::Rc;

use adw::prelude::*;
use gettextrs::gettext;
use moss_proto::wire::{HistoryEntry, PlanWire};

use crate::{
    bus,
    view::{errors::UserError, overview},
};

use super::{shell::Shell, widgets};

/// What the overview reads in one go.
struct Snapshot {
    active: u64,
    policy: String,
    history: Vec<HistoryEntry>,
    plan: Result<PlanWire, UserError>,
}

/// Build the page.
pub fn build(shell: &Rc<Shell>) -> gtk::Widget {
    let column = widgets::column();

    let check = widgets::button(&gettext("Check for _Updates"), &["pill"]);
    let update = widgets::button(&gettext("_Update"), &["pill", "suggested-action"]);
    let hero = widgets::Hero::new(
        crate::APP_ID,
        &gettext("System Software"),
        &gettext("Loading…"),
        &[&check, &update],
    );
    column.append(&hero.widget);
    let status = hero.description;

    let system = adw::PreferencesGroup::builder()
        .title(gettext("System"))
        .build();
    let (active_row, active) = widgets::value_row(&gettext("Active state"));
    let (pending_row, pending) = widgets::value_row(&gettext("Updates"));
    let (check_row, last_check) = widgets::value_row(&gettext("Last check"));
    let (policy_row, policy) = widgets::value_row(&gettext("Background updates"));
    for row in [&active_row, &pending_row, &check_row, &policy_row] {
        system.add(row);
    }
    column.append(&system);

    let updates_group = adw::PreferencesGroup::builder()
        .title(gettext("Available Updates"))
        .visible(false)
        .build();
    let updates = widgets::boxed_list(&gettext("Available updates"));
    updates_group.add(&updates);
    column.append(&updates_group);

    let shell_for_check = shell.clone();
    check.connect_clicked(move |_| {
        shell_for_check.change(
            &gettext("Checking for updates"),
            "Refresh",
            (String::new(), bus::no_options()),
        );
    });
    let shell_for_update = shell.clone();
    update.connect_clicked(move |_| {
        // Refresh first (`update` true), so that Update works without a check before it.
        shell_for_update.change(
            &gettext("Updating the system"),
            "Sync",
            (true, false, bus::no_options()),
        );
    });

    shell.on_reload(move || {
        let (status, active, pending, last_check, policy) = (
            status.clone(),
            active.clone(),
            pending.clone(),
            last_check.clone(),
            policy.clone(),
        );
        let (updates, updates_group) = (updates.clone(), updates_group.clone());
        gtk::glib::spawn_future_local(async move {
            let snapshot = bus::run(async {
                let manager = bus::query(|manager| async move {
                    let active = manager.active_state().await?;
                    let policy = manager.update_policy().await?;
                    let history = manager.history().await?;
                    Ok((active, policy, history))
                })
                .await?;
                // Planning reads the cached indexes only; the check (Refresh) updates them.
                let plan =
                    bus::query(|manager| async move { manager.plan_sync(false).await }).await;
                Ok(Snapshot {
                    active: manager.0,
                    policy: manager.1,
                    history: manager.2,
                    plan,
                })
            })
            .await;
            match snapshot {
                Ok(snapshot) => {
                    active.set_text(&overview::active_state_label(snapshot.active));
                    last_check.set_text(&overview::last_check_label(&snapshot.history));
                    policy.set_text(&overview::policy_label(&snapshot.policy));
                    widgets::clear(&updates);
                    match &snapshot.plan {
                        Ok(plan) => {
                            let label = overview::pending_label(Some(plan));
                            pending.set_text(&label);
                            status.set_text(&label);
                            let lines = overview::pending_updates(plan);
                            updates_group.set_visible(!lines.is_empty());
                            for line in lines {
                                updates.append(&widgets::text_row(&line, ""));
                            }
                        }
                        Err(error) => {
                            pending.set_text(&error.title());
                            status.set_text(&error.detail());
                            updates_group.set_visible(false);
                        }
                    }
                }
                Err(error) => {
                    status.set_text(&format!("{}: {}", error.title(), error.detail()));
                }
            }
        });
    });
    widgets::page(&column).upcast()
}
