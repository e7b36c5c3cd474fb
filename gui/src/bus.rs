//! The bus side of the window: a tokio runtime on its own thread runs `proto`'s zbus proxies;
//! the GTK main loop awaits the results (a tokio `JoinHandle` is an ordinary future, so
//! `glib::spawn_future_local` can await it without blocking) and receives the streams of a
//! followed transaction through async channels.
//!
//! Every change is called with D-Bus's allow-interactive-authorisation flag, so that the
//! desktop's polkit agent may ask for a password; queries are not, as they need no permission.

use std::{collections::HashSet, future::Future, sync::OnceLock};

use futures_util::StreamExt;
use moss_proto::{
    BUS_NAME, ManagerProxy, TRANSACTION_INTERFACE, TRANSACTION_PATH_PREFIX, TransactionProxy,
    status,
};
use tokio::sync::OnceCell;
use zbus::{
    Connection, MatchRule, MessageStream,
    message::Type as MessageType,
    proxy::MethodFlags,
    wire::{DynamicType, OwnedObjectPath},
};

use crate::view::errors::UserError;

/// Options of a change (`a{sv}`); the window sets none, and mossd ignores unknown keys.
pub type Options = std::collections::HashMap<String, zbus::OwnedVariant>;

/// No options.
pub fn no_options() -> Options {
    Options::new()
}

struct Client {
    runtime: tokio::runtime::Runtime,
    connection: OnceCell<Connection>,
    manager: OnceCell<ManagerProxy<'static>>,
}

fn client() -> &'static Client {
    static CLIENT: OnceLock<Client> = OnceLock::new();
    CLIENT.get_or_init(|| Client {
        // One worker is plenty for a handful of proxies, and keeps the window's footprint small.
        runtime: tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("moss-gui-bus")
            .enable_all()
            .build()
            .expect("a tokio runtime"),
        connection: OnceCell::new(),
        manager: OnceCell::new(),
    })
}

/// The system bus connection (the bus `DBUS_SYSTEM_BUS_ADDRESS` names, as for the CLI). It is
/// made once: mossd exiting when idle or restarting changes the owner of its name, not this
/// connection, and calls to the name activate it again.
async fn connection() -> Result<Connection, UserError> {
    client()
        .connection
        .get_or_try_init(Connection::system)
        .await
        .cloned()
        .map_err(|error| UserError::Unreachable(error.to_string()))
}

/// The manager's proxy, made once. It keeps no property cache: every read asks mossd, which
/// exits when idle and comes back with values no cached copy would have seen change (and a
/// fresh proxy per query cost a GetAll and two match rules each time).
async fn manager() -> Result<ManagerProxy<'static>, UserError> {
    let connection = connection().await?;
    Ok(client()
        .manager
        .get_or_try_init(|| {
            ManagerProxy::builder(&connection)
                .cache_properties(zbus::proxy::CacheProperties::No)
                .build()
        })
        .await?
        .clone())
}

/// Run `work` on the bus runtime; the returned future may be awaited on the GTK main loop.
pub fn run<T, F>(work: F) -> impl Future<Output = Result<T, UserError>>
where
    T: Send + 'static,
    F: Future<Output = Result<T, UserError>> + Send + 'static,
{
    let handle = client().runtime.spawn(work);
    async move {
        handle
            .await
            .unwrap_or_else(|error| Err(UserError::Other(error.to_string())))
    }
}

