//! States: the timeline, the selected state's diff against the active one, rollback (with a
//! confirmation), remove and prune.

use std::{cell::Cell, rc::Rc};

use adw::prelude::*;
use gettextrs::gettext;

use crate::{
    bus,
    view::{
        fill,
        states::{self, DiffView, StateRow},
    },
};

use super::{accessible, shell::Shell, widgets};

#[derive(Clone)]
struct Page {
    shell: Rc<Shell>,
    list: gtk::ListBox,
    timeline: adw::PreferencesGroup,
    diff_group: adw::PreferencesGroup,
    diff_list: gtk::ListBox,
    rollback: gtk::Button,
    remove: gtk::Button,
    selected: Rc<Cell<Option<u64>>>,
    active: Rc<Cell<Option<u64>>>,
}

/// Build the page.
pub fn build(shell: &Rc<Shell>) -> gtk::Widget {
    let column = widgets::column();
    let timeline = adw::PreferencesGroup::builder()
        .title(gettext("States"))
        .description(gettext(
            "Every change makes a new numbered state; any kept state can be made active again.",
        ))
        .build();
    let prune = widgets::button(&gettext("_Prune…"), &["flat"]);
    timeline.set_header_suffix(Some(&prune));
    let list = widgets::boxed_list(&gettext("States"));
    timeline.add(&list);
    column.append(&timeline);

    let diff_group = adw::PreferencesGroup::builder().visible(false).build();
    let rollback = widgets::button(&gettext("_Roll Back to This State"), &["suggested-action"]);
    let remove = widgets::button(&gettext("Re_move"), &["destructive-action"]);
    let actions = gtk::Box::new(gtk::Orientation::Horizontal, 6);
    actions.append(&remove);
    actions.append(&rollback);
    diff_group.set_header_suffix(Some(&actions));
    let diff_list = widgets::boxed_list(&gettext("Changes against the active state"));
    diff_group.add(&diff_list);
    column.append(&diff_group);

    let page = Page {
        shell: shell.clone(),
        list,
        timeline,
        diff_group,
        diff_list,
        rollback,
        remove,
        selected: Rc::new(Cell::new(None)),
        active: Rc::new(Cell::new(None)),
    };
    let for_rollback = page.clone();
    page.rollback
        .connect_clicked(move |_| for_rollback.confirm_rollback());
    let for_remove = page.clone();
    page.remove
        .connect_clicked(move |_| for_remove.confirm_remove());
    let for_prune = page.clone();
    prune.connect_clicked(move |_| for_prune.confirm_prune());
    let for_reload = page.clone();
    shell.on_reload(move || for_reload.reload());
    widgets::page(&column).upcast()
}

impl Page {
    fn reload(&self) {
        let page = self.clone();
        gtk::glib::spawn_future_local(async move {
            let boot = bus::query(|manager| async move { manager.boot_entries().await }).await;
            // Rows claim nothing about boot entries where they cannot be managed (no ESP, an
            // older daemon): `None` rather than "no entry".
            let boot_states: Option<std::collections::BTreeSet<u64>> = match boot {
                Ok((entries, reason)) if reason.is_empty() => {
                    Some(entries.iter().map(|entry| entry.state).collect())
                }
                _ => None,
            };
            match bus::query(|manager| async move { manager.list_states().await }).await {
                Ok(list) => {
                    page.active.set(states::active_state(&list));
                    page.show_timeline(&states::timeline(&list, boot_states.as_ref()));
                    match page.selected.get() {
                        Some(id) if list.iter().any(|state| state.id == id) => page.select(id),
                        _ => {
                            page.selected.set(None);
                            page.diff_group.set_visible(false);
                        }
                    }
                }
                Err(error) => page.timeline.set_description(Some(&format!(
                    "{}: {}",
                    error.title(),
                    error.detail()
                ))),
            }
        });
    }

    fn show_timeline(&self, rows: &[StateRow]) {
        widgets::clear(&self.list);
        for row in rows {
            let widget = adw::ActionRow::builder()
                .title(&row.title)
                .subtitle(&row.subtitle)
                .activatable(true)
                .build();
            if row.active {
                let tag = gtk::Label::builder()
                    .label(gettext("Active"))
                    .css_classes(["accent", "caption-heading"])
                    .valign(gtk::Align::Center)
                    .build();
                widget.add_suffix(&tag);
            }
            if row.boot_entry == Some(true) {
                let boot = gtk::Image::from_icon_name("system-reboot-symbolic");
                boot.set_tooltip_text(Some(&gettext("Has a boot entry")));
                accessible::name(&boot, &gettext("Has a boot entry"));
                widget.add_suffix(&boot);
            }
            let compare = widgets::icon_button(
                "go-next-symbolic",
                &fill("Show state {}", &[&row.id.to_string()]),
            );
            widget.add_suffix(&compare);
            let name = if row.active {
                fill("{}, active", &[&row.title])
            } else {
                row.title.clone()
            };
            accessible::name(&widget, &name);
            let id = row.id;
            let page = self.clone();
            widget.connect_activated(move |_| page.select(id));
            let page = self.clone();
            compare.connect_clicked(move |_| page.select(id));
            self.list.append(&widget);
        }
    }

