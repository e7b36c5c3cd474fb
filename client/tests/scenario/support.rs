//! Helpers of the end-to-end scenarios: the corpus generator, the `moss` binary in direct mode,
//! what the generated stones declare (from `moss inspect --format json`), and a check of an
//! installed `/usr` against those declarations with digests computed independently of moss
//! (Python's `xxhash`, which the corpus generator needs anyway).

#![allow(clippy::print_stderr, dead_code)]

use std::{
    collections::{BTreeMap, BTreeSet},
    ffi::OsStr,
    fs,
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    process::{Command, Output, Stdio},
};

use serde_json::Value;

/// The `shared/` directory: the nearest ancestor of the manifest directory holding
/// `shared/fixtures`.
pub fn shared() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .map(|dir| dir.join("shared"))
        .find(|shared| shared.join("fixtures").is_dir())
        .expect("an ancestor of CARGO_MANIFEST_DIR holds shared/fixtures")
}

/// Announce a step (shown when a test fails).
pub fn step(text: &str) {
    eprintln!("==> {text}");
}

/// Generate a synthetic corpus with `stonegen.py` (no index: `moss index` writes it).
pub fn generate(out: &Path, packages: usize, seed: u64, files_per_package: usize, revision: u32) {
    let mut command = Command::new("python3");
    command
        .arg(shared().join("bench/stonegen.py"))
        .arg("--out")
        .arg(out)
        .args(["--packages", &packages.to_string()])
        .args(["--seed", &seed.to_string()])
        .args(["--files-per-package", &files_per_package.to_string()])
        .args(["--jobs", "2", "--no-index", "--quiet"]);
    if revision > 0 {
        command.args(["--revision", &revision.to_string()]);
    }
    let output = command.stdin(Stdio::null()).output().expect("python3 runs");
    assert!(
        output.status.success(),
        "stonegen failed:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// One package of `corpus.json`.
#[derive(Debug, Clone)]
pub struct CorpusPackage {
    /// Package name.
    pub name: String,
    /// Its `.stone` file name.
    pub file: String,
    /// Dependencies (`name` or `kind(target)`).
    pub depends: Vec<String>,
    /// Providers (`kind(target)`).
    pub provides: Vec<String>,
}

/// The package list of a generated corpus.
#[derive(Debug, Clone)]
pub struct Corpus {
    /// Every package.
    pub packages: Vec<CorpusPackage>,
}

impl Corpus {
    /// Read `DIR/corpus.json`.
    pub fn load(dir: &Path) -> Self {
        let text = fs::read_to_string(dir.join("corpus.json")).expect("corpus.json");
        let json: Value = serde_json::from_str(&text).expect("corpus.json is JSON");
        let strings = |value: &Value| -> Vec<String> {
            value
                .as_array()
                .map(|list| {
                    list.iter()
                        .map(|item| item.as_str().unwrap().to_owned())
                        .collect()
                })
                .unwrap_or_default()
        };
        let packages = json["package_list"]
            .as_array()
            .expect("corpus.json has package_list")
            .iter()
            .map(|package| CorpusPackage {
                name: package["name"].as_str().unwrap().to_owned(),
                file: package["file"].as_str().unwrap().to_owned(),
                depends: strings(&package["depends"]),
                provides: strings(&package["provides"]),
            })
            .collect();
        Self { packages }
    }

    /// Every package name.
    pub fn names(&self) -> BTreeSet<String> {
        self.packages
            .iter()
            .map(|package| package.name.clone())
            .collect()
    }

    /// The package called `name`.
    pub fn package(&self, name: &str) -> &CorpusPackage {
        self.packages
            .iter()
            .find(|package| package.name == name)
            .unwrap_or_else(|| panic!("{name} is not in the corpus"))
    }

    /// The one package satisfying a dependency (the synthetic corpora have one provider per
    /// dependency, which makes the expected resolution unambiguous).
    pub fn provider(&self, dependency: &str) -> &str {
        let plain = dependency
            .strip_prefix("name(")
            .and_then(|rest| rest.strip_suffix(')'))
            .unwrap_or(dependency);
        let providers: Vec<&str> = self
            .packages
            .iter()
            .filter(|package| {
                package.name == plain
                    || package
                        .provides
                        .iter()
                        .any(|provided| provided == dependency)
            })
            .map(|package| package.name.as_str())
            .collect();
        assert_eq!(
            providers.len(),
            1,
            "the corpus should have exactly one provider of {dependency}: {providers:?}"
        );
        providers[0]
    }

    /// `names` and everything they need, transitively.
    pub fn closure<'a>(&self, names: impl IntoIterator<Item = &'a str>) -> BTreeSet<String> {
        let mut closure = BTreeSet::new();
        let mut queue: Vec<String> = names.into_iter().map(str::to_owned).collect();
        while let Some(name) = queue.pop() {
            if !closure.insert(name.clone()) {
                continue;
            }
            for dependency in &self.package(&name).depends {
                queue.push(self.provider(dependency).to_owned());
            }
        }
        closure
    }

    /// Packages nothing else depends on, sorted by name.
    pub fn leaves(&self) -> Vec<String> {
        let needed: BTreeSet<&str> = self
            .packages
            .iter()
            .flat_map(|package| package.depends.iter())
            .map(|dependency| self.provider(dependency))
            .collect();
        self.packages
            .iter()
            .map(|package| package.name.clone())
            .filter(|name| !needed.contains(name.as_str()))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect()
    }
}

/// One layout entry, relative to `/usr`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    /// A directory.
    Directory,
    /// A regular file: XXH3-128 (32 hex digits) and full layout mode.
    Regular {
        /// The digest.
        digest: String,
        /// The layout's `st_mode`.
        mode: u32,
    },
    /// A symlink and its text.
    Symlink(String),
}

