//! `moss-gui`: start the application (see the library for everything else).

use adw::prelude::*;

fn main() -> gtk::glib::ExitCode {
    let started = std::time::Instant::now();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("MOSS_GUI_LOG")
                .unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    moss_gui::i18n::init();
    let application = adw::Application::builder()
        .application_id(moss_gui::APP_ID)
        .build();
    application.connect_activate(move |application| moss_gui::ui::activate(application, started));
    application.run()
}
