//! Analysis of installed files: providers and dependencies from ELF objects, pkg-config files,
//! `/usr/bin` and `/usr/sbin`, cmake config files and python metadata.
//!
//! Everything here reads files on the host side; tools that change files (objcopy, strip) run in
//! the build container from a script that [`strip_script`] writes.

use std::{
    collections::BTreeSet,
    path::{Component, Path, PathBuf},
};

use goblin::elf::Elf;
use stone::{Dependency, DependencyKind};

use crate::collect::{EntryKind, InstalledEntry};

/// What one file contributes to its package.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Findings {
    /// Providers.
    pub provides: BTreeSet<Dependency>,
    /// Dependencies.
    pub depends: BTreeSet<Dependency>,
    /// Whether the file is left out of the package (libtool archives).
    pub drop: bool,
}

/// The ELF facts analysis needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ElfInfo {
    /// ISA tag: `x86_64`, `386`, `aarch64` ...
    pub isa: String,
    /// ELF64.
    pub is_64: bool,
    /// DT_SONAME.
    pub soname: Option<String>,
    /// DT_NEEDED entries.
    pub needed: Vec<String>,
    /// RUNPATH then RPATH entries.
    pub search_paths: Vec<String>,
    /// The interpreter (`.interp`).
    pub interpreter: Option<String>,
    /// GNU build-id as hex.
    pub build_id: Option<String>,
}

/// Read the ELF facts of a file; `None` when it is not an ELF object.
pub fn elf_info(path: &Path) -> Option<ElfInfo> {
    let mut file = std::fs::File::open(path).ok()?;
    let mut magic = [0u8; 4];
    std::io::Read::read_exact(&mut file, &mut magic).ok()?;
    if magic != *b"\x7fELF" {
        return None;
    }
    let bytes = std::fs::read(path).ok()?;
    let elf = Elf::parse(&bytes).ok()?;
    let isa = goblin::elf::header::machine_to_str(elf.header.e_machine).to_ascii_lowercase();
    let build_id = elf
        .iter_note_sections(&bytes, Some(".note.gnu.build-id"))
        .into_iter()
        .flatten()
        .flatten()
        .find(|note| note.n_type == goblin::elf::note::NT_GNU_BUILD_ID && note.name == "GNU")
        .map(|note| {
            note.desc
                .iter()
                .map(|byte| format!("{byte:02x}"))
                .collect::<String>()
        });
    let mut search_paths: Vec<String> =
        elf.runpaths.iter().map(|path| (*path).to_owned()).collect();
    search_paths.extend(elf.rpaths.iter().map(|path| (*path).to_owned()));
    Some(ElfInfo {
        isa,
        is_64: elf.is_64,
        soname: elf.soname.map(str::to_owned),
        needed: elf
            .libraries
            .iter()
            .map(|name| (*name).to_owned())
            .collect(),
        search_paths: search_paths
            .iter()
            .flat_map(|paths| paths.split(':'))
            .filter(|path| !path.is_empty())
            .map(str::to_owned)
            .collect(),
        interpreter: elf.interpreter.map(str::to_owned),
        build_id,
    })
}

fn dependency(kind: DependencyKind, target: impl Into<String>) -> Dependency {
    Dependency {
        kind,
        target: target.into(),
    }
}

/// Whether a path is a split debug file (`*.debug` below a `debug` directory).
pub fn is_debug_file(path: &str) -> bool {
    path.ends_with(".debug") && path.split('/').any(|component| component == "debug")
}