/// What one `.stone` declares.
#[derive(Debug, Clone)]
pub struct Stone {
    /// The file.
    pub path: PathBuf,
    /// Package name.
    pub name: String,
    /// Version text.
    pub version: String,
    /// Release number.
    pub release: u64,
    /// Layout by path relative to `/usr`.
    pub layout: BTreeMap<String, Node>,
}

/// Inspect every `.stone` in `dir` with `moss inspect --format json`; by package name.
pub fn inspect_stones(dir: &Path) -> BTreeMap<String, Stone> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .expect("corpus directory")
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension() == Some(OsStr::new("stone")))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no stones in {}", dir.display());
    let mut command = moss_command();
    command.args(["inspect", "--format", "json"]).args(&files);
    let json = parse_json(&checked(&mut command, "inspect"));
    let reports = match json {
        Value::Array(reports) => reports,
        single => vec![single],
    };
    reports
        .iter()
        .map(|report| {
            let meta = &report["packages"][0];
            let mut layout = BTreeMap::new();
            for entry in report["layout"]
                .as_array()
                .expect("a binary stone has a layout")
            {
                let path = entry["path"].as_str().unwrap();
                let Some(relative) = path.strip_prefix("/usr/") else {
                    assert_eq!(path, "/usr", "layout path outside /usr");
                    continue;
                };
                let node = match entry["type"].as_str().unwrap() {
                    "directory" => Node::Directory,
                    "regular" => Node::Regular {
                        digest: entry["digest"].as_str().unwrap().to_owned(),
                        mode: entry["mode"].as_u64().unwrap() as u32,
                    },
                    "symlink" => Node::Symlink(entry["target"].as_str().unwrap().to_owned()),
                    other => panic!("unexpected layout type {other} in {path}"),
                };
                if let Some(previous) = layout.insert(relative.to_owned(), node.clone()) {
                    assert_eq!(previous, node, "{path} is declared twice, differently");
                }
            }
            let stone = Stone {
                path: PathBuf::from(report["path"].as_str().unwrap()),
                name: meta["name"].as_str().unwrap().to_owned(),
                version: meta["version"].as_str().unwrap().to_owned(),
                release: meta["release"].as_u64().unwrap(),
                layout,
            };
            (stone.name.clone(), stone)
        })
        .collect()
}