/// A query on the manager: `query(proxy)` runs on the bus runtime.
pub fn query<T, F, Fut>(query: F) -> impl Future<Output = Result<T, UserError>>
where
    T: Send + 'static,
    F: FnOnce(ManagerProxy<'static>) -> Fut + Send + 'static,
    Fut: Future<Output = zbus::Result<T>> + Send,
{
    run(async move { Ok(query(manager().await?).await?) })
}

/// Call a change method of the manager (`Sync`, `StateActivate`, ...) with the
/// allow-interactive-authorisation flag; returns the new transaction's path.
pub fn change<B>(method: &'static str, body: B) -> impl Future<Output = Result<String, UserError>>
where
    B: serde::Serialize + DynamicType + Send + Sync + 'static,
{
    run(async move {
        let proxy = manager().await?;
        let path: Option<OwnedObjectPath> = proxy
            .inner()
            .call_with_flags(method, MethodFlags::ALLOW_INTERACTIVE_AUTH, &body)
            .await?;
        path.map(|path| path.to_string())
            .ok_or_else(|| UserError::Other(format!("{method} returned no transaction")))
    })
}

/// Set the background update policy (the proxy asks for interactive authorisation, like every
/// change).
pub fn set_update_policy(policy: &'static str) -> impl Future<Output = Result<(), UserError>> {
    query(move |manager| async move { manager.set_update_policy(policy).await })
}

/// Set how many older states mossd keeps after each change (0: all), with interactive
/// authorisation like the update policy.
pub fn set_keep_states(count: u32) -> impl Future<Output = Result<(), UserError>> {
    query(move |manager| async move { manager.set_keep_states(count).await })
}

/// What a followed transaction reports to the window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Update {
    /// Its role.
    Role(String),
    /// A numbered event (live or replayed).
    Event(u64, String),
    /// Its `Status` property.
    Status(String),
    /// Its `Cancellable` property.
    Cancellable(bool),
    /// It ended: status, message, outcome JSON.
    Finished(String, String, String),
    /// The daemon went away before it ended, or it could not be followed.
    Lost(UserError),
}

/// Follow the transaction at `path`: subscribe to its signals first, then (when `start`) start
/// it, then replay what happened before the subscription. The window sees each event at most
/// once because [`crate::view::progress::TransactionView`] drops repeated numbers.
pub fn follow(path: String, start: bool) -> async_channel::Receiver<Update> {
    let (sender, receiver) = async_channel::unbounded();
    client().runtime.spawn(async move {
        if let Err(error) = follow_inner(&path, start, &sender).await {
            let _ = sender.send(Update::Lost(error)).await;
        }
    });
    receiver
}

async fn follow_inner(
    path: &str,
    start: bool,
    sender: &async_channel::Sender<Update>,
) -> Result<(), UserError> {
    let connection = connection().await?;
    let proxy = TransactionProxy::builder(&connection)
        .path(path.to_owned())
        .build()
        .await?;
    // Subscribe before starting, and drain the subscriptions from now on: zbus stops reading
    // the connection while a subscription's queue (64 messages) is full, so signals left
    // unread during the calls below (a busy transaction's events) would hold back their
    // replies, and every other call of the window, for good.
    let (live, _forwarding) = forward_signals(&proxy, &connection).await?;
    let send = |update| sender.send(update);
    let _ = send(Update::Role(proxy.role().await?)).await;
    if start && let Err(error) = proxy.start().await {
        // An identical request joins the unfinished one, which may have been started already:
        // then it is followed like any other.
        let joined = matches!(&error, zbus::Error::MethodError(name, _, _)
            if name.as_str() == "com.serpentos.Moss1.Error.InvalidState");
        if !joined {
            return Err(error.into());
        }
    }
    for (sequence, json) in proxy.events(0).await? {
        let _ = send(Update::Event(sequence, json)).await;
    }
    let _ = send(Update::Cancellable(proxy.cancellable().await?)).await;
    let current = proxy.status().await?;
    let _ = send(Update::Status(current.clone())).await;
    if status::is_final(&current) {
        let (status, message, outcome) = proxy.result().await?;
        let _ = send(Update::Finished(status, message, outcome)).await;
        return Ok(());
    }
    // Live signals, in the order they came (events the replay held already are dropped by
    // the view), until the end.
    while let Ok(update) = live.recv().await {
        let end = matches!(update, Update::Finished(..) | Update::Lost(_));
        let _ = send(update).await;
        if end {
            return Ok(());
        }
    }
    // The subscriptions ended without a result (the connection closed).
    Err(UserError::Unreachable(
        "the connection to mossd closed while following the transaction".into(),
    ))
}

/// Stops a spawned task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Subscribe to a transaction's signals and to mossd leaving the bus, and move them into an
/// unbounded channel as they come, on a task of their own that stops when the guard is dropped.
async fn forward_signals(
    proxy: &TransactionProxy<'static>,
    connection: &Connection,
) -> Result<(async_channel::Receiver<Update>, AbortOnDrop), UserError> {
    let mut events = proxy.receive_event().await?;
    let mut finished = proxy.receive_finished().await?;
    let mut statuses = proxy.receive_status_changed().await;
    let mut cancellable = proxy.receive_cancellable_changed().await;
    let bus = zbus::fdo::DBusProxy::new(connection).await?;
    let mut owners = bus
        .receive_name_owner_changed_with_args(&[(0, BUS_NAME)])
        .await?;
    let (live, receiver) = async_channel::unbounded();
    let task = tokio::spawn(async move {
        loop {
            // Biased, in this order: the events queued before a Finished (or before mossd left)
            // are passed on first, and a transaction that finished just before an idle exit
            // is not reported lost.
            let update = tokio::select! {
                biased;
                Some(signal) = events.next() => match signal.args() {
                    Ok(arguments) => Update::Event(arguments.sequence, arguments.progress.to_owned()),
                    Err(_) => continue,
                },
                Some(change) = statuses.next() => match change.get().await {
                    Ok(value) => Update::Status(value),
                    Err(_) => continue,
                },
                Some(change) = cancellable.next() => match change.get().await {
                    Ok(value) => Update::Cancellable(value),
                    Err(_) => continue,
                },
                Some(signal) = finished.next() => match signal.args() {
                    Ok(arguments) => Update::Finished(
                        arguments.status.to_owned(),
                        arguments.message.to_owned(),
                        arguments.outcome.to_owned(),
                    ),
                    Err(_) => continue,
                },
                Some(_) = owners.next() => Update::Lost(UserError::Unreachable(
                    "mossd exited while the transaction ran; its result is in the history".into(),
                )),
                else => break,
            };
            let end = matches!(update, Update::Finished(..) | Update::Lost(_));
            if live.send(update).await.is_err() || end {
                break;
            }
        }
    });
    Ok((receiver, AbortOnDrop(task)))
}

/// Cancel the transaction at `path` (interactive: another user's needs `cancel-foreign`).
pub fn cancel(path: String) -> impl Future<Output = Result<(), UserError>> {
    run(async move {
        let connection = connection().await?;
        let proxy = TransactionProxy::builder(&connection)
            .path(path)
            .build()
            .await?;
        proxy
            .inner()
            .call_with_flags::<_, _, ()>("Cancel", MethodFlags::ALLOW_INTERACTIVE_AUTH, &())
            .await?;
        Ok(())
    })
}

/// What the watcher reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Watch {
    /// A transaction is running or waiting (found at start-up, or by its signals).
    Transaction(String),
    /// mossd left the bus (idle exit, crash, restart): the paths it served report no more.
    DaemonGone,
    /// mossd is back after it was gone: the window reloads what it shows. Its first start,
    /// by the window's own first queries, is not reported: the first load follows it anyway.
    DaemonReturned,
}

