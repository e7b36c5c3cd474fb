//! Repositories: the list (signed or unsigned), enable and disable, remove, and add (URI and
//! key).

use std::rc::Rc;

use adw::prelude::*;
use gettextrs::gettext;

use crate::{
    bus,
    view::{fill, repositories},
};

use super::{accessible, shell::Shell, widgets};

/// Build the page.
pub fn build(shell: &Rc<Shell>) -> gtk::Widget {
    let column = widgets::column();
    let group = adw::PreferencesGroup::builder()
        .title(gettext("Repositories"))
        .description(gettext("Where packages come from. Higher priority wins."))
        .build();
    let list = widgets::boxed_list(&gettext("Repositories"));
    group.add(&list);
    column.append(&group);

    let add_group = adw::PreferencesGroup::builder()
        .title(gettext("Add a Repository"))
        .build();
    let name = adw::EntryRow::builder().title(gettext("Name")).build();
    let uri = adw::EntryRow::builder()
        .title(gettext("Index address (https://…/stone.index)"))
        .build();
    let key = adw::EntryRow::builder()
        .title(gettext("Public key (minisign)"))
        .build();
    let unsigned = adw::ActionRow::builder()
        .title(gettext("Allow without a signature"))
        .subtitle(gettext("Only for repositories you control"))
        .build();
    let unsigned_switch = gtk::Switch::builder().valign(gtk::Align::Center).build();
    accessible::name(&unsigned_switch, &gettext("Allow without a signature"));
    unsigned.add_suffix(&unsigned_switch);
    unsigned.set_activatable_widget(Some(&unsigned_switch));
    for row in [
        name.upcast_ref::<gtk::Widget>(),
        uri.upcast_ref(),
        key.upcast_ref(),
        unsigned.upcast_ref(),
    ] {
        add_group.add(row);
    }
    let add = widgets::button(&gettext("_Add Repository"), &["suggested-action"]);
    add.set_halign(gtk::Align::End);
    add.set_margin_top(12);
    add_group.add(&add);
    column.append(&add_group);

    let shell_for_add = shell.clone();
    add.connect_clicked(move |_| {
        let (name_text, uri_text, key_text) = (name.text(), uri.text(), key.text());
        if let Err(message) = repositories::check_new(
            &name_text,
            &uri_text,
            &key_text,
            unsigned_switch.is_active(),
        ) {
            shell_for_add.toast(&message);
            return;
        }
        let keys: Vec<String> = key_text.split_whitespace().map(str::to_owned).collect();
        shell_for_add.change(
            &gettext("Adding a repository"),
            "RepoAdd",
            (
                name_text.to_string(),
                uri_text.to_string(),
                0u64,
                String::new(),
                keys,
                bus::no_options(),
            ),
        );
    });

    let shell_for_reload = shell.clone();
    shell.on_reload(move || {
        let (list, group, shell) = (list.clone(), group.clone(), shell_for_reload.clone());
        gtk::glib::spawn_future_local(async move {
            match bus::query(|manager| async move { manager.list_repositories().await }).await {
                Ok(repositories) => {
                    widgets::clear(&list);
                    for repository in repositories {
                        list.append(&row(&shell, &repository));
                    }
                }
                Err(error) => group.set_description(Some(&error.detail())),
            }
        });
    });
    widgets::page(&column).upcast()
}

fn row(shell: &Rc<Shell>, repository: &moss_proto::wire::Repository) -> adw::ActionRow {
    let row = adw::ActionRow::builder()
        .title(&repository.id)
        .subtitle(repositories::subtitle(repository))
        .build();
    let icon = if repository.signed {
        "security-high-symbolic"
    } else {
        "security-low-symbolic"
    };
    let trust = gtk::Image::from_icon_name(icon);
    accessible::name(
        &trust,
        &if repository.signed {
            gettext("Signed")
        } else {
            gettext("Unsigned")
        },
    );
    row.add_prefix(&trust);
    let enabled = gtk::Switch::builder()
        .active(repository.active)
        .valign(gtk::Align::Center)
        .build();
    accessible::name(&enabled, &fill("Enable {}", &[&repository.id]));
    let remove = widgets::icon_button("user-trash-symbolic", &fill("Remove {}", &[&repository.id]));
    row.add_suffix(&enabled);
    row.add_suffix(&remove);
    let id = repository.id.clone();
    let shell_for_switch = shell.clone();
    enabled.connect_state_set(move |_, state| {
        shell_for_switch.change(
            &if state {
                gettext("Enabling a repository")
            } else {
                gettext("Disabling a repository")
            },
            "RepoEnable",
            (id.clone(), state, bus::no_options()),
        );
        // The switch follows the daemon: the page reloads when the change ends.
        gtk::glib::Propagation::Proceed
    });
    let id = repository.id.clone();
    let shell_for_remove = shell.clone();
    remove.connect_clicked(move |_| {
        let dialog = adw::MessageDialog::new(
            Some(&shell_for_remove.window),
            Some(&fill("Remove {}?", &[&id])),
            Some(&gettext(
                "Its packages are no longer offered. Installed packages stay.",
            )),
        );
        dialog.add_response("cancel", &gettext("_Cancel"));
        dialog.add_response("remove", &gettext("_Remove"));
        dialog.set_response_appearance("remove", adw::ResponseAppearance::Destructive);
        dialog.set_close_response("cancel");
        let shell = shell_for_remove.clone();
        let id = id.clone();
        dialog.connect_response(Some("remove"), move |_, _| {
            shell.change(
                &gettext("Removing a repository"),
                "RepoRemove",
                (id.clone(), bus::no_options()),
            );
        });
        dialog.present();
    });
    row
}
