//! Packages: search installed and available packages in a list model (only the visible rows
//! have widgets, so thousands of packages scroll smoothly), details, install and remove.

use std::{
    cell::{Cell, RefCell},
    rc::Rc,
};

use adw::prelude::*;
use gettextrs::gettext;
use gtk::{gio, glib};
use moss_proto::wire::Package;

use crate::{
    bus,
    view::{
        fill,
        packages::{self, DetailsView},
    },
};

use super::{accessible, shell::Shell, widgets};

/// The package list: a `GtkListView` over a `GListStore`, filtered in the model.
#[derive(Debug, Clone)]
pub struct PackageList {
    /// The scrolled list, to put in a window.
    pub widget: gtk::ScrolledWindow,
    /// The list view.
    pub view: gtk::ListView,
    /// Every package (unfiltered).
    pub store: gio::ListStore,
    /// The selection over the filtered packages.
    pub selection: gtk::SingleSelection,
    filter: gtk::CustomFilter,
    needle: Rc<RefCell<String>>,
    /// How many row widgets the factory made: stays near the number of visible rows.
    pub rows_created: Rc<Cell<usize>>,
}

impl Default for PackageList {
    fn default() -> Self {
        Self::new()
    }
}

impl PackageList {
    /// An empty list.
    pub fn new() -> Self {
        let store = gio::ListStore::new::<glib::BoxedAnyObject>();
        let needle = Rc::new(RefCell::new(String::new()));
        let needle_in_filter = needle.clone();
        let filter = gtk::CustomFilter::new(move |object| {
            let needle = needle_in_filter.borrow();
            object
                .downcast_ref::<glib::BoxedAnyObject>()
                .is_some_and(|boxed| packages::matches(&boxed.borrow::<Package>(), &needle))
        });
        let filtered = gtk::FilterListModel::new(Some(store.clone()), Some(filter.clone()));
        let selection = gtk::SingleSelection::new(Some(filtered));
        selection.set_autoselect(false);
        let rows_created = Rc::new(Cell::new(0));
        let factory = gtk::SignalListItemFactory::new();
        let counter = rows_created.clone();
        factory.connect_setup(move |_, item| {
            counter.set(counter.get() + 1);
            let name = gtk::Label::builder()
                .xalign(0.0)
                .css_classes(["heading"])
                .ellipsize(gtk::pango::EllipsizeMode::End)
                .build();
            let version = gtk::Label::builder()
                .xalign(1.0)
                .hexpand(true)
                .css_classes(["dim-label", "numeric"])
                .build();
            let summary = gtk::Label::builder()
                .xalign(0.0)
                .css_classes(["dim-label", "caption"])
                .ellipsize(gtk::pango::EllipsizeMode::End)
                .build();
            let top = gtk::Box::new(gtk::Orientation::Horizontal, 12);
            top.append(&name);
            top.append(&version);
            let row = gtk::Box::builder()
                .orientation(gtk::Orientation::Vertical)
                .spacing(2)
                .margin_top(8)
                .margin_bottom(8)
                .margin_start(12)
                .margin_end(12)
                .build();
            row.append(&top);
            row.append(&summary);
            if let Some(item) = item.downcast_ref::<gtk::ListItem>() {
                item.set_child(Some(&row));
            }
        });
        factory.connect_bind(|_, item| {
            let Some(item) = item.downcast_ref::<gtk::ListItem>() else {
                return;
            };
            let (Some(row), Some(object)) = (item.child(), item.item()) else {
                return;
            };
            let Some(boxed) = object.downcast_ref::<glib::BoxedAnyObject>() else {
                return;
            };
            let package = boxed.borrow::<Package>();
            let labels = labels_of(&row);
            if let [name, version, summary] = labels.as_slice() {
                name.set_text(&package.name);
                version.set_text(&packages::version(&package));
                summary.set_text(&package.summary);
            }
            accessible::name(
                &row,
                &format!("{} {}", package.name, packages::version(&package)),
            );
        });
        let view = gtk::ListView::new(Some(selection.clone()), Some(factory));
        view.add_css_class("navigation-sidebar");
        accessible::name(&view, &gettext("Packages"));
        let widget = gtk::ScrolledWindow::builder()
            .hscrollbar_policy(gtk::PolicyType::Never)
            .child(&view)
            .vexpand(true)
            .build();
        Self {
            widget,
            view,
            store,
            selection,
            filter,
            needle,
            rows_created,
        }
    }

