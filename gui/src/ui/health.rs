//! Health: verify the store and every kept tree against the recorded hashes, and repair.

use std::rc::Rc;

use adw::prelude::*;
use gettextrs::gettext;

use crate::{bus, view::health};

use super::{shell::Shell, widgets};

/// Build the page.
pub fn build(shell: &Rc<Shell>) -> gtk::Widget {
    let column = widgets::column();
    let verify = widgets::button(&gettext("_Verify"), &["pill", "suggested-action"]);
    let repair = widgets::button(&gettext("_Repair"), &["pill", "destructive-action"]);
    repair.set_visible(false);
    let hero = widgets::Hero::new(
        "emblem-ok-symbolic",
        &gettext("System Health"),
        &gettext("Check every installed file against the hash recorded when it entered the store."),
        &[&verify, &repair],
    );
    column.append(&hero.widget);
    let (status, icon) = (hero.description, hero.icon);
    let group = adw::PreferencesGroup::builder()
        .title(gettext("Problems"))
        .visible(false)
        .build();
    let list = widgets::boxed_list(&gettext("Problems"));
    group.add(&list);
    column.append(&group);

    let (status_for_verify, repair_for_verify) = (status.clone(), repair.clone());
    let icon_for_verify = icon.clone();
    verify.connect_clicked(move |button| {
        button.set_sensitive(false);
        status_for_verify.set_text(&gettext("Verifying…"));
        let icon = icon_for_verify.clone();
        let (button, status, repair, group, list) = (
            button.clone(),
            status_for_verify.clone(),
            repair_for_verify.clone(),
            group.clone(),
            list.clone(),
        );
        gtk::glib::spawn_future_local(async move {
            let result = bus::query(|manager| async move { manager.verify().await }).await;
            button.set_sensitive(true);
            widgets::clear(&list);
            match result {
                Ok(problems) => {
                    status.set_text(&health::summary(&problems));
                    icon.set_icon_name(Some(if problems.is_empty() {
                        "emblem-ok-symbolic"
                    } else {
                        "dialog-warning-symbolic"
                    }));
                    repair.set_visible(!problems.is_empty());
                    group.set_visible(!problems.is_empty());
                    for problem in &problems {
                        let (title, subtitle) = health::problem_row(problem);
                        list.append(&widgets::text_row(&title, &subtitle));
                    }
                }
                Err(error) => status.set_text(&format!("{}: {}", error.title(), error.detail())),
            }
        });
    });
    let shell_for_repair = shell.clone();
    repair.connect_clicked(move |_| {
        shell_for_repair.change(&gettext("Repairing"), "Repair", (bus::no_options(),));
    });
    widgets::page(&column).upcast()
}