/// The union of the layouts of some stones.
pub fn expected_tree<'a>(stones: impl IntoIterator<Item = &'a Stone>) -> BTreeMap<String, Node> {
    let mut tree: BTreeMap<String, Node> = BTreeMap::new();
    let mut owner: BTreeMap<String, &str> = BTreeMap::new();
    for stone in stones {
        for (path, node) in &stone.layout {
            match tree.get(path) {
                Some(existing) if existing != node => panic!(
                    "{path} differs between {} and {}: the corpus has a file conflict",
                    owner[path], stone.name
                ),
                Some(_) => {}
                None => {
                    tree.insert(path.clone(), node.clone());
                    owner.insert(path.clone(), &stone.name);
                }
            }
        }
    }
    tree
}

const HASH_TREE: &str = r#"
import json, os, sys, xxhash
root = sys.argv[1]
out = {}
for directory, _, files in os.walk(root):
    for name in files:
        path = os.path.join(directory, name)
        if os.path.islink(path) or not os.path.isfile(path):
            continue
        with open(path, "rb") as handle:
            out[os.path.relpath(path, root)] = xxhash.xxh3_128_hexdigest(handle.read())
json.dump(out, sys.stdout)
"#;

/// XXH3-128 of every regular file under `dir`, by relative path (computed by Python's xxhash).
pub fn hash_tree(dir: &Path) -> BTreeMap<String, String> {
    let output = Command::new("python3")
        .args(["-c", HASH_TREE])
        .arg(dir)
        .stdin(Stdio::null())
        .output()
        .expect("python3 runs");
    assert!(
        output.status.success(),
        "hashing {} failed: {}",
        dir.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("the hasher prints JSON")
}

fn walk(dir: &Path, base: &Path, found: &mut BTreeMap<String, fs::Metadata>) {
    for entry in
        fs::read_dir(dir).unwrap_or_else(|error| panic!("reading {}: {error}", dir.display()))
    {
        let entry = entry.unwrap();
        let path = entry.path();
        let metadata = fs::symlink_metadata(&path).unwrap();
        let relative = path
            .strip_prefix(base)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        if metadata.is_dir() {
            walk(&path, base, found);
        }
        found.insert(relative, metadata);
    }
}

/// Check that `ROOT/usr` holds exactly `expected` (plus the state's own records, `.stateID` and
/// `lib/system-model.kdl`): every path present with
/// its type, regular files with their content (XXH3-128) and layout mode with the write bits
/// stripped, symlinks with their target; nothing else.
pub fn check_tree(root: &Path, expected: &BTreeMap<String, Node>) {
    let usr = root.join("usr");
    let mut found = BTreeMap::new();
    walk(&usr, &usr, &mut found);
    found.remove(".stateID");
    // The system model the state was built from is the state's record, not package content.
    found.remove("lib/system-model.kdl");
    let digests = hash_tree(&usr);
    let mut problems = Vec::new();
    for (path, node) in expected {
        let Some(metadata) = found.get(path) else {
            problems.push(format!("/usr/{path} is missing"));
            continue;
        };
        match node {
            Node::Directory if !metadata.is_dir() => {
                problems.push(format!("/usr/{path} should be a directory"))
            }
            Node::Directory => {}
            Node::Regular { digest, mode } => {
                if !metadata.is_file() {
                    problems.push(format!("/usr/{path} should be a regular file"));
                    continue;
                }
                let actual_mode = metadata.permissions().mode() & 0o7777;
                let wanted_mode = mode & 0o7555;
                if actual_mode != wanted_mode {
                    problems.push(format!(
                        "/usr/{path} has mode {actual_mode:o}, expected {wanted_mode:o} (layout {mode:o})"
                    ));
                }
                match digests.get(path) {
                    Some(actual) if actual == digest => {}
                    actual => problems.push(format!(
                        "/usr/{path} hashes to {actual:?}, expected {digest}"
                    )),
                }
            }
            Node::Symlink(target) => match fs::read_link(usr.join(path)) {
                Ok(actual) if actual == Path::new(target) => {}
                Ok(actual) => problems.push(format!(
                    "/usr/{path} links to {}, expected {target}",
                    actual.display()
                )),
                Err(_) => problems.push(format!("/usr/{path} should be a symlink to {target}")),
            },
        }
    }
    for path in found.keys().filter(|path| !expected.contains_key(*path)) {
        problems.push(format!(
            "/usr/{path} is there but no installed package declares it"
        ));
    }
    assert!(
        problems.is_empty(),
        "{} problems in {}:\n  {}",
        problems.len(),
        usr.display(),
        problems
            .iter()
            .take(40)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n  ")
    );
}

/// The `moss` binary, with a clean environment for crash injection and no terminal.
pub fn moss_command() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_moss"));
    command
        .env("NO_COLOR", "1")
        .env_remove("MOSS_CRASH_AT")
        .stdin(Stdio::null());
    command
}