    /// Replace the packages (one model change, whatever their number).
    pub fn set_packages(&self, list: Vec<Package>) {
        let objects: Vec<glib::BoxedAnyObject> =
            list.into_iter().map(glib::BoxedAnyObject::new).collect();
        self.store.splice(0, self.store.n_items(), &objects);
    }

    /// Show only packages matching `text`.
    pub fn set_filter(&self, text: &str) {
        self.needle.replace(text.to_lowercase());
        self.filter.changed(gtk::FilterChange::Different);
    }

    /// The selected package.
    pub fn selected(&self) -> Option<Package> {
        let object = self.selection.selected_item()?;
        let boxed = object.downcast_ref::<glib::BoxedAnyObject>()?;
        Some(boxed.borrow::<Package>().clone())
    }
}

/// The three labels of a row, in order (name, version, summary).
fn labels_of(row: &gtk::Widget) -> Vec<gtk::Label> {
    let mut labels = Vec::new();
    let mut stack = vec![row.clone()];
    while let Some(widget) = stack.pop() {
        if let Ok(label) = widget.clone().downcast::<gtk::Label>() {
            labels.push(label);
            continue;
        }
        let mut child = widget.last_child();
        while let Some(current) = child {
            child = current.prev_sibling();
            stack.push(current);
        }
    }
    labels
}

/// Build the page.
pub fn build(shell: &Rc<Shell>) -> gtk::Widget {
    let list = PackageList::new();
    let search = gtk::SearchEntry::builder()
        .placeholder_text(gettext("Search packages"))
        .hexpand(true)
        .build();
    accessible::name(&search, &gettext("Search packages"));
    let scope = gtk::DropDown::from_strings(&[&gettext("Installed"), &gettext("Available")]);
    accessible::name(&scope, &gettext("Which packages"));
    let bar = gtk::Box::builder()
        .orientation(gtk::Orientation::Horizontal)
        .spacing(6)
        .margin_top(6)
        .margin_bottom(6)
        .margin_start(6)
        .margin_end(6)
        .build();
    bar.append(&search);
    bar.append(&scope);
    let sidebar = gtk::Box::new(gtk::Orientation::Vertical, 0);
    sidebar.append(&bar);
    sidebar.append(&gtk::Separator::new(gtk::Orientation::Horizontal));
    sidebar.append(&list.widget);

    let details = Details::new(shell);
    let paned = gtk::Paned::builder()
        .orientation(gtk::Orientation::Horizontal)
        .start_child(&sidebar)
        .end_child(&details.widget)
        .position(400)
        .shrink_start_child(false)
        .shrink_end_child(false)
        .build();

    let list_for_search = list.clone();
    search.connect_search_changed(move |entry| list_for_search.set_filter(&entry.text()));
    let list_for_selection = list.clone();
    let details_for_selection = details.clone();
    list.selection.connect_selected_item_notify(move |_| {
        if let Some(package) = list_for_selection.selected() {
            details_for_selection.load(&package);
        }
    });
    let load = {
        let list = list.clone();
        let scope = scope.clone();
        move || {
            let available = scope.selected() == 1;
            let list = list.clone();
            glib::spawn_future_local(async move {
                let result = bus::query(move |manager| async move {
                    if available {
                        manager.list_available().await
                    } else {
                        manager.list_installed(false).await
                    }
                })
                .await;
                match result {
                    Ok(packages) => list.set_packages(packages),
                    Err(error) => tracing::warn!("packages: {error}"),
                }
            });
        }
    };
    let load_on_scope = load.clone();
    scope.connect_selected_notify(move |_| load_on_scope());
    shell.on_reload(load);
    paned.upcast()
}

/// The details pane.
#[derive(Clone)]
struct Details {
    widget: gtk::Widget,
    title: gtk::Label,
    summary: gtk::Label,
    group: adw::PreferencesGroup,
    version: gtk::Label,
    origin: gtk::Label,
    description: gtk::Label,
    dependencies: adw::ExpanderRow,
    files: adw::ExpanderRow,
    action: gtk::Button,
    current: Rc<RefCell<Option<DetailsView>>>,
    extra_rows: Rc<RefCell<Vec<adw::ActionRow>>>,
}