/// Analyse one installed entry. `install_root` is the host path of `/` of the install tree.
pub fn analyse(entry: &InstalledEntry, install_root: &Path, lastrip: bool) -> Findings {
    let mut findings = Findings::default();
    let path = entry.path.as_str();
    let file_name = path.rsplit('/').next().unwrap_or(path);
    if lastrip
        && path.ends_with(".la")
        && (path.starts_with("/usr/lib/") || path.starts_with("/usr/lib32/"))
    {
        findings.drop = true;
        return findings;
    }
    if let Some(parent) = path.rsplit_once('/').map(|(parent, _)| parent) {
        if parent == "/usr/bin" {
            findings
                .provides
                .insert(dependency(DependencyKind::Binary, file_name));
        } else if parent == "/usr/sbin" {
            findings
                .provides
                .insert(dependency(DependencyKind::SystemBinary, file_name));
        }
    }
    let EntryKind::Regular(_) = entry.kind else {
        return findings;
    };
    if !is_debug_file(path)
        && let Some(elf) = elf_info(&entry.host_path)
    {
        analyse_elf(path, &elf, install_root, &mut findings);
        return findings;
    }
    if file_name.ends_with(".pc") && path.split('/').any(|component| component == "pkgconfig") {
        analyse_pkgconfig(entry, install_root, &mut findings);
    }
    if (file_name == "METADATA" && parent_ends_with(path, ".dist-info"))
        || (file_name == "PKG-INFO" && parent_ends_with(path, ".egg-info"))
    {
        analyse_python(entry, &mut findings);
    }
    if let Some(name) = file_name
        .strip_suffix("Config.cmake")
        .filter(|stem| !stem.ends_with('-'))
        .or_else(|| file_name.strip_suffix("-config.cmake"))
        && !name.is_empty()
    {
        findings
            .provides
            .insert(dependency(DependencyKind::CMake, name));
    }
    findings
}

fn parent_ends_with(path: &str, suffix: &str) -> bool {
    path.rsplit('/')
        .nth(1)
        .is_some_and(|parent| parent.ends_with(suffix))
}

/// Remove the first `count` components (`/`, `usr`, `lib` ...) of an absolute path.
fn strip_components(path: &str, count: usize) -> String {
    Path::new(path)
        .components()
        .skip(count)
        .map(|component| component.as_os_str().to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join("/")
}

fn analyse_elf(path: &str, elf: &ElfInfo, install_root: &Path, findings: &mut Findings) {
    let isa = &elf.isa;
    let own_dir = Path::new(path).parent().unwrap_or(Path::new("/"));
    for needed in &elf.needed {
        // A library found through the object's own dir or its RUNPATH/RPATH is named by its
        // path below /usr/lib, so that private libraries do not pose as system ones.
        let mut search = vec![own_dir.to_path_buf()];
        search.extend(
            elf.search_paths
                .iter()
                .map(|entry| normalise(&entry.replace("$ORIGIN", &own_dir.to_string_lossy()))),
        );
        let found = search.iter().find_map(|dir| {
            let candidate = dir.join(needed);
            let on_host = install_root.join(candidate.strip_prefix("/").unwrap_or(&candidate));
            on_host
                .exists()
                .then(|| candidate.to_string_lossy().into_owned())
        });
        let target = match found {
            Some(found) if is_system_library_dir(parent_of(&found)) => needed.clone(),
            Some(found) if found.starts_with("/usr/lib") => strip_components(&found, 3),
            _ => needed.clone(),
        };
        findings.depends.insert(dependency(
            DependencyKind::Soname,
            format!("{target}({isa})"),
        ));
    }
    let file_name = path.rsplit('/').next().unwrap_or(path);
    if file_name.contains(".so") {
        let soname = elf.soname.clone().unwrap_or_else(|| file_name.to_owned());
        let depth = Path::new(path).components().count();
        let provided = if depth == 4 || is_system_library_dir(parent_of(path)) {
            soname.clone()
        } else {
            let parent = Path::new(path)
                .parent()
                .map(|p| p.to_string_lossy().into_owned())
                .unwrap_or_default();
            format!("{}/{soname}", strip_components(&parent, 3))
        };
        findings.provides.insert(dependency(
            DependencyKind::Soname,
            format!("{provided}({isa})"),
        ));
        if soname.starts_with("ld-") && path.starts_with("/usr/lib") {
            let candidates = if elf.is_64 {
                [
                    format!("/usr/lib64/{soname}"),
                    format!("/lib64/{soname}"),
                    format!("/lib/{soname}"),
                    path.to_owned(),
                ]
            } else {
                [
                    format!("/usr/lib/{soname}"),
                    format!("/lib32/{soname}"),
                    format!("/lib/{soname}"),
                    path.to_owned(),
                ]
            };
            for candidate in candidates {
                findings.provides.insert(dependency(
                    DependencyKind::Interpreter,
                    format!("{candidate}({isa})"),
                ));
                findings.provides.insert(dependency(
                    DependencyKind::Soname,
                    format!("{candidate}({isa})"),
                ));
            }
        }
    }
    if let Some(interpreter) = &elf.interpreter {
        findings.depends.insert(dependency(
            DependencyKind::Interpreter,
            format!("{interpreter}({isa})"),
        ));
    }
}

fn parent_of(path: &str) -> &str {
    path.rsplit_once('/').map_or("/", |(parent, _)| parent)
}

/// Whether the dynamic linker searches `dir` by default, so that a library there is known by its
/// bare soname: `/usr/lib`, `/usr/lib32`, `/usr/lib64`, and the Debian multiarch directories
/// `/usr/lib/<triplet>` (`x86_64-linux-gnu`, `i386-linux-gnu`, `aarch64-linux-gnu` ...), so that
/// packages converted from Debian resolve against each other as Serpent's do.
pub fn is_system_library_dir(dir: &str) -> bool {
    match dir.strip_prefix("/usr/lib") {
        Some("" | "32" | "64") => true,
        Some(rest) => rest.strip_prefix('/').is_some_and(|triplet| {
            !triplet.contains('/')
                && triplet.split('-').nth(1) == Some("linux")
                && triplet.split('-').count() == 3
                && triplet.starts_with(|c: char| c.is_ascii_alphanumeric())
        }),
        None => false,
    }
}

/// `path` made absolute with `..` and `.` resolved lexically (no file system access).
pub(crate) fn normalise(path: &str) -> PathBuf {
    let mut out = PathBuf::from("/");
    for component in Path::new(path).components() {
        match component {
            Component::Normal(part) => out.push(part),
            Component::ParentDir => {
                out.pop();
            }
            _ => {}
        }
    }
    out
}

/// `Requires` and `Requires.private` of a `.pc` file, read directly (no pkg-config binary
/// needed): module names without version constraints.
pub fn pkgconfig_requires(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in text.lines() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        if !matches!(key.trim(), "Requires" | "Requires.private") {
            continue;
        }
        let mut skip_next = false;
        for word in value
            .split([',', ' ', '\t'])
            .filter(|word| !word.is_empty())
        {
            if skip_next {
                skip_next = false;
                continue;
            }
            if matches!(word, "=" | "<" | ">" | "<=" | ">=" | "!=") {
                skip_next = true;
                continue;
            }
            if word.starts_with(|c: char| c.is_ascii_digit()) || word.starts_with("${") {
                continue;
            }
            out.push(word.to_owned());
        }
    }
    out
}

