//! Who may do what: the caller is read from the message header, uid 0 needs no polkit, and
//! polkit decides for everyone else; when polkit cannot be asked, the answer is no.

use std::collections::HashMap;

use moss_proto::Error;
use zbus::{
    Connection,
    message::{Flags, Header},
};
use zbus_polkit::policykit1::{AuthorityProxy, CheckAuthorizationFlags, Subject};

/// The caller of a method: its unique bus name and uid.
#[derive(Debug, Clone)]
pub struct Caller {
    /// Unique bus name.
    pub name: String,
    /// Unix uid.
    pub uid: u32,
}

/// Identify the sender of a message.
pub async fn caller(connection: &Connection, header: &Header<'_>) -> Result<Caller, Error> {
    let sender = header
        .sender()
        .ok_or_else(|| Error::NotAuthorized("the call carries no sender".into()))?
        .to_owned();
    let bus = zbus::fdo::DBusProxy::new(connection)
        .await
        .map_err(|error| Error::Failed(format!("cannot ask the bus who called: {error}")))?;
    let uid = bus
        .get_connection_unix_user(sender.clone().into())
        .await
        .map_err(|error| Error::NotAuthorized(format!("cannot tell who {sender} is: {error}")))?;
    Ok(Caller {
        name: sender.to_string(),
        uid,
    })
}

/// Check that the sender of `header` may perform `action`; returns the caller.
pub async fn authorize(
    connection: &Connection,
    header: &Header<'_>,
    action: &str,
) -> Result<Caller, Error> {
    let caller = caller(connection, header).await?;
    if caller.uid == 0 {
        return Ok(caller);
    }
    // The client decides whether a password prompt may appear (D-Bus's
    // ALLOW_INTERACTIVE_AUTHORIZATION flag); a background service never sets it.
    let interactive = header
        .primary()
        .flags()
        .contains(Flags::ALLOW_INTERACTIVE_AUTH);
    let flags = if interactive {
        CheckAuthorizationFlags::ALLOW_USER_INTERACTION
    } else {
        CheckAuthorizationFlags::empty()
    };
    let denied = |reason: String| {
        tracing::info!(uid = caller.uid, action, %reason, "denied");
        Error::NotAuthorized(format!(
            "uid {} is not authorised for {action}: {reason}",
            caller.uid
        ))
    };
    let subject = Subject::new_for_message_header(header)
        .map_err(|error| denied(format!("cannot name the caller to polkit ({error})")))?;
    let authority = AuthorityProxy::new(connection)
        .await
        .map_err(|error| denied(format!("polkit is unreachable ({error})")))?;
    let result = authority
        .check_authorization(&subject, action, &HashMap::new(), flags, "")
        .await
        .map_err(|error| denied(format!("polkit is unreachable ({error})")))?;
    if result.is_authorized {
        tracing::info!(uid = caller.uid, action, "authorised by polkit");
        Ok(caller)
    } else if result.is_challenge {
        Err(denied(
            "authentication is required; run the command from a session with a polkit agent, \
             or as root"
                .into(),
        ))
    } else {
        Err(denied(
            "polkit denied it; ask an administrator to add you to the allowed group".into(),
        ))
    }
}
