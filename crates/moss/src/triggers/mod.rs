//! Triggers: programs that packages ask to run when paths matching their patterns are in a state.
//!
//! Definitions are YAML files in the new tree's `usr/share/moss/triggers/tx.d/` (transaction
//! triggers: run against the new `/usr` in a container before it is made live, for caches kept
//! in `/usr`) and `sys.d/` (system triggers: run against the live root after the swap, for what
//! `/etc` and `/var` need). Unlike upstream, a file that does not parse fails the transaction
//! naming the file and line, `args` may be left out, `delete` handlers work, inhibitors are
//! honoured and an ordering cycle is an error naming the triggers in it.

mod container;
mod definition;
mod engine;
pub mod pattern;
mod record;

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
};

pub use container::{Sandbox, run_action};
pub use definition::{Handler, Inhibitors, Trigger, load};
pub use engine::TriggerRun;

/// Where a trigger runs and when.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scope {
    /// Before the swap, in a container holding the new `/usr`.
    Transaction,
    /// After the swap, against the live root.
    System,
}

impl Scope {
    /// The name of the definition directory (`tx.d` / `sys.d`) without `.d`.
    pub fn directory(self) -> &'static str {
        match self {
            Self::Transaction => "tx",
            Self::System => "sys",
        }
    }
}

/// Why triggers could not be loaded, planned or run.
#[derive(Debug, thiserror::Error)]
pub enum TriggerError {
    /// A definition file is not valid.
    #[error("trigger file {}, line {line}: {message}; fix or remove the file", file.display())]
    Parse {
        /// The file.
        file: PathBuf,
        /// 1-based line (0 when unknown).
        line: u64,
        /// What is wrong.
        message: String,
    },
    /// Two files define the same trigger name.
    #[error("trigger {name:?} is defined twice, in {} and {}; names must be unique", first.display(), second.display())]
    Duplicate {
        /// The name.
        name: String,
        /// The first file.
        first: PathBuf,
        /// The second file.
        second: PathBuf,
    },
    /// `before`/`after` form a cycle.
    #[error("{} triggers order each other in a cycle: {}; break it in their before/after fields", .scope.directory(), .names.join(" -> "))]
    Cycle {
        /// The scope.
        scope: Scope,
        /// The triggers in the cycle, the first repeated at the end.
        names: Vec<String>,
    },
    /// A transaction trigger failed: the transaction is abandoned.
    #[error(
        "transaction trigger {trigger} failed: `{command}` {status}; the system was not changed\n{output}"
    )]
    Failed {
        /// The trigger.
        trigger: String,
        /// The command line.
        command: String,
        /// How it ended.
        status: String,
        /// What it printed.
        output: String,
    },
    /// The container could not be set up or the program not started.
    #[error("cannot run trigger {trigger} (`{command}`): {source}")]
    Spawn {
        /// The trigger.
        trigger: String,
        /// The command line.
        command: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
}

/// One thing a trigger does, with captured variables substituted.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub enum Action {
    /// Run a program with arguments.
    Run {
        /// Absolute path of the program.
        program: String,
        /// Its arguments.
        args: Vec<String>,
    },
    /// Delete paths.
    Delete {
        /// Absolute paths.
        paths: Vec<String>,
    },
}

impl Action {
    /// A shell-like rendering for messages.
    pub fn command_line(&self) -> String {
        match self {
            Self::Run { program, args } => std::iter::once(program.as_str())
                .chain(args.iter().map(String::as_str))
                .collect::<Vec<_>>()
                .join(" "),
            Self::Delete { paths } => format!("delete {}", paths.join(" ")),
        }
    }
}

/// A trigger that will run, with its actions in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Planned {
    /// The trigger's name.
    pub name: String,
    /// What it does, deduplicated and ordered (run before delete, then by program and args).
    pub actions: Vec<Action>,
}

/// The environment a trigger runs in, matched against `inhibitors.environment`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Environment {
    /// The installation root is `/`: the running system.
    Live,
    /// Any other root (an image, an installer target, a container).
    Chroot,
}

impl Environment {
    /// Its name in definitions.
    pub fn name(self) -> &'static str {
        match self {
            Self::Live => "live",
            Self::Chroot => "chroot",
        }
    }
}