fn analyse_pkgconfig(entry: &InstalledEntry, install_root: &Path, findings: &mut Findings) {
    let path = entry.path.as_str();
    let stem = path
        .rsplit('/')
        .next()
        .unwrap_or(path)
        .trim_end_matches(".pc");
    let is_32 = path.split('/').any(|component| component == "lib32");
    let kind = if is_32 {
        DependencyKind::PkgConfig32
    } else {
        DependencyKind::PkgConfig
    };
    findings.provides.insert(dependency(kind, stem));
    let text = std::fs::read_to_string(&entry.host_path).unwrap_or_default();
    let dir = entry.host_path.parent().unwrap_or(install_root);
    for module in pkgconfig_requires(&text) {
        let kind = if is_32
            && (dir.join(format!("{module}.pc")).exists()
                || install_root
                    .join(format!("usr/lib32/pkgconfig/{module}.pc"))
                    .exists()
                || Path::new(&format!("/usr/lib32/pkgconfig/{module}.pc")).exists())
        {
            DependencyKind::PkgConfig32
        } else {
            DependencyKind::PkgConfig
        };
        findings.depends.insert(dependency(kind, module));
    }
}

/// PEP 503 normalisation: lowercase, runs of `-`, `_`, `.` become one `-`.
pub fn pep503(name: &str) -> String {
    let mut out = String::new();
    let mut separator = false;
    for c in name.trim().chars() {
        if matches!(c, '-' | '_' | '.') {
            separator = true;
        } else {
            if separator && !out.is_empty() {
                out.push('-');
            }
            separator = false;
            out.push(c.to_ascii_lowercase());
        }
    }
    out
}

