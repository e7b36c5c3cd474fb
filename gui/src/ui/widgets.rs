//! Small helpers shared by the pages.

use adw::prelude::*;

use super::accessible;

/// Remove every row of a list box (GTK 4.8 has no `remove_all`).
pub fn clear(list: &gtk::ListBox) {
    while let Some(child) = list.first_child() {
        list.remove(&child);
    }
}

/// A list box styled as a GNOME boxed list, with an accessible name.
pub fn boxed_list(name: &str) -> gtk::ListBox {
    let list = gtk::ListBox::builder()
        .selection_mode(gtk::SelectionMode::None)
        .css_classes(["boxed-list"])
        .build();
    accessible::name(&list, name);
    list
}

/// A button with a text label (its accessible name), optionally styled.
pub fn button(label: &str, classes: &[&str]) -> gtk::Button {
    let button = gtk::Button::with_mnemonic(label);
    // GTK 4.8 names a mnemonic button "Check for _Updates Check for Updates" (its label
    // property and its child's text): name it once, without the underline.
    accessible::name(&button, &label.replace('_', ""));
    for class in classes {
        button.add_css_class(class);
    }
    button.set_valign(gtk::Align::Center);
    button
}

/// An icon-only button: tooltip and accessible name say what it does.
pub fn icon_button(icon: &str, name: &str) -> gtk::Button {
    let button = gtk::Button::from_icon_name(icon);
    button.set_tooltip_text(Some(name));
    accessible::name(&button, name);
    button.add_css_class("flat");
    button.set_valign(gtk::Align::Center);
    button
}

/// A read-only row: title and value.
pub fn value_row(title: &str) -> (adw::ActionRow, gtk::Label) {
    let row = adw::ActionRow::builder().title(title).build();
    let value = gtk::Label::builder()
        .css_classes(["dim-label"])
        .selectable(true)
        .build();
    row.add_suffix(&value);
    (row, value)
}

/// A plain row with a single line of text, for lists of package names and problems.
pub fn text_row(title: &str, subtitle: &str) -> adw::ActionRow {
    let row = adw::ActionRow::builder()
        .title(title)
        .subtitle(subtitle)
        .build();
    row.set_title_selectable(true);
    row
}

/// A scrolled, width-clamped page body, as GNOME's preferences pages look.
pub fn page(content: &impl IsA<gtk::Widget>) -> gtk::ScrolledWindow {
    let clamp = adw::Clamp::builder()
        .maximum_size(760)
        .child(content)
        .margin_top(24)
        .margin_bottom(24)
        .margin_start(12)
        .margin_end(12)
        .build();
    gtk::ScrolledWindow::builder()
        .hscrollbar_policy(gtk::PolicyType::Never)
        .child(&clamp)
        .vexpand(true)
        .build()
}

/// A vertical box of groups, spaced as a preferences page.
pub fn column() -> gtk::Box {
    gtk::Box::new(gtk::Orientation::Vertical, 24)
}

/// The top of a page: a large icon, a title, a description and a row of buttons, as an
/// `AdwStatusPage` shows them. (A status page scrolls by itself, and inside a scrolled page it
/// is squeezed and clips its buttons.)
#[derive(Debug, Clone)]
pub struct Hero {
    /// The widget to add to the page.
    pub widget: gtk::Box,
    /// The icon.
    pub icon: gtk::Image,
    /// The title.
    pub title: gtk::Label,
    /// The description under the title.
    pub description: gtk::Label,
}

impl Hero {
    /// A hero with `icon`, `title`, `description` and `buttons`.
    pub fn new(icon: &str, title: &str, description: &str, buttons: &[&gtk::Button]) -> Self {
        let image = gtk::Image::from_icon_name(icon);
        image.set_pixel_size(96);
        image.add_css_class("icon-dropshadow");
        let heading = gtk::Label::builder()
            .label(title)
            .css_classes(["title-1"])
            .wrap(true)
            .justify(gtk::Justification::Center)
            .build();
        let text = gtk::Label::builder()
            .label(description)
            .wrap(true)
            .justify(gtk::Justification::Center)
            .build();
        let row = gtk::Box::builder()
            .spacing(12)
            .halign(gtk::Align::Center)
            .margin_top(12)
            .build();
        for button in buttons {
            row.append(*button);
        }
        let widget = gtk::Box::builder()
            .orientation(gtk::Orientation::Vertical)
            .spacing(12)
            .margin_top(12)
            .build();
        widget.append(&image);
        widget.append(&heading);
        widget.append(&text);
        widget.append(&row);
        Self {
            widget,
            icon: image,
            title: heading,
            description: text,
        }
    }
}
