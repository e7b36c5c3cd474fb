//! Repositories: rows of the list and the add form's checks.

use gettextrs::gettext;
use moss_proto::wire::Repository;

use crate::view::fill;

/// The subtitle of a repository row: its address and whether it is signed.
pub fn subtitle(repository: &Repository) -> String {
    let trust = if repository.signed {
        gettext("signed")
    } else {
        gettext("unsigned")
    };
    let address = if repository.root_index.is_empty() {
        repository.uri.clone()
    } else {
        repository.root_index.clone()
    };
    fill(
        "{} · {} · priority {}",
        &[&address, &trust, &repository.priority.to_string()],
    )
}

/// What is wrong with the add form, if anything: a name, a URI and either a key or an explicit
/// choice of an unsigned repository are needed, as `moss repo add` requires.
pub fn check_new(name: &str, uri: &str, key: &str, unsigned: bool) -> Result<(), String> {
    if name.trim().is_empty() || name.contains(char::is_whitespace) {
        return Err(gettext("Give the repository a name without spaces."));
    }
    if !(uri.starts_with("https://") || uri.starts_with("http://") || uri.starts_with("file://")) {
        return Err(gettext(
            "The address must start with https://, http:// or file://.",
        ));
    }
    if key.trim().is_empty() && !unsigned {
        return Err(gettext(
            "Give the repository's public key, or allow it unsigned.",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_say_signed_or_unsigned() {
        let repository = Repository {
            id: "examples".into(),
            uri: "file:///srv/repo/stone.index".into(),
            priority: 0,
            active: true,
            description: String::new(),
            signed: false,
            keys: Vec::new(),
            root_index: String::new(),
        };
        assert_eq!(
            subtitle(&repository),
            "file:///srv/repo/stone.index · unsigned · priority 0"
        );
    }

    #[test]
    fn the_add_form_needs_a_key_or_an_explicit_unsigned() {
        assert!(check_new("x", "https://example/stone.index", "RWQkey", false).is_ok());
        assert!(check_new("x", "https://example/stone.index", "", true).is_ok());
        assert!(check_new("x", "https://example/stone.index", "", false).is_err());
        assert!(check_new("a b", "https://e/x", "k", false).is_err());
        assert!(check_new("x", "/srv/stone.index", "k", false).is_err());
    }
}