/// Watch for transactions others start (CLI, timer, software centre) and for mossd coming and
/// going. Nothing here polls: a polling window would keep the daemon from ever exiting idle.
pub fn watch() -> async_channel::Receiver<Watch> {
    let (sender, receiver) = async_channel::unbounded();
    client().runtime.spawn(async move {
        if let Err(error) = watch_inner(&sender).await {
            tracing::warn!("cannot watch the daemon: {error}");
        }
    });
    receiver
}

async fn watch_inner(sender: &async_channel::Sender<Watch>) -> Result<(), UserError> {
    let connection = connection().await?;
    let rule = MatchRule::builder()
        .msg_type(MessageType::Signal)
        .interface(TRANSACTION_INTERFACE)
        .build()?;
    let mut signals = MessageStream::for_match_rule(rule, &connection, None).await?;
    let bus = zbus::fdo::DBusProxy::new(&connection).await?;
    let mut owners = bus
        .receive_name_owner_changed_with_args(&[(0, BUS_NAME)])
        .await?;
    // Each transaction is reported once per daemon run, not once per progress signal.
    let mut reported = HashSet::new();
    let mut gone = false;
    // Transactions that were already running when the window opened.
    if let Ok(paths) = manager().await?.transactions().await {
        for path in paths {
            reported.insert(path.to_string());
            let _ = sender.send(Watch::Transaction(path.to_string())).await;
        }
    }
    loop {
        tokio::select! {
            Some(Ok(message)) = signals.next() => {
                let header = message.header();
                if let Some(path) = header.path()
                    && path.as_str().starts_with(TRANSACTION_PATH_PREFIX)
                    && reported.insert(path.to_string())
                {
                    let _ = sender.send(Watch::Transaction(path.to_string())).await;
                }
            }
            Some(change) = owners.next() => {
                let (left, arrived) = change.args().map_or((false, false), |arguments| {
                    (arguments.old_owner().is_some(), arguments.new_owner().is_some())
                });
                if left {
                    // Its transactions end with it.
                    reported.clear();
                    gone = true;
                    let _ = sender.send(Watch::DaemonGone).await;
                }
                if arrived && gone {
                    gone = false;
                    let _ = sender.send(Watch::DaemonReturned).await;
                }
            }
            else => return Ok(()),
        }
    }
}
