//! View logic: what the windows show for a given state list, diff, transaction event stream or
//! error. Pure Rust over `proto`'s wire types, with no GTK, so that it is unit-tested without a
//! display; the widgets in [`crate::ui`] only copy these values into rows and labels.

pub mod errors;
pub mod format;
pub mod health;
pub mod overview;
pub mod packages;
pub mod progress;
pub mod repositories;
pub mod states;

use gettextrs::gettext;

/// `gettext(message)` with `{}` placeholders filled in order. Translators see the `{}`s and may
/// move them, but not reorder them; messages that need two values keep them in reading order.
pub fn fill(message: &str, values: &[&str]) -> String {
    let mut text = gettext(message);
    for value in values {
        if let Some(index) = text.find("{}") {
            text.replace_range(index..index + 2, value);
        }
    }
    text
}

#[cfg(test)]
mod tests {
    #[test]
    fn fill_replaces_placeholders_in_order() {
        assert_eq!(super::fill("{} of {}", &["1", "2"]), "1 of 2");
        assert_eq!(super::fill("no placeholder", &["x"]), "no placeholder");
    }
}