    /// Show what activating state `id` would change.
    fn select(&self, id: u64) {
        self.selected.set(Some(id));
        let active = self.active.get();
        let changeable = states::can_change(id, active);
        self.rollback.set_visible(changeable);
        self.remove.set_visible(changeable);
        self.diff_group
            .set_title(&fill("State {}", &[&id.to_string()]));
        self.diff_group.set_visible(true);
        let page = self.clone();
        gtk::glib::spawn_future_local(async move {
            let Some(active) = active else {
                return;
            };
            let diff =
                bus::query(move |manager| async move { manager.state_diff(active, id).await })
                    .await;
            widgets::clear(&page.diff_list);
            match diff {
                Ok(diff) => {
                    let view = DiffView::new(&diff);
                    page.diff_group.set_description(Some(&if changeable {
                        fill(
                            "Compared with the active state {}: {}",
                            &[&active.to_string(), &view.summary()],
                        )
                    } else {
                        gettext("This is the active state.")
                    }));
                    for (title, lines) in view.sections() {
                        let expander = adw::ExpanderRow::builder()
                            .title(&title)
                            .subtitle(lines.len().to_string())
                            .expanded(true)
                            .build();
                        for line in lines {
                            expander.add_row(&widgets::text_row(line, ""));
                        }
                        page.diff_list.append(&expander);
                    }
                    page.diff_list.set_visible(!view.is_empty());
                }
                Err(error) => page.diff_group.set_description(Some(&format!(
                    "{}: {}",
                    error.title(),
                    error.detail()
                ))),
            }
        });
    }

    fn confirm(
        &self,
        heading: &str,
        body: &str,
        response: &str,
        appearance: adw::ResponseAppearance,
        extra: Option<&gtk::Widget>,
        then: impl Fn() + 'static,
    ) {
        let dialog = adw::MessageDialog::new(Some(&self.shell.window), Some(heading), Some(body));
        dialog.add_response("cancel", &gettext("_Cancel"));
        dialog.add_response("confirm", response);
        dialog.set_response_appearance("confirm", appearance);
        dialog.set_default_response(Some("cancel"));
        dialog.set_close_response("cancel");
        if let Some(extra) = extra {
            dialog.set_extra_child(Some(extra));
        }
        dialog.connect_response(None, move |_, answer| {
            if answer == "confirm" {
                then();
            }
        });
        dialog.present();
    }

    fn confirm_rollback(&self) {
        let Some(id) = self.selected.get() else {
            return;
        };
        let shell = self.shell.clone();
        self.confirm(
            &fill("Roll back to state {}?", &[&id.to_string()]),
            &gettext(
                "The system switches to the packages of that state at once. The current state is \
                 kept, so you can return to it.",
            ),
            &gettext("_Roll Back"),
            adw::ResponseAppearance::Suggested,
            None,
            move || {
                shell.change(
                    &gettext("Rolling back"),
                    "StateActivate",
                    (id, bus::no_options()),
                );
            },
        );
    }

    fn confirm_remove(&self) {
        let Some(id) = self.selected.get() else {
            return;
        };
        let shell = self.shell.clone();
        self.confirm(
            &fill("Remove state {}?", &[&id.to_string()]),
            &gettext("Its tree is deleted and it can no longer be rolled back to."),
            &gettext("_Remove"),
            adw::ResponseAppearance::Destructive,
            None,
            move || {
                shell.change(
                    &gettext("Removing states"),
                    "StateRemove",
                    (vec![id], bus::no_options()),
                );
            },
        );
    }

    fn confirm_prune(&self) {
        let keep = gtk::SpinButton::with_range(1.0, 100.0, 1.0);
        keep.set_value(10.0);
        accessible::name(&keep, &gettext("Number of states to keep"));
        let shell = self.shell.clone();
        let value = keep.clone();
        self.confirm(
            &gettext("Prune old states?"),
            &gettext("Keep only the newest states; older ones are removed."),
            &gettext("_Prune"),
            adw::ResponseAppearance::Destructive,
            Some(keep.upcast_ref()),
            move || {
                let count = value.value_as_int().max(1) as u64;
                shell.change(
                    &gettext("Removing states"),
                    "StatePrune",
                    (count, bus::no_options()),
                );
            },
        );
    }
}