impl Details {
    fn new(shell: &Rc<Shell>) -> Self {
        let column = widgets::column();
        let action = widgets::button(&gettext("_Install"), &["pill", "suggested-action"]);
        action.set_visible(false);
        let hero = widgets::Hero::new(
            "package-x-generic-symbolic",
            &gettext("No Package Selected"),
            &gettext("Choose a package to see its details."),
            &[&action],
        );
        let group = adw::PreferencesGroup::new();
        group.set_visible(false);
        let (version_row, version) = widgets::value_row(&gettext("Version"));
        let (origin_row, origin) = widgets::value_row(&gettext("Source"));
        let description = gtk::Label::builder()
            .wrap(true)
            .xalign(0.0)
            .selectable(true)
            .build();
        let dependencies = adw::ExpanderRow::builder()
            .title(gettext("Dependencies"))
            .build();
        let files = adw::ExpanderRow::builder().title(gettext("Files")).build();
        group.add(&version_row);
        group.add(&origin_row);
        group.add(&dependencies);
        group.add(&files);
        column.append(&hero.widget);
        column.append(&description);
        column.append(&group);
        let details = Self {
            widget: widgets::page(&column).upcast(),
            title: hero.title,
            summary: hero.description,
            group,
            version,
            origin,
            description,
            dependencies,
            files,
            action,
            current: Rc::new(RefCell::new(None)),
            extra_rows: Rc::new(RefCell::new(Vec::new())),
        };
        let current = details.current.clone();
        let shell = shell.clone();
        details.action.connect_clicked(move |_| {
            let Some(view) = current.borrow().clone() else {
                return;
            };
            let no_files: Vec<zbus::OwnedFd> = Vec::new();
            if view.installed {
                shell.change(
                    &fill("Removing {}", &[&view.name]),
                    "Remove",
                    (vec![view.name.clone()], bus::no_options()),
                );
            } else {
                shell.change(
                    &fill("Installing {}", &[&view.name]),
                    "Install",
                    (vec![view.name.clone()], no_files, bus::no_options()),
                );
            }
        });
        details
    }

    fn load(&self, package: &Package) {
        let details = self.clone();
        let name = package.name.clone();
        let installed = package.repository.is_empty();
        glib::spawn_future_local(async move {
            let answer = bus::query(move |manager| async move {
                manager.info(&[name.as_str()], installed).await
            })
            .await;
            match answer {
                Ok(list) => {
                    let chosen = list
                        .iter()
                        .find(|entry| (entry.status == "installed") == installed)
                        .or(list.first());
                    if let Some(entry) = chosen {
                        details.show(DetailsView::new(entry));
                    }
                }
                Err(error) => details.summary.set_text(&error.detail()),
            }
        });
    }

    fn show(&self, view: DetailsView) {
        self.title.set_text(&view.name);
        self.summary.set_text(&view.summary);
        self.version.set_text(&view.version);
        self.origin.set_text(&view.origin);
        self.description.set_text(&view.description);
        self.description.set_visible(!view.description.is_empty());
        for row in self.extra_rows.borrow_mut().drain(..) {
            if let Some(parent) = row.parent()
                && let Some(list) = parent.downcast_ref::<gtk::ListBox>()
            {
                list.remove(&row);
            }
        }
        let mut rows = Vec::new();
        for (expander, lines) in [
            (&self.dependencies, &view.dependencies),
            (&self.files, &view.files),
        ] {
            expander.set_subtitle(&lines.len().to_string());
            expander.set_sensitive(!lines.is_empty());
            // A few hundred rows at most are worth showing here; the CLI lists them all.
            for line in lines.iter().take(300) {
                let row = widgets::text_row(line, "");
                expander.add_row(&row);
                rows.push(row);
            }
        }
        self.extra_rows.replace(rows);
        let label = if view.installed {
            gettext("_Remove")
        } else {
            gettext("_Install")
        };
        self.action.set_label(&label);
        self.action.set_use_underline(true);
        // The explicit accessible name does not follow the label: without this a screen reader
        // would still say "Install" on the Remove button.
        accessible::name(&self.action, &label.replace('_', ""));
        for class in ["suggested-action", "destructive-action"] {
            self.action.remove_css_class(class);
        }
        self.action.add_css_class(if view.installed {
            "destructive-action"
        } else {
            "suggested-action"
        });
        self.action.set_visible(true);
        self.group.set_visible(true);
        self.current.replace(Some(view));
    }
}
