//! Rules every package layout must follow before anything of it is written.
//!
//! A stone's layout is untrusted input: a target with `..`, an absolute target, two records
//! fighting over one path or a regular file whose digest the index does not carry would let a
//! package write outside `/usr`, overwrite another package's file or install garbage. Each is
//! refused here, naming the package, the entry and the rule.

use std::collections::{HashMap, HashSet};

use stone::{Entry, IndexEntry, Layout};

/// Why a layout was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("package {package}: layout entry `{entry}` {rule}")]
pub struct LayoutViolation {
    /// The package that carries the entry.
    pub package: String,
    /// The entry's target path as written in the package.
    pub entry: String,
    /// The rule it breaks, phrased to follow the entry.
    pub rule: String,
}

/// Check a target path: relative to `/usr`, no `..`, `.` or empty components, no NUL.
pub fn check_target(target: &str) -> Result<(), &'static str> {
    if target.starts_with('/') {
        return Err("is an absolute path; packages may only place files under /usr");
    }
    if target.contains('\0') {
        return Err("contains a NUL byte");
    }
    for component in target.split('/') {
        match component {
            ".." => return Err("contains a `..` component that would leave /usr"),
            "." | "" => return Err("contains an empty or `.` component"),
            _ => {}
        }
    }
    Ok(())
}

/// Check every record of one package's layout against its index.
///
/// Returns the layouts in a safe creation order is left to the caller; this only refuses.
pub fn check_layout<'a>(
    package: &str,
    layouts: impl IntoIterator<Item = &'a Layout>,
    index: &[IndexEntry],
) -> Result<(), LayoutViolation> {
    let violation = |entry: &str, rule: String| LayoutViolation {
        package: package.to_owned(),
        entry: entry.to_owned(),
        rule,
    };
    let digests: HashSet<u128> = index.iter().map(|entry| entry.digest).collect();
    let mut seen: HashMap<&str, &Layout> = HashMap::new();
    for layout in layouts {
        let Some(target) = layout.entry.target() else {
            return Err(violation(
                "<unknown>",
                "has an unknown file type that cannot be installed".to_owned(),
            ));
        };
        check_target(target).map_err(|rule| violation(target, rule.to_owned()))?;
        if let Entry::Regular { digest, .. } = &layout.entry
            && !digests.contains(digest)
        {
            return Err(violation(
                target,
                format!("names content {digest:032x} that the package's index does not carry"),
            ));
        }
        if let Entry::Symlink { source, .. } = &layout.entry
            && source.is_empty()
        {
            return Err(violation(
                target,
                "is a symlink with an empty target".to_owned(),
            ));
        }
        if let Some(previous) = seen.insert(target, layout)
            && previous != layout
        {
            return Err(violation(
                target,
                "appears twice in the layout with different contents".to_owned(),
            ));
        }
    }
    Ok(())
}

/// File mode bits that are applied on disk: permissions only, never setuid, setgid or sticky.
pub const PERMISSION_BITS: u32 = 0o777;

#[cfg(test)]
mod tests {
    use super::*;

    fn regular(target: &str, digest: u128) -> Layout {
        Layout {
            uid: 0,
            gid: 0,
            mode: 0o100644,
            tag: 0,
            entry: Entry::Regular {
                digest,
                target: target.to_owned(),
            },
        }
    }

    #[test]
    fn hostile_targets_are_named() {
        for (target, rule) in [
            ("../etc/passwd", "`..`"),
            ("/etc/shadow", "absolute"),
            ("bin//x", "empty"),
            ("bin/./x", "empty"),
        ] {
            let index = [IndexEntry {
                start: 0,
                end: 0,
                digest: 1,
            }];
            let error = check_layout("evil", [&regular(target, 1)], &index).unwrap_err();
            let text = error.to_string();
            assert!(text.contains("package evil"), "{text}");
            assert!(text.contains(target), "{text}");
            assert!(text.contains(rule), "{text}");
        }
    }

    #[test]
    fn missing_digest_and_duplicates_are_refused() {
        let index = [IndexEntry {
            start: 0,
            end: 0,
            digest: 1,
        }];
        let error = check_layout("p", [&regular("bin/a", 2)], &index).unwrap_err();
        assert!(error.rule.contains("does not carry"));
        let error = check_layout(
            "p",
            [&regular("bin/a", 1), &regular("bin/a", 1).clone()],
            &index,
        );
        assert!(error.is_ok(), "identical duplicates are harmless");
        let mut other = regular("bin/a", 1);
        other.mode = 0o104755;
        let error = check_layout("p", [&regular("bin/a", 1), &other], &index).unwrap_err();
        assert!(error.rule.contains("twice"));
    }
}
