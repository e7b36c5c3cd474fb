//! Accessible names and descriptions.
//!
//! gtk4-rs exposes `update_property` only with its `v4_10` feature, which would require GTK
//! 4.10; Debian 12 has 4.8, whose libgtk already has the C function (it exists since GTK 4.0).
//! So this module declares and calls it directly: the one place in the crate with `unsafe`.

use gtk::{
    ffi::{GTK_ACCESSIBLE_PROPERTY_DESCRIPTION, GTK_ACCESSIBLE_PROPERTY_LABEL},
    glib::{self, translate::ToGlibPtr},
    prelude::*,
};

#[expect(unsafe_code, reason = "a GTK 4.0 function gtk4-rs only binds for 4.10")]
mod raw {
    use gtk::{ffi::GtkAccessibleProperty, ffi::GtkWidget, glib::gobject_ffi::GValue};

    unsafe extern "C" {
        /// `void gtk_accessible_update_property_value (GtkAccessible *self, int n_properties,
        /// GtkAccessibleProperty properties[], const GValue values[])`, GTK ≥ 4.0.
        fn gtk_accessible_update_property_value(
            // A GtkAccessible*; every GtkWidget is one (same instance pointer).
            accessible: *mut GtkWidget,
            count: std::ffi::c_int,
            properties: *const GtkAccessibleProperty,
            values: *const GValue,
        );
    }

    /// Set one string property of an accessible.
    pub fn update(
        accessible: *mut GtkWidget,
        property: GtkAccessibleProperty,
        value: *const GValue,
    ) {
        // SAFETY: `accessible` is a live GtkWidget (which implements GtkAccessible) borrowed from a Rust wrapper for the
        // duration of the call; one property and one initialised string GValue are passed,
        // matching the count; GTK copies the value and keeps no pointer to either array.
        unsafe { gtk_accessible_update_property_value(accessible, 1, &property, value) }
    }
}

fn update(widget: &impl IsA<gtk::Widget>, property: i32, text: &str) {
    let value = text.to_value();
    let pointer: *const glib::gobject_ffi::GValue = value.to_glib_none().0;
    raw::update(widget.as_ref().to_glib_none().0, property, pointer);
}

/// Give a control its accessible name (what a screen reader says, what AT-SPI calls `name`).
pub fn name(widget: &impl IsA<gtk::Widget>, text: &str) {
    update(widget, GTK_ACCESSIBLE_PROPERTY_LABEL, text);
}

/// Give a control an accessible description (read after its name).
pub fn describe(widget: &impl IsA<gtk::Widget>, text: &str) {
    update(widget, GTK_ACCESSIBLE_PROPERTY_DESCRIPTION, text);
}
