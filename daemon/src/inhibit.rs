//! A logind inhibitor held while a transaction changes the system, so the machine neither
//! sleeps nor shuts down half-way (rpm-ostree #4783). Where logind is absent this is a no-op.

use zbus::{Connection, wire::OwnedFd};

/// Holds sleep and shutdown back until dropped (closing the file descriptor releases it).
#[derive(Debug)]
pub struct Inhibitor {
    _fd: Option<OwnedFd>,
}

/// Ask logind for a blocking `shutdown:sleep` inhibitor.
pub async fn take(connection: &Connection, what: &str) -> Inhibitor {
    let reply = connection
        .call_method(
            Some("org.freedesktop.login1"),
            "/org/freedesktop/login1",
            Some("org.freedesktop.login1.Manager"),
            "Inhibit",
            &(
                "shutdown:sleep",
                "moss",
                format!("{what} in progress"),
                "block",
            ),
        )
        .await;
    let fd = match reply {
        Ok(message) => message.body().deserialize::<OwnedFd>().ok(),
        Err(error) => {
            tracing::debug!(%error, "no logind inhibitor (logind absent?)");
            None
        }
    };
    Inhibitor { _fd: fd }
}
