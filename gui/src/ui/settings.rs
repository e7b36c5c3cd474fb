//! Settings: the background update policy.

use std::rc::Rc;

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
            "What the daily update timer does. mossd reads this from /etc/moss/mossd.kdl \
             (update-policy).",
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
    // The daemon has no method to change its policy yet: the row shows it, and says where it
    // is set, rather than offering a change that could not be made.
    policy.set_sensitive(false);
    group.add(&policy);
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
                    policy.set_selected(index as u32);
                }
                version.set_text(&daemon_version);
                root.set_text(&daemon_root);
            }
        });
    });
    widgets::page(&column).upcast()
}
