//! Debian packages (`.deb`) turned into stones: `boulder import-deb`.
//!
//! This is how the VM test (`tests/vm`) builds a bootable system from real, signed Debian
//! binaries. Each `.deb` is unpacked with `dpkg-deb`, its files are placed the way a stateless
//! moss system wants them, and the set is analysed together:
//!
//! * Packages own only `/usr`. `/bin`, `/sbin`, `/lib` move below `/usr` (Debian 12 is merged
//!   only on installed systems; its packages still ship the old paths); `/lib64` and `/usr/lib64`
//!   go to `/usr/lib`, which is where moss's root link `lib64 -> usr/lib` points.
//! * `/etc` and `/var` content goes to `/usr/share/factory/{etc,var}` with one
//!   `/usr/lib/tmpfiles.d/zz-deb-NAME.conf` line per file (`C`), link (`L`) or empty directory
//!   (`d`), so that systemd-tmpfiles recreates it on a system whose `/etc` and `/var` are empty.
//!   Lines are per file, not per directory, because several packages fill one directory
//!   (`/etc/pam.d`).
//! * Kernels (`/boot/vmlinuz-V`, `config-V`, `System.map-V`) go to `/usr/lib/kernel/V/`, where
//!   moss's boot management finds them.
//! * Documentation (`/usr/share/{doc,man,info,locale,lintian}`) is left out, to keep images
//!   small; anything else outside these places is left out and reported.
//! * Dependencies come from the files, as for built packages: boulder's analysis of the ELF
//!   objects (sonames, interpreters; the multiarch directory counts as a system library
//!   directory). Debian's `Depends` are not used. A dependency that no package of the set
//!   provides (a library reached only through `Recommends`) is dropped and reported, so that the
//!   set installs on its own; maintainer scripts are not run (triggers and tmpfiles do that work).

use std::{
    collections::{BTreeMap, BTreeSet},
    fs,
    os::unix::fs::{PermissionsExt, symlink},
    path::{Path, PathBuf},
    process::Command,
};

use stone::{Dependency, Package, WriteOptions};

use crate::{
    analysis::{self, Findings},
    collect::{self, EntryKind, InstalledEntry},
};

