//! `moss-gui`: the desktop front-end of moss (GTK 4 / libadwaita). It shows what makes a moss
//! system different: numbered states, what changed between them, one-click rollback, updates
//! with live progress, verification and repair, and the background update policy.
//!
//! # Layout
//!
//! - [`view`]: what to show, as pure Rust over `proto`'s wire types (unit-tested without a
//!   display).
//! - [`bus`]: the tokio runtime and `proto`'s proxies; the only code that talks to mossd.
//! - [`ui`]: the widgets, which copy [`view`] values into rows and labels.
//!
//! The window never runs as root and never links code that changes the system: every change is
//! a mossd transaction, authorised by polkit.

pub mod bus;
pub mod i18n;
pub mod ui;
pub mod view;

/// The application id (also the name of the desktop file, metainfo and icon).
pub const APP_ID: &str = "com.serpentos.Moss";
