//! Packages: the list's rows and filter, and a package's details.

use gettextrs::gettext;
use moss_proto::wire::{Details, Package};

/// Whether a package matches the search text (name or summary, ignoring case). Filtering runs in
/// the list model, so it must be cheap: `needle` is already lower-case.
pub fn matches(package: &Package, needle: &str) -> bool {
    needle.is_empty()
        || package.name.to_lowercase().contains(needle)
        || package.summary.to_lowercase().contains(needle)
}

/// `version-release` of a listed package.
pub fn version(package: &Package) -> String {
    format!("{}-{}", package.version, package.release)
}

/// The details pane of a package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DetailsView {
    /// Name.
    pub name: String,
    /// `version-release`.
    pub version: String,
    /// One-line summary.
    pub summary: String,
    /// Longer description.
    pub description: String,
    /// Where it comes from: installed, or the repository.
    pub origin: String,
    /// Whether it is installed.
    pub installed: bool,
    /// Dependencies, as `kind(target)`.
    pub dependencies: Vec<String>,
    /// Files (installed packages).
    pub files: Vec<String>,
}

impl DetailsView {
    /// The view of the daemon's details. The package record travels as JSON so that new
    /// fields need no new interface; unknown or missing fields are shown empty.
    pub fn new(details: &Details) -> Self {
        let record: serde_json::Value =
            serde_json::from_str(&details.package_json).unwrap_or_default();
        let text = |name: &str| {
            record
                .get(name)
                .and_then(|value| value.as_str())
                .unwrap_or_default()
                .to_owned()
        };
        let number = |name: &str| record.get(name).and_then(|value| value.as_u64());
        let dependencies = record
            .get("depends")
            .and_then(|value| value.as_array())
            .map(|list| list.iter().map(dependency).collect())
            .unwrap_or_default();
        let installed = details.status == "installed";
        Self {
            name: text("name"),
            version: match number("release") {
                Some(release) => format!("{}-{release}", text("version")),
                None => text("version"),
            },
            summary: text("summary"),
            description: text("description"),
            origin: if installed {
                gettext("Installed")
            } else {
                details.repository.clone()
            },
            installed,
            dependencies,
            files: details.files.clone(),
        }
    }
}

/// A dependency as text, whether the record spells it as a string or as `{kind, target}`.
fn dependency(value: &serde_json::Value) -> String {
    if let Some(text) = value.as_str() {
        return text.to_owned();
    }
    let field = |name: &str| value.get(name).and_then(|field| field.as_str());
    match (field("kind"), field("target")) {
        (Some(kind), Some(target)) => format!("{}({target})", kind.to_lowercase()),
        _ => value.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn package(name: &str, summary: &str) -> Package {
        Package {
            id: name.into(),
            name: name.into(),
            version: "2.11".into(),
            release: 1,
            build_release: 1,
            summary: summary.into(),
            explicit: true,
            repository: String::new(),
        }
    }

    #[test]
    fn search_matches_name_or_summary_ignoring_case() {
        let bash = package("bash-completion", "Programmable Completion");
        assert!(matches(&bash, ""));
        assert!(matches(&bash, "bash"));
        assert!(matches(&bash, "programmable"));
        assert!(!matches(&bash, "pizza"));
        assert_eq!(version(&bash), "2.11-1");
    }

    #[test]
    fn details_read_the_package_record() {
        let details = Details {
            status: "installed".into(),
            id: "x".into(),
            explicit: true,
            repository: String::new(),
            package_json: r#"{"name":"tool","version":"1","release":2,"summary":"A tool",
                "description":"Longer","depends":[{"kind":"Name","target":"libc"},"binary(sh)"]}"#
                .into(),
            files: vec!["/usr/share/tool/release".into()],
        };
        let view = DetailsView::new(&details);
        assert_eq!(view.name, "tool");
        assert_eq!(view.version, "1-2");
        assert_eq!(view.origin, "Installed");
        assert!(view.installed);
        assert_eq!(view.dependencies, ["name(libc)", "binary(sh)"]);
        assert_eq!(view.files, ["/usr/share/tool/release"]);
    }
}