fn analyse_python(entry: &InstalledEntry, findings: &mut Findings) {
    let text = std::fs::read_to_string(&entry.host_path).unwrap_or_default();
    for line in text.lines() {
        if line.is_empty() {
            break; // the body starts after the headers
        }
        if let Some(name) = line.strip_prefix("Name:") {
            findings
                .provides
                .insert(dependency(DependencyKind::Python, pep503(name)));
        } else if let Some(requirement) = line.strip_prefix("Requires-Dist:") {
            // Requirements with extras or environment markers need a marker evaluator; only
            // unconditional ones are recorded.
            if requirement.contains(';') || requirement.contains('[') {
                continue;
            }
            let name: String = requirement
                .trim()
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
                .collect();
            if !name.is_empty() {
                findings
                    .depends
                    .insert(dependency(DependencyKind::Python, pep503(&name)));
            }
        }
    }
}

/// One ELF file to split and strip.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StripJob {
    /// Installed path (`/usr/lib/libx.so.1`).
    pub path: String,
    /// Where its debug info goes (`/usr/lib/debug/.build-id/ab/cdef.debug`), when splitting.
    pub debug_path: Option<String>,
    /// Strip everything (binaries) rather than only debug info and unneeded symbols.
    pub full_strip: bool,
}

/// Which files to split and strip: ELF files with a build-id (without one nothing can be named).
pub fn strip_jobs(entries: &[InstalledEntry], debug: bool, strip: bool) -> Vec<StripJob> {
    let mut jobs = Vec::new();
    let mut seen_ids = BTreeSet::new();
    for entry in entries {
        if !matches!(entry.kind, EntryKind::Regular(_)) || is_debug_file(&entry.path) {
            continue;
        }
        let Some(elf) = elf_info(&entry.host_path) else {
            continue;
        };
        let Some(id) = elf.build_id.filter(|id| id.len() > 2) else {
            continue;
        };
        let lib = if elf.is_64 { "lib" } else { "lib32" };
        let debug_path = (debug && seen_ids.insert(id.clone()))
            .then(|| format!("/usr/{lib}/debug/.build-id/{}/{}.debug", &id[..2], &id[2..]));
        let parent = entry.path.rsplit('/').nth(1).unwrap_or_default();
        if debug_path.is_none() && !strip {
            continue;
        }
        jobs.push(StripJob {
            path: entry.path.clone(),
            debug_path,
            full_strip: strip && matches!(parent, "bin" | "sbin"),
        });
    }
    if !strip {
        for job in &mut jobs {
            job.full_strip = false;
        }
    }
    jobs
}

/// A bash script that splits and strips in the build root (`install_root` is where the install
/// tree is mounted in the container). Failures of the tools stop the build: a package with
/// half-stripped files is worse than none.
pub fn strip_script(jobs: &[StripJob], install_root: &str, llvm: bool, strip: bool) -> String {
    let mut script = String::from("set -o errexit -o nounset\n");
    let (objcopy, stripper) = if llvm {
        ("llvm-objcopy", "llvm-strip")
    } else {
        ("objcopy", "strip")
    };
    // Fall back to the other binutils when the build root lacks the toolchain's own.
    script.push_str(&format!(
        "OBJCOPY=$(command -v {objcopy} || command -v objcopy || command -v llvm-objcopy)\n\
         STRIP=$(command -v {stripper} || command -v strip || command -v llvm-strip)\n"
    ));
    for job in jobs {
        let file = format!("{install_root}{}", job.path);
        if let Some(debug_path) = &job.debug_path {
            let debug = format!("{install_root}{debug_path}");
            script.push_str(&format!(
                "if [ ! -e '{debug}' ]; then mkdir -p \"$(dirname '{debug}')\"; \"$OBJCOPY\" --only-keep-debug '{file}' '{debug}'; chmod 0644 '{debug}'; \"$OBJCOPY\" --add-gnu-debuglink='{debug}' '{file}'; fi\n"
            ));
        }
        if strip {
            if job.full_strip {
                script.push_str(&format!("\"$STRIP\" '{file}'\n"));
            } else {
                script.push_str(&format!("\"$STRIP\" -g --strip-unneeded '{file}'\n"));
            }
        }
    }
    script
}
