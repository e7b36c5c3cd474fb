//! What the pages share: the window, toasts, the activity panel, and changes: called with
//! interactive authorisation, then followed until they end, after which every page reloads.

use std::{cell::RefCell, collections::HashSet, rc::Rc};

use zbus::wire::DynamicType;

use crate::{
    bus::{self, Update},
    view::progress::TransactionView,
};

use super::activity::Activity;

/// Shared by the pages.
pub struct Shell {
    /// The main window.
    pub window: adw::ApplicationWindow,
    toasts: adw::ToastOverlay,
    activity: Activity,
    reloaders: RefCell<Vec<Box<dyn Fn()>>>,
    followed: RefCell<HashSet<String>>,
}

impl std::fmt::Debug for Shell {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("Shell").finish_non_exhaustive()
    }
}

impl Shell {
    /// A shell for `window`, showing toasts in `toasts` and progress in `activity`.
    pub(super) fn new(
        window: adw::ApplicationWindow,
        toasts: adw::ToastOverlay,
        activity: Activity,
    ) -> Rc<Self> {
        Rc::new(Self {
            window,
            toasts,
            activity,
            reloaders: RefCell::new(Vec::new()),
            followed: RefCell::new(HashSet::new()),
        })
    }

    /// Register what a page does to reload itself.
    pub fn on_reload(&self, reload: impl Fn() + 'static) {
        self.reloaders.borrow_mut().push(Box::new(reload));
    }

    /// mossd went away: none of the paths it served can report again, and a later run may hand
    /// one out again (mossd numbers on from its history, but a transaction it discarded unstarted
    /// left no record; an older mossd numbered from 1 in every run).
    pub fn forget_transactions(&self) {
        tracing::debug!("mossd left the bus");
        self.followed.borrow_mut().clear();
    }

    /// Reload every page (after a change, or when mossd came back).
    pub fn reload(&self) {
        for reload in self.reloaders.borrow().iter() {
            reload();
        }
    }

    /// A short message at the bottom of the window.
    pub fn toast(&self, text: &str) {
        self.toasts.add_toast(adw::Toast::new(text));
    }

    /// Show a change that could not be made (refused, unreachable, invalid).
    pub fn report(&self, title: &str, error: &crate::view::errors::UserError) {
        self.activity.show_error(title, error);
        self.toast(&error.title());
    }

    /// Call the change `method` with `body`; a refusal is shown and changes nothing, otherwise
    /// the new transaction is started and followed. `title` names the change for the panel.
    pub fn change<B>(self: &Rc<Self>, title: &str, method: &'static str, body: B)
    where
        B: serde::Serialize + DynamicType + Send + Sync + 'static,
    {
        let shell = self.clone();
        let title = title.to_owned();
        gtk::glib::spawn_future_local(async move {
            match bus::change(method, body).await {
                Ok(path) => {
                    tracing::debug!("{method} made {path}");
                    shell.follow(path, true);
                }
                Err(error) => {
                    tracing::debug!("{method} failed: {error:?}");
                    shell.report(&title, &error);
                }
            }
        });
    }

    /// Follow a transaction (ours, or one someone else started) until it ends.
    pub fn follow(self: &Rc<Self>, path: String, start: bool) {
        if !self.followed.borrow_mut().insert(path.clone()) {
            tracing::debug!("{path} is followed already");
            return;
        }
        tracing::debug!("following {path} (start: {start})");
        let receiver = bus::follow(path.clone(), start);
        let shell = self.clone();
        gtk::glib::spawn_future_local(async move {
            let mut view = TransactionView::new(&path, "");
            while let Ok(update) = receiver.recv().await {
                match update {
                    Update::Role(role) => view.role = role,
                    Update::Event(sequence, json) => {
                        if let Err(error) = view.apply(sequence, &json) {
                            tracing::warn!("{path}: {error}");
                        }
                    }
                    Update::Status(status) => view.set_status(&status),
                    Update::Cancellable(cancellable) => {
                        view.cancellable = cancellable && !view.is_finished();
                    }
                    Update::Finished(status, message, outcome) => {
                        tracing::debug!("{path} finished: {status}");
                        view.finish(&status, &message, &outcome);
                    }
                    Update::Lost(error) => {
                        shell.activity.show_error(&view.title(), &error);
                        break;
                    }
                }
                shell.activity.show(&view);
                if view.is_finished() {
                    break;
                }
            }
            // It reports no more: were its path handed out again, that is a new transaction.
            shell.followed.borrow_mut().remove(&path);
            shell.reload();
        });
    }
}