fn describe(output: &Output) -> String {
    format!(
        "status {:?}\n--- stdout\n{}\n--- stderr\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn checked(command: &mut Command, what: &str) -> Output {
    let output = command.output().expect("the moss binary runs");
    assert!(
        output.status.success(),
        "moss {what} failed: {}",
        describe(&output)
    );
    output
}

fn parse_json(output: &Output) -> Value {
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|error| panic!("not JSON ({error}): {}", describe(output)))
}

/// Run moss outside an installation (`index`, `inspect`), asserting success.
pub fn moss_ok(arguments: &[&OsStr]) -> String {
    let mut command = moss_command();
    command.args(arguments);
    let output = checked(&mut command, &format!("{arguments:?}"));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// One installed package as `list installed --format json` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Installed {
    /// Version text.
    pub version: String,
    /// Release.
    pub release: u64,
    /// Whether the user asked for it.
    pub explicit: bool,
    /// Package id.
    pub id: String,
}

/// An installation root driven with `moss -D ROOT`.
#[derive(Debug, Clone)]
pub struct Root {
    /// The root directory.
    pub path: PathBuf,
}

impl Root {
    /// Create the directory.
    pub fn new(path: PathBuf) -> Self {
        fs::create_dir_all(&path).unwrap();
        Self { path }
    }

    /// `moss -D ROOT` with arguments.
    pub fn command<S: AsRef<OsStr>>(&self, arguments: &[S]) -> Command {
        let mut command = moss_command();
        command.arg("-D").arg(&self.path).args(arguments);
        command
    }

    /// Run, whatever the outcome.
    pub fn run<S: AsRef<OsStr>>(&self, arguments: &[S]) -> Output {
        self.command(arguments)
            .output()
            .expect("the moss binary runs")
    }

