//! Translations: strings are marked with `gettext` and looked up in the `moss-gui` domain.

/// The gettext domain.
pub const DOMAIN: &str = "moss-gui";

/// Bind the domain to the installed catalogues (`MOSS_GUI_LOCALEDIR`, or the system's).
pub fn init() {
    let directory =
        std::env::var("MOSS_GUI_LOCALEDIR").unwrap_or_else(|_| "/usr/share/locale".to_owned());
    // Missing catalogues are not an error: the English strings are shown. GTK sets the locale
    // from the environment when it starts (gtk_init calls setlocale).
    let _ = gettextrs::bindtextdomain(DOMAIN, directory);
    let _ = gettextrs::bind_textdomain_codeset(DOMAIN, "UTF-8");
    let _ = gettextrs::textdomain(DOMAIN);
}
