//! The widgets. Each page reads from mossd through [`crate::bus`], turns the answers into view
//! values with [`crate::view`], and copies those into rows; changes go through [`Shell`], which
//! calls them with interactive authorisation and follows their progress.

mod accessible;
mod activity;
mod health;
mod overview;
pub mod packages;
mod repositories;
mod settings;
mod shell;
mod states;
mod widgets;
mod window;

pub use shell::Shell;

use std::time::Instant;

use adw::prelude::*;

/// Build and show the main window. With `MOSS_GUI_REPORT_STARTUP` set, print to stderr how long
/// it took from the start of `main` to the first frame drawn with data requested.
pub fn activate(application: &adw::Application, started: Instant) {
    if let Some(window) = application.active_window() {
        window.present();
        return;
    }
    add_development_icons();
    let window = window::build(application);
    if std::env::var_os("MOSS_GUI_REPORT_STARTUP").is_some() {
        report_first_frame(&window, started);
    }
    window.present();
}

/// When run from the source tree, find the application icon there (installed copies live in
/// the icon theme already).
fn add_development_icons() {
    let icons = concat!(env!("CARGO_MANIFEST_DIR"), "/data/icons");
    if let Some(display) = gtk::gdk::Display::default()
        && std::path::Path::new(icons).is_dir()
    {
        gtk::IconTheme::for_display(&display).add_search_path(icons);
    }
}

fn report_first_frame(window: &adw::ApplicationWindow, started: Instant) {
    window.connect_map(move |window| {
        let Some(clock) = window.frame_clock() else {
            return;
        };
        let handler = std::rc::Rc::new(std::cell::Cell::new(None));
        let handler_in = handler.clone();
        let id = clock.connect_after_paint(move |clock| {
            #[expect(
                clippy::print_stderr,
                reason = "the start-up report is for the benchmark"
            )]
            {
                eprintln!(
                    "moss-gui: first frame after {:.1} ms",
                    started.elapsed().as_secs_f64() * 1000.0
                );
            }
            if let Some(id) = handler_in.take() {
                clock.disconnect(id);
            }
        });
        handler.set(Some(id));
    });
}