    /// Run and assert success; returns stdout.
    pub fn ok<S: AsRef<OsStr>>(&self, arguments: &[S]) -> String {
        let output = self.run(arguments);
        let shown: Vec<String> = arguments
            .iter()
            .map(|argument| argument.as_ref().to_string_lossy().into_owned())
            .collect();
        assert!(
            output.status.success(),
            "moss -D {} {} failed: {}",
            self.path.display(),
            shown.join(" "),
            describe(&output)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// Run and assert failure; returns the output.
    pub fn fails<S: AsRef<OsStr>>(&self, arguments: &[S]) -> Output {
        let output = self.run(arguments);
        let shown: Vec<String> = arguments
            .iter()
            .map(|argument| argument.as_ref().to_string_lossy().into_owned())
            .collect();
        assert!(
            !output.status.success(),
            "moss -D {} {} should have failed: {}",
            self.path.display(),
            shown.join(" "),
            describe(&output)
        );
        output
    }

    /// Run with `--format json` appended, assert success, parse stdout.
    pub fn json(&self, arguments: &[&str]) -> Value {
        let mut arguments = arguments.to_vec();
        arguments.extend(["--format", "json"]);
        let output = self.run(&arguments);
        assert!(
            output.status.success(),
            "moss -D {} {} failed: {}",
            self.path.display(),
            arguments.join(" "),
            describe(&output)
        );
        parse_json(&output)
    }

    /// `list installed`, by name.
    pub fn installed(&self) -> BTreeMap<String, Installed> {
        let json = self.json(&["list", "installed"]);
        json.as_array()
            .expect("list installed prints an array")
            .iter()
            .map(|item| {
                (
                    item["name"].as_str().unwrap().to_owned(),
                    Installed {
                        version: item["version"].as_str().unwrap().to_owned(),
                        release: item["release"].as_u64().unwrap(),
                        explicit: item["explicit"].as_bool().unwrap(),
                        id: item["id"].as_str().unwrap().to_owned(),
                    },
                )
            })
            .collect()
    }

    /// Names of the installed packages.
    pub fn installed_names(&self) -> BTreeSet<String> {
        self.installed().into_keys().collect()
    }

    /// State ids of `state list`, newest first.
    pub fn states(&self) -> Vec<u64> {
        let json = self.json(&["state", "list"]);
        json.as_array()
            .expect("state list prints an array")
            .iter()
            .map(|state| state["id"].as_u64().unwrap())
            .collect()
    }

    /// The active state per `state active`, checked against `ROOT/usr/.stateID` and against
    /// the `active` flags of `state list`.
    pub fn active(&self) -> Option<u64> {
        let json = self.json(&["state", "active"]);
        let active = json["id"].as_u64();
        if active.is_some() {
            assert_eq!(json["active"], Value::Bool(true), "state active: {json}");
        }
        let marker = fs::read_to_string(self.path.join("usr/.stateID"))
            .ok()
            .map(|text| {
                text.trim()
                    .parse::<u64>()
                    .expect("usr/.stateID holds a number")
            });
        assert_eq!(
            marker, active,
            "ROOT/usr/.stateID disagrees with `state active`"
        );
        let listed: Vec<u64> = self
            .json(&["state", "list"])
            .as_array()
            .unwrap()
            .iter()
            .filter(|state| state["active"] == Value::Bool(true))
            .map(|state| state["id"].as_u64().unwrap())
            .collect();
        assert_eq!(
            listed,
            active.into_iter().collect::<Vec<_>>(),
            "state list marks another state active"
        );
        active
    }

    /// Check `ROOT/usr` against the layouts of the installed packages, looked up by name and
    /// release in `stones`.
    pub fn check_installed_tree(&self, stones: &[&BTreeMap<String, Stone>]) {
        let installed = self.installed();
        let mut chosen = Vec::new();
        for (name, package) in &installed {
            let stone = stones
                .iter()
                .filter_map(|stones| stones.get(name))
                .find(|stone| stone.release == package.release && stone.version == package.version)
                .unwrap_or_else(|| {
                    panic!(
                        "no stone of {name} {}-{} to compare with",
                        package.version, package.release
                    )
                });
            chosen.push(stone);
        }
        check_tree(&self.path, &expected_tree(chosen));
    }

    /// Count the files under `ROOT/.moss/<relative>` (store, caches).
    pub fn count_files(&self, relative: &str) -> usize {
        fn count(dir: &Path) -> usize {
            let Ok(entries) = fs::read_dir(dir) else {
                return 0;
            };
            entries
                .flatten()
                .map(|entry| {
                    if entry.file_type().is_ok_and(|kind| kind.is_dir()) {
                        count(&entry.path())
                    } else {
                        1
                    }
                })
                .sum()
        }
        count(&self.path.join(".moss").join(relative))
    }
}
