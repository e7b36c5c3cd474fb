//! Bounds on what one caller can make the daemon hold: request sizes, objects per caller, and
//! the events kept per transaction. Every request is checked against them before any work (and
//! before polkit is asked, so a flood costs polkit nothing either).

use moss_proto::Error;

/// Most package names (or ids, states, search terms) in one request.
pub const MAX_NAMES: usize = 1024;
/// Longest package name or id accepted.
pub const MAX_NAME_BYTES: usize = 512;
/// Longest free text accepted (a URI, a comment, a search term, a key).
pub const MAX_TEXT_BYTES: usize = 4096;
/// Largest system model accepted by SyncModel (a model of thousands of packages is far less).
pub const MAX_MODEL_BYTES: usize = 1 << 20;
/// Most unfinished Moss1 transactions one non-root uid may hold.
pub const MAX_TRANSACTIONS_PER_CALLER: usize = 16;
/// Most PackageKit transaction objects one non-root uid may hold.
pub const MAX_PACKAGEKIT_PER_CALLER: usize = 32;
/// Events kept per transaction for replay; older ones are dropped (live clients got them as
/// signals, and a late client needs the recent ones).
pub const MAX_EVENTS: usize = 8192;

/// Check a list of names: how many, and how long each.
pub fn names(list: &[String], what: &str) -> Result<(), Error> {
    if list.len() > MAX_NAMES {
        return Err(Error::LimitExceeded(format!(
            "{} {what} in one request; at most {MAX_NAMES} are accepted",
            list.len()
        )));
    }
    if let Some(long) = list.iter().find(|name| name.len() > MAX_NAME_BYTES) {
        return Err(Error::LimitExceeded(format!(
            "a {what} entry of {} bytes; at most {MAX_NAME_BYTES} are accepted",
            long.len()
        )));
    }
    Ok(())
}

/// Check a count of items.
pub fn count(count: usize, what: &str) -> Result<(), Error> {
    if count > MAX_NAMES {
        return Err(Error::LimitExceeded(format!(
            "{count} {what} in one request; at most {MAX_NAMES} are accepted"
        )));
    }
    Ok(())
}

/// Check one free-text argument.
pub fn text(value: &str, what: &str) -> Result<(), Error> {
    if value.len() > MAX_TEXT_BYTES {
        return Err(Error::LimitExceeded(format!(
            "the {what} is {} bytes; at most {MAX_TEXT_BYTES} are accepted",
            value.len()
        )));
    }
    Ok(())
}

/// Check a system model's size.
pub fn model(value: &str) -> Result<(), Error> {
    if value.len() > MAX_MODEL_BYTES {
        return Err(Error::LimitExceeded(format!(
            "the system model is {} bytes; at most {MAX_MODEL_BYTES} are accepted",
            value.len()
        )));
    }
    Ok(())
}

/// The same names once each, in their first order (a request naming one package a million
/// times is answered once).
pub fn unique(list: Vec<String>) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    list.into_iter()
        .filter(|name| seen.insert(name.clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oversized_requests_are_refused_by_name() {
        let many = vec!["vim".to_owned(); MAX_NAMES + 1];
        assert!(matches!(
            names(&many, "package"),
            Err(Error::LimitExceeded(_))
        ));
        assert!(names(&many[..MAX_NAMES], "package").is_ok());
        let long = vec!["x".repeat(MAX_NAME_BYTES + 1)];
        assert!(names(&long, "package").is_err());
        assert!(text(&"u".repeat(MAX_TEXT_BYTES + 1), "URI").is_err());
        assert_eq!(unique(vec!["a".into(), "b".into(), "a".into()]), ["a", "b"]);
    }
}