/// Converting a `.deb` failed.
#[derive(Debug, thiserror::Error)]
pub enum DebError {
    /// `dpkg-deb` could not be run or failed.
    #[error("dpkg-deb {action} {}: {message}", deb.display())]
    Tool {
        /// What was asked (`--field`, `--extract`).
        action: &'static str,
        /// The package file.
        deb: PathBuf,
        /// Its error output or the spawn error.
        message: String,
    },
    /// The control file lacks a field.
    #[error("{}: the control file has no {field} field", deb.display())]
    Control {
        /// The package file.
        deb: PathBuf,
        /// The field.
        field: &'static str,
    },
    /// Writing a stone failed.
    #[error(transparent)]
    Emit(#[from] crate::emit::EmitError),
    /// Plain I/O.
    #[error("{action} {}: {source}", path.display())]
    Io {
        /// What was done.
        action: &'static str,
        /// The path.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

fn io(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> DebError {
    let path = path.to_owned();
    move |source| DebError::Io {
        action,
        path,
        source,
    }
}

/// The fields of a Debian control file that a stone carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Control {
    /// `Package`.
    pub name: String,
    /// `Version` without its epoch (`1:1.2.13-1` becomes `1.2.13-1`): the epoch's colon would
    /// make the stone's file name read as a URI scheme.
    pub version: String,
    /// First line of `Description`.
    pub summary: String,
    /// The rest of `Description`.
    pub description: String,
    /// `Homepage`, when present.
    pub homepage: String,
}

/// Parse the output of `dpkg-deb --field` (RFC 822 style, continuation lines indented).
pub fn parse_control(text: &str) -> BTreeMap<String, String> {
    let mut fields: BTreeMap<String, String> = BTreeMap::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        if line.starts_with([' ', '\t']) {
            if let Some(field) = current.as_ref().and_then(|name| fields.get_mut(name)) {
                let line = line.trim();
                field.push('\n');
                field.push_str(if line == "." { "" } else { line });
            }
        } else if let Some((name, value)) = line.split_once(':') {
            current = Some(name.trim().to_owned());
            fields.insert(name.trim().to_owned(), value.trim().to_owned());
        }
    }
    fields
}

fn dpkg_deb(
    action: &'static str,
    deb: &Path,
    args: &[&std::ffi::OsStr],
) -> Result<String, DebError> {
    let output = Command::new("dpkg-deb")
        .arg(action)
        .arg(deb)
        .args(args)
        .output()
        .map_err(|error| DebError::Tool {
            action,
            deb: deb.to_owned(),
            message: error.to_string(),
        })?;
    if !output.status.success() {
        return Err(DebError::Tool {
            action,
            deb: deb.to_owned(),
            message: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        });
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// Read a package's control fields.
pub fn read_control(deb: &Path) -> Result<Control, DebError> {
    let fields = parse_control(&dpkg_deb("--field", deb, &[])?);
    let field = |name: &'static str| {
        fields.get(name).cloned().ok_or(DebError::Control {
            deb: deb.to_owned(),
            field: name,
        })
    };
    let version = field("Version")?;
    let description = fields.get("Description").cloned().unwrap_or_default();
    let (summary, long) = description.split_once('\n').unwrap_or((&description, ""));
    Ok(Control {
        name: field("Package")?,
        version: version
            .split_once(':')
            .map_or(version.as_str(), |(_, rest)| rest)
            .to_owned(),
        summary: summary.to_owned(),
        description: long.trim().to_owned(),
        homepage: fields.get("Homepage").cloned().unwrap_or_default(),
    })
}

/// Where a path of a `.deb` goes on a moss system.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placement {
    /// Below `/usr`, at this absolute path.
    Usr(String),
    /// State outside `/usr` (`/etc/...`, `/var/...`): kept in `/usr/share/factory` and recreated
    /// by tmpfiles.
    Factory(String),
    /// Left out (documentation, or a place packages cannot own).
    Dropped,
}

const DOCUMENTATION: [&str; 5] = [
    "/usr/share/doc",
    "/usr/share/man",
    "/usr/share/info",
    "/usr/share/locale",
    "/usr/share/lintian",
];

/// Place one absolute path of a `.deb`.
pub fn place(path: &str) -> Placement {
    let under = |prefix: &str| path == prefix || path.starts_with(&format!("{prefix}/"));
    if DOCUMENTATION.iter().any(|prefix| under(prefix)) {
        return Placement::Dropped;
    }
    for (old, new) in [
        ("/usr/lib64", "/usr/lib"),
        ("/lib64", "/usr/lib"),
        ("/lib32", "/usr/lib32"),
        ("/lib", "/usr/lib"),
        ("/bin", "/usr/bin"),
        ("/sbin", "/usr/sbin"),
    ] {
        if under(old) {
            return Placement::Usr(format!("{new}{}", &path[old.len()..]));
        }
    }
    if under("/usr") {
        return Placement::Usr(path.to_owned());
    }
    if under("/etc") || under("/var") {
        return Placement::Factory(path.to_owned());
    }
    if let Some(file) = path.strip_prefix("/boot/") {
        for (prefix, name) in [
            ("vmlinuz-", "vmlinuz"),
            ("config-", "config"),
            ("System.map-", "System.map"),
        ] {
            if let Some(version) = file.strip_prefix(prefix) {
                return Placement::Usr(format!("/usr/lib/kernel/{version}/{name}"));
            }
        }
    }
    Placement::Dropped
}

/// A relative link whose target moves (`/lib64/x -> ../lib/...`) is made absolute to where the
/// target now is; other links are kept as they are.
fn link_target(path: &str, target: &str) -> String {
    if target.starts_with('/') {
        return target.to_owned();
    }
    let parent = Path::new(path).parent().unwrap_or(Path::new("/"));
    let old = analysis::normalise(&parent.join(target).to_string_lossy())
        .to_string_lossy()
        .into_owned();
    match place(&old) {
        Placement::Usr(new) if new != old || place(path) != Placement::Usr(path.to_owned()) => new,
        _ => target.to_owned(),
    }
}

/// One package unpacked and placed, ready to analyse.
#[derive(Debug, Clone)]
pub struct Placed {
    /// Its control fields.
    pub control: Control,
    /// The directory holding its `usr/`.
    pub root: PathBuf,
    /// Paths left out.
    pub dropped: Vec<String>,
}

/// Unpack `deb` below `work` and place its files in `work/NAME/root/usr`.
pub fn unpack_and_place(deb: &Path, work: &Path) -> Result<Placed, DebError> {
    let control = read_control(deb)?;
    // Keyed by version too: one set may hold several versions of a package (repository revisions).
    let base = work.join(format!("{}_{}", control.name, control.version));
    if base.exists() {
        fs::remove_dir_all(&base).map_err(io("removing", &base))?;
    }
    let raw = base.join("raw");
    let root = base.join("root");
    fs::create_dir_all(&raw).map_err(io("creating", &raw))?;
    fs::create_dir_all(root.join("usr")).map_err(io("creating", &root))?;
    dpkg_deb("--extract", deb, &[raw.as_os_str()])?;
    let entries = collect::walk(&raw).map_err(io("reading", &raw))?;
    let mut dropped = Vec::new();
    let mut tmpfiles = Vec::new();
    // Debian's directory modes (0700, setgid 2775, ...) are applied once everything is in place:
    // a directory created with its final mode could refuse the files that go below it. The walk
    // lists a directory after its contents, so it usually exists already, made as a parent.
    let mut directory_modes = BTreeMap::new();
    for entry in entries {
        let (destination, factory) = match place(&entry.path) {
            Placement::Usr(path) => (path, None),
            Placement::Factory(path) => (format!("/usr/share/factory{path}"), Some(path)),
            Placement::Dropped => {
                dropped.push(entry.path);
                continue;
            }
        };
        let on_disk = root.join(destination.trim_start_matches('/'));
        if let Some(parent) = on_disk.parent() {
            fs::create_dir_all(parent).map_err(io("creating", parent))?;
        }
        if matches!(entry.kind, EntryKind::Directory) && !on_disk.is_symlink() {
            let mode = entry.mode & 0o7777;
            match &factory {
                // tmpfiles makes it with its mode; the factory copy only carries its files.
                Some(path) => tmpfiles.push(format!("d {path} {mode:04o} - - -")),
                None => {
                    fs::create_dir_all(&on_disk).map_err(io("creating", &on_disk))?;
                    // `/lib/x` and `/usr/lib/x` both land on `/usr/lib/x`: the first mode stays.
                    directory_modes.entry(on_disk).or_insert(mode);
                }
            }
            continue;
        }
        if on_disk.symlink_metadata().is_ok() {
            // The same file shipped twice (`/lib/x` and `/usr/lib/x`): the first one stays.
            dropped.push(entry.path);
            continue;
        }
        match &entry.kind {
            EntryKind::Regular(_) => {
                fs::hard_link(&entry.host_path, &on_disk).map_err(io("linking", &on_disk))?;
                if let Some(path) = &factory {
                    tmpfiles.push(format!("C {path} - - - - {destination}"));
                }
            }
            EntryKind::Symlink(target) => {
                let target = link_target(&entry.path, target);
                match &factory {
                    Some(path) => tmpfiles.push(format!("L {path} - - - - {target}")),
                    None => symlink(&target, &on_disk).map_err(io("linking", &on_disk))?,
                }
            }
            // Devices, sockets and fifos, and a directory where a link already is.
            _ => dropped.push(entry.path),
        }
    }
    if !tmpfiles.is_empty() {
        let dir = root.join("usr/lib/tmpfiles.d");
        fs::create_dir_all(&dir).map_err(io("creating", &dir))?;
        // Sorted after native snippets: for a path two files name, systemd-tmpfiles applies the
        // first file's line, and a distribution's own rules (`L /var/run - - - - ../run`) must
        // win over the bare directories a package's data carries (base-files ships /var/run).
        let path = dir.join(format!("zz-deb-{}.conf", control.name));
        let text = format!(
            "# /etc and /var content of the Debian package {}, recreated from /usr/share/factory\n{}\n",
            control.name,
            tmpfiles.join("\n")
        );
        fs::write(&path, text).map_err(io("writing", &path))?;
    }
    // Deepest first, so that a restrictive parent does not stop an unprivileged run.
    for (directory, mode) in directory_modes.iter().rev() {
        fs::set_permissions(directory, fs::Permissions::from_mode(*mode))
            .map_err(io("setting the mode of", directory))?;
    }
    Ok(Placed {
        control,
        root,
        dropped,
    })
}

/// What a conversion produced.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// The stones written.
    pub stones: Vec<PathBuf>,
    /// Dependencies dropped because nothing in the set provides them, by package.
    pub unsatisfied: BTreeMap<String, BTreeSet<String>>,
    /// Paths left out, by package.
    pub dropped: BTreeMap<String, Vec<String>>,
}

/// Convert a set of `.deb` files into stones in `out`, using `work` for unpacked trees.
/// `release` is the stones' release number (bump it to publish a new revision).
pub fn convert(
    debs: &[PathBuf],
    work: &Path,
    out: &Path,
    release: u64,
    options: WriteOptions,
) -> Result<Report, DebError> {
    fs::create_dir_all(out).map_err(io("creating", out))?;
    let mut analysed: Vec<(Placed, Vec<InstalledEntry>, Findings)> = Vec::new();
    for deb in debs {
        let placed = unpack_and_place(deb, work)?;
        let entries = collect::walk(&placed.root).map_err(io("reading", &placed.root))?;
        let mut findings = Findings::default();
        for entry in &entries {
            let found = analysis::analyse(entry, &placed.root, false);
            findings.provides.extend(found.provides);
            findings.depends.extend(found.depends);
        }
        analysed.push((placed, entries, findings));
    }
    let provided: BTreeSet<&Dependency> = analysed
        .iter()
        .flat_map(|(_, _, findings)| &findings.provides)
        .collect();
    let mut report = Report::default();
    for (placed, entries, findings) in &analysed {
        let mut depends = BTreeSet::new();
        for dependency in &findings.depends {
            if findings.provides.contains(dependency) {
                continue;
            }
            if provided.contains(dependency) {
                depends.insert(dependency.clone());
            } else {
                report
                    .unsatisfied
                    .entry(placed.control.name.clone())
                    .or_default()
                    .insert(dependency.to_string());
            }
        }
        let control = &placed.control;
        let meta = Package {
            name: control.name.clone(),
            version: control.version.clone(),
            release,
            build_release: 1,
            architecture: "x86_64".to_owned(),
            summary: control.summary.clone(),
            description: control.description.clone(),
            homepage: control.homepage.clone(),
            licenses: Vec::new(),
            source_id: control.name.clone(),
            depends: depends.into_iter().collect(),
            provides: findings.provides.iter().cloned().collect(),
            ..Package::default()
        };
        let path = out.join(meta.file_name());
        let below_usr = entries.iter().filter(|entry| entry.path != "/usr");
        crate::emit::write_stone(&meta, below_usr, &path, options)?;
        report.stones.push(path);
        if !placed.dropped.is_empty() {
            report
                .dropped
                .insert(control.name.clone(), placed.dropped.clone());
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::{Placement, link_target, parse_control, place};

    #[test]
    fn places_debian_paths_below_usr() {
        let usr = |path: &str| Placement::Usr(path.to_owned());
        assert_eq!(place("/bin/bash"), usr("/usr/bin/bash"));
        assert_eq!(
            place("/lib/x86_64-linux-gnu/libc.so.6"),
            usr("/usr/lib/x86_64-linux-gnu/libc.so.6")
        );
        assert_eq!(
            place("/lib64/ld-linux-x86-64.so.2"),
            usr("/usr/lib/ld-linux-x86-64.so.2")
        );
        assert_eq!(place("/libexec/x"), Placement::Dropped);
        assert_eq!(
            place("/boot/vmlinuz-6.1.0-1-cloud-amd64"),
            usr("/usr/lib/kernel/6.1.0-1-cloud-amd64/vmlinuz")
        );
        assert_eq!(
            place("/etc/pam.d/login"),
            Placement::Factory("/etc/pam.d/login".to_owned())
        );
        assert_eq!(place("/usr/share/doc/bash/copyright"), Placement::Dropped);
        assert_eq!(place("/usr/share/docs"), usr("/usr/share/docs"));
    }

    #[test]
    fn multiarch_directories_are_system_library_directories() {
        use crate::analysis::is_system_library_dir;
        assert!(is_system_library_dir("/usr/lib"));
        assert!(is_system_library_dir("/usr/lib64"));
        assert!(is_system_library_dir("/usr/lib/x86_64-linux-gnu"));
        assert!(is_system_library_dir("/usr/lib/arm-linux-gnueabihf"));
        assert!(!is_system_library_dir("/usr/lib/x86_64-linux-gnu/systemd"));
        assert!(!is_system_library_dir("/usr/lib/firefox"));
        assert!(!is_system_library_dir("/usr/libexec"));
    }

    #[test]
    fn relative_links_follow_moved_targets() {
        assert_eq!(
            link_target("/lib64/ld.so", "../lib/x86_64-linux-gnu/ld.so"),
            "/usr/lib/x86_64-linux-gnu/ld.so"
        );
        assert_eq!(link_target("/usr/bin/sh", "dash"), "dash");
        assert_eq!(link_target("/usr/bin/x", "/bin/y"), "/bin/y");
    }

    #[test]
    fn control_fields_with_continuations() {
        let fields =
            parse_control("Package: a\nVersion: 1:2-3\nDescription: short\n long\n .\n more\n");
        assert_eq!(fields["Package"], "a");
        assert_eq!(fields["Description"], "short\nlong\n\nmore");
    }
}
