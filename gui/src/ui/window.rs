//! The main window: a header bar with the view switcher, the activity panel, and the pages.

use std::rc::Rc;

use adw::prelude::*;
use gettextrs::gettext;

use crate::bus::{self, Watch};

use super::{
    activity::Activity, health, overview, packages, repositories, settings, shell::Shell, states,
};

/// Build the window with every page, and start watching the daemon.
pub fn build(application: &adw::Application) -> adw::ApplicationWindow {
    let window = adw::ApplicationWindow::builder()
        .application(application)
        .title(gettext("System Software"))
        .default_width(980)
        .default_height(720)
        .icon_name(crate::APP_ID)
        .build();
    let stack = adw::ViewStack::new();
    let toasts = adw::ToastOverlay::new();
    toasts.set_child(Some(&stack));
    toasts.set_vexpand(true);
    let activity = Activity::new(&toasts);
    let shell = Shell::new(window.clone(), toasts.clone(), activity.clone());

    let pages: [(&str, String, &str, gtk::Widget); 6] = [
        (
            "overview",
            gettext("Overview"),
            "emblem-synchronizing-symbolic",
            overview::build(&shell),
        ),
        (
            "states",
            gettext("States"),
            "document-open-recent-symbolic",
            states::build(&shell),
        ),
        (
            "packages",
            gettext("Packages"),
            "package-x-generic-symbolic",
            packages::build(&shell),
        ),
        (
            "repositories",
            gettext("Repositories"),
            "network-server-symbolic",
            repositories::build(&shell),
        ),
        (
            "health",
            gettext("Health"),
            "emblem-ok-symbolic",
            health::build(&shell),
        ),
        (
            "settings",
            gettext("Settings"),
            "emblem-system-symbolic",
            settings::build(&shell),
        ),
    ];
    for (name, title, icon, child) in &pages {
        let page = stack.add_titled(child, Some(name), title);
        page.set_icon_name(Some(icon));
    }

    let title = adw::ViewSwitcherTitle::builder()
        .stack(&stack)
        .title(gettext("System Software"))
        .build();
    let header = adw::HeaderBar::builder().title_widget(&title).build();
    let refresh = super::widgets::icon_button("view-refresh-symbolic", &gettext("Reload"));
    refresh.set_action_name(Some("win.reload"));
    header.pack_end(&refresh);
    let bar = adw::ViewSwitcherBar::builder().stack(&stack).build();
    title
        .bind_property("title-visible", &bar, "reveal")
        .sync_create()
        .build();

    let content = gtk::Box::new(gtk::Orientation::Vertical, 0);
    content.append(&header);
    content.append(&activity.widget);
    content.append(&toasts);
    content.append(&bar);
    window.set_content(Some(&content));

    add_shortcuts(&window, &stack, &shell);
    watch(&shell);
    shell.reload();
    window
}

/// Alt+1 … Alt+6 switch pages; F5 and Ctrl+R reload.
fn add_shortcuts(window: &adw::ApplicationWindow, stack: &adw::ViewStack, shell: &Rc<Shell>) {
    let reload = gtk::gio::SimpleAction::new("reload", None);
    let shell_for_reload = shell.clone();
    reload.connect_activate(move |_, _| shell_for_reload.reload());
    window.add_action(&reload);
    let controller = gtk::ShortcutController::new();
    controller.set_scope(gtk::ShortcutScope::Global);
    for (index, name) in [
        "overview",
        "states",
        "packages",
        "repositories",
        "health",
        "settings",
    ]
    .into_iter()
    .enumerate()
    {
        let stack = stack.clone();
        let trigger = gtk::ShortcutTrigger::parse_string(&format!("<Alt>{}", index + 1));
        let action = gtk::CallbackAction::new(move |_, _| {
            stack.set_visible_child_name(name);
            gtk::glib::Propagation::Stop
        });
        controller.add_shortcut(gtk::Shortcut::new(trigger, Some(action)));
    }
    for accelerator in ["F5", "<Control>r"] {
        controller.add_shortcut(gtk::Shortcut::new(
            gtk::ShortcutTrigger::parse_string(accelerator),
            Some(gtk::NamedAction::new("win.reload")),
        ));
    }
    window.add_controller(controller);
}

/// Follow every transaction the daemon runs, and reload when it comes back after an idle exit
/// or a restart.
fn watch(shell: &Rc<Shell>) {
    let receiver = bus::watch();
    let shell = shell.clone();
    gtk::glib::spawn_future_local(async move {
        while let Ok(watch) = receiver.recv().await {
            match watch {
                Watch::Transaction(path) => shell.follow(path, false),
                Watch::DaemonReturned => shell.reload(),
                Watch::DaemonGone => shell.forget_transactions(),
            }
        }
    });
}