/// Which triggers run for `paths` (absolute, `/usr/...`), in order.
///
/// Triggers are ordered by `before`/`after` among all loaded triggers (so a cycle is found
/// whether or not its members fire); a trigger none of whose patterns matches is dropped, as is
/// one whose inhibitor path exists under `root` or whose inhibitor environment is the current one.
pub fn plan<'a>(
    scope: Scope,
    triggers: &[Trigger],
    paths: impl IntoIterator<Item = &'a str>,
    root: &Path,
    environment: Environment,
) -> Result<Vec<Planned>, TriggerError> {
    let order = order(scope, triggers)?;
    let mut actions: BTreeMap<&str, BTreeSet<Action>> = BTreeMap::new();
    for path in paths {
        for trigger in triggers {
            for (pattern, handlers) in &trigger.paths {
                let Some(captures) = pattern.captures(path) else {
                    continue;
                };
                for handler in handlers {
                    let action = trigger.handlers[handler].compile(&captures);
                    actions.entry(&trigger.name).or_default().insert(action);
                }
            }
        }
    }
    Ok(order
        .into_iter()
        .filter_map(|index| {
            let trigger = &triggers[index];
            let actions = actions.remove(trigger.name.as_str())?;
            (!trigger.inhibitors.inhibits(root, environment)).then(|| Planned {
                name: trigger.name.clone(),
                actions: actions.into_iter().collect(),
            })
        })
        .collect())
}

/// Topological order of the triggers (indices), ties broken by name; a cycle is an error.
fn order(scope: Scope, triggers: &[Trigger]) -> Result<Vec<usize>, TriggerError> {
    let index: BTreeMap<&str, usize> = triggers
        .iter()
        .enumerate()
        .map(|(position, trigger)| (trigger.name.as_str(), position))
        .collect();
    // edges[a] = triggers that must run after a.
    let mut edges: Vec<BTreeSet<usize>> = vec![BTreeSet::new(); triggers.len()];
    for (position, trigger) in triggers.iter().enumerate() {
        for before in &trigger.before {
            if let Some(&other) = index.get(before.as_str()) {
                edges[position].insert(other);
            }
        }
        for after in &trigger.after {
            if let Some(&other) = index.get(after.as_str()) {
                edges[other].insert(position);
            }
        }
    }
    let mut incoming = vec![0usize; triggers.len()];
    for targets in &edges {
        for &target in targets {
            incoming[target] += 1;
        }
    }
    let mut ready: BTreeSet<(&str, usize)> = triggers
        .iter()
        .enumerate()
        .filter(|(position, _)| incoming[*position] == 0)
        .map(|(position, trigger)| (trigger.name.as_str(), position))
        .collect();
    let mut order = Vec::with_capacity(triggers.len());
    while let Some(first) = ready.pop_first() {
        order.push(first.1);
        for &target in &edges[first.1] {
            incoming[target] -= 1;
            if incoming[target] == 0 {
                ready.insert((triggers[target].name.as_str(), target));
            }
        }
    }
    if order.len() == triggers.len() {
        return Ok(order);
    }
    // Every remaining trigger has a remaining predecessor: walking predecessors must repeat one,
    // and the walk from there is a cycle (reversed).
    let remaining = |position: usize| incoming[position] > 0;
    let mut walk = vec![
        (0..triggers.len())
            .filter(|position| remaining(*position))
            .min_by_key(|position| &triggers[*position].name)
            .expect("a remaining trigger"),
    ];
    loop {
        let current = *walk.last().expect("non-empty");
        let previous = (0..triggers.len())
            .filter(|source| remaining(*source) && edges[*source].contains(&current))
            .min_by_key(|source| &triggers[*source].name)
            .expect("a remaining trigger has a remaining predecessor");
        if let Some(start) = walk.iter().position(|seen| *seen == previous) {
            let mut names: Vec<String> = walk[start..]
                .iter()
                .rev()
                .map(|position| triggers[*position].name.clone())
                .collect();
            names.push(names[0].clone());
            return Err(TriggerError::Cycle { scope, names });
        }
        walk.push(previous);
    }
}
