//! The activity panel under the header bar: the transaction being followed (started here or by
//! anyone else), with its phase, progress, bytes, time left and Cancel; then its outcome, or a
//! refusal, until dismissed.

use std::{cell::RefCell, rc::Rc};

use adw::prelude::*;

use super::accessible;
use gettextrs::gettext;

use crate::{
    bus,
    view::{
        errors::UserError,
        progress::{Outcome, TransactionView},
    },
};

use super::widgets;

/// The panel.
#[derive(Debug, Clone)]
pub struct Activity {
    /// The revealer to put in the window.
    pub widget: gtk::Revealer,
    title: gtk::Label,
    headline: gtk::Label,
    detail: gtk::Label,
    bar: gtk::ProgressBar,
    cancel: gtk::Button,
    dismiss: gtk::Button,
    path: Rc<RefCell<Option<String>>>,
}

impl Activity {
    /// An empty, hidden panel.
    pub fn new(toasts: &adw::ToastOverlay) -> Self {
        let title = gtk::Label::builder()
            .xalign(0.0)
            .css_classes(["heading"])
            .build();
        let headline = gtk::Label::builder().xalign(0.0).wrap(true).build();
        let detail = gtk::Label::builder()
            .xalign(0.0)
            .wrap(true)
            .selectable(true)
            .css_classes(["dim-label", "caption"])
            .build();
        let bar = gtk::ProgressBar::new();
        accessible::name(&bar, &gettext("Transaction progress"));
        let cancel = widgets::button(&gettext("_Cancel"), &[]);
        let dismiss = widgets::icon_button("window-close-symbolic", &gettext("Dismiss"));
        let texts = gtk::Box::new(gtk::Orientation::Vertical, 4);
        texts.set_hexpand(true);
        texts.append(&title);
        texts.append(&headline);
        texts.append(&bar);
        texts.append(&detail);
        let card = gtk::Box::builder()
            .orientation(gtk::Orientation::Horizontal)
            .spacing(12)
            .css_classes(["card", "activity"])
            .margin_top(12)
            .margin_bottom(6)
            .margin_start(12)
            .margin_end(12)
            .build();
        let inner = gtk::Box::builder()
            .orientation(gtk::Orientation::Horizontal)
            .spacing(12)
            .margin_top(12)
            .margin_bottom(12)
            .margin_start(18)
            .margin_end(12)
            .hexpand(true)
            .build();
        inner.append(&texts);
        inner.append(&cancel);
        inner.append(&dismiss);
        card.append(&inner);
        accessible::name(&card, &gettext("Activity"));
        let widget = gtk::Revealer::builder()
            .child(&card)
            .transition_type(gtk::RevealerTransitionType::SlideDown)
            .build();
        let activity = Self {
            widget,
            title,
            headline,
            detail,
            bar,
            cancel,
            dismiss,
            path: Rc::new(RefCell::new(None)),
        };
        let revealer = activity.widget.clone();
        activity
            .dismiss
            .connect_clicked(move |_| revealer.set_reveal_child(false));
        let path = activity.path.clone();
        let toasts = toasts.clone();
        activity.cancel.connect_clicked(move |button| {
            let Some(path) = path.borrow().clone() else {
                return;
            };
            button.set_sensitive(false);
            let toasts = toasts.clone();
            gtk::glib::spawn_future_local(async move {
                if let Err(error) = bus::cancel(path).await {
                    toasts.add_toast(adw::Toast::new(&error.title()));
                }
            });
        });
        activity
    }

    /// Show a transaction's progress or outcome.
    pub fn show(&self, view: &TransactionView) {
        self.path.replace(Some(view.path.clone()));
        self.title.set_text(&view.title());
        self.headline.set_text(&view.headline());
        self.detail.set_text(&view.detail());
        self.detail.set_visible(!view.detail().is_empty());
        self.bar.set_fraction(view.fraction());
        self.bar.set_visible(!view.is_finished());
        accessible::describe(&self.bar, &view.accessible_description());
        self.cancel.set_visible(view.can_cancel());
        self.cancel.set_sensitive(view.can_cancel());
        self.dismiss.set_visible(view.is_finished());
        self.set_tone(match &view.outcome {
            Some(Outcome::Failed(_)) => Some("error"),
            Some(Outcome::Succeeded(_)) => Some("success"),
            _ => None,
        });
        self.widget.set_reveal_child(true);
    }

    /// Show a change that could not be started (refused, or the daemon unreachable).
    pub fn show_error(&self, title: &str, error: &UserError) {
        self.path.replace(None);
        self.title.set_text(title);
        self.headline.set_text(&error.title());
        self.detail.set_text(&error.detail());
        self.detail.set_visible(true);
        self.bar.set_visible(false);
        self.cancel.set_visible(false);
        self.dismiss.set_visible(true);
        self.set_tone(Some("error"));
        self.widget.set_reveal_child(true);
    }

    fn set_tone(&self, tone: Option<&str>) {
        for class in ["error", "success"] {
            self.headline.remove_css_class(class);
        }
        if let Some(class) = tone {
            self.headline.add_css_class(class);
        }
        // Only the headline is tinted; the card keeps its neutral background.
    }
}
