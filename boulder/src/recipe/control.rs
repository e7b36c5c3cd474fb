//! `control.kdl` beside a recipe: prepend, append to or override parts of it after parsing.
//!
//! ```kdl
//! append {
//!     setup "echo extra"
//!     builddeps { "pkgconfig(zlib)"; }
//!     profiles { emul32 { install "echo 32"; } }
//!     packages { "%(name)-devel" { rundeps { extra; } } }
//! }
//! ```
//!
//! Operations apply in the order prepend, append, override, whatever their order in the file;
//! strings join with a newline, lists concatenate. Profiles and packages are named by their
//! unexpanded recipe keys and must exist.

use std::path::Path;

use kdl::{KdlDocument, KdlNode};

use super::{Build, PackageDefinition, Recipe, RecipeError};
use crate::yaml::Mark;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Operation {
    Prepend,
    Append,
    Override,
}

const STRINGS: [&str; 6] = [
    "setup",
    "build",
    "install",
    "check",
    "workload",
    "environment",
];

struct Context<'a> {
    path: &'a Path,
    text: &'a str,
}

impl Context<'_> {
    fn mark(&self, node: &KdlNode) -> Mark {
        let offset = node.span().offset().min(self.text.len());
        let before = &self.text[..offset];
        let line = before.matches('\n').count() as u64 + 1;
        let column = (offset - before.rfind('\n').map_or(0, |newline| newline + 1)) as u64 + 1;
        Mark { line, column }
    }

    fn error(&self, node: &KdlNode, message: String) -> RecipeError {
        RecipeError::Invalid {
            path: self.path.to_path_buf(),
            mark: self.mark(node),
            message,
        }
    }
}

fn combine_text(operation: Operation, old: &mut Option<String>, new: String) {
    *old = Some(match (operation, old.take()) {
        (Operation::Override, _) | (_, None) => new,
        (Operation::Prepend, Some(old)) => format!("{new}\n{old}"),
        (Operation::Append, Some(old)) => format!("{old}\n{new}"),
    });
}

fn combine_list(operation: Operation, old: &mut Vec<String>, new: Vec<String>) {
    match operation {
        Operation::Override => *old = new,
        Operation::Prepend => {
            let mut joined = new;
            joined.append(old);
            *old = joined;
        }
        Operation::Append => old.extend(new),
    }
}

/// The items of a list node: the names of its children.
fn items(node: &KdlNode) -> Vec<String> {
    node.children()
        .map(|children| {
            children
                .nodes()
                .iter()
                .map(|child| child.name().value().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

fn text_argument(context: &Context<'_>, node: &KdlNode) -> Result<String, RecipeError> {
    node.entries()
        .first()
        .and_then(|entry| entry.value().as_string())
        .map(str::to_owned)
        .ok_or_else(|| {
            context.error(
                node,
                format!("`{}` needs a string argument", node.name().value()),
            )
        })
}

fn apply_build(
    context: &Context<'_>,
    operation: Operation,
    build: &mut Build,
    node: &KdlNode,
) -> Result<bool, RecipeError> {
    let name = node.name().value();
    if STRINGS.contains(&name) {
        let text = text_argument(context, node)?;
        let field = match name {
            "setup" => &mut build.setup,
            "build" => &mut build.build,
            "install" => &mut build.install,
            "check" => &mut build.check,
            "workload" => &mut build.workload,
            _ => &mut build.environment,
        };
        combine_text(operation, field, text);
        return Ok(true);
    }
    match name {
        "builddeps" => combine_list(operation, &mut build.builddeps, items(node)),
        "checkdeps" => combine_list(operation, &mut build.checkdeps, items(node)),
        _ => return Ok(false),
    }
    Ok(true)
}

fn apply_package(operation: Operation, package: &mut PackageDefinition, node: &KdlNode) -> bool {
    match node.name().value() {
        "rundeps" => combine_list(operation, &mut package.rundeps, items(node)),
        "rundeps-exclude" => combine_list(operation, &mut package.rundeps_exclude, items(node)),
        "conflicts" => combine_list(operation, &mut package.conflicts, items(node)),
        _ => return false,
    }
    true
}

/// Apply a `control.kdl` text to a recipe.
pub fn apply(recipe: &mut Recipe, text: &str, path: &Path) -> Result<(), RecipeError> {
    let document = KdlDocument::parse(text).map_err(|error| RecipeError::Yaml {
        path: path.to_path_buf(),
        message: format!("invalid KDL: {error}"),
    })?;
    let context = Context { path, text };
    for operation in [Operation::Prepend, Operation::Append, Operation::Override] {
        let keyword = match operation {
            Operation::Prepend => "prepend",
            Operation::Append => "append",
            Operation::Override => "override",
        };
        for block in document
            .nodes()
            .iter()
            .filter(|node| node.name().value() == keyword)
        {
            let Some(children) = block.children() else {
                continue;
            };
            for node in children.nodes() {
                if apply_build(&context, operation, &mut recipe.build, node)?
                    || apply_package(operation, &mut recipe.package, node)
                {
                    continue;
                }
                match node.name().value() {
                    "profiles" => {
                        for profile in node.children().map(KdlDocument::nodes).unwrap_or_default() {
                            let name = profile.name().value();
                            let (_, build) = recipe
                                .profiles
                                .iter_mut()
                                .find(|(key, _)| key == name)
                                .ok_or_else(|| {
                                    context.error(
                                        profile,
                                        format!("the recipe has no profile `{name}`"),
                                    )
                                })?;
                            for field in profile
                                .children()
                                .map(KdlDocument::nodes)
                                .unwrap_or_default()
                            {
                                apply_build(&context, operation, build, field)?;
                            }
                        }
                    }
                    "packages" => {
                        for package in node.children().map(KdlDocument::nodes).unwrap_or_default() {
                            let name = package.name().value();
                            let (_, definition) = recipe
                                .packages
                                .iter_mut()
                                .find(|(key, _)| key == name)
                                .ok_or_else(|| {
                                    context.error(
                                        package,
                                        format!("the recipe has no package `{name}`"),
                                    )
                                })?;
                            for field in package
                                .children()
                                .map(KdlDocument::nodes)
                                .unwrap_or_default()
                            {
                                apply_package(operation, definition, field);
                            }
                        }
                    }
                    // Unknown children are ignored, as upstream does.
                    _ => {}
                }
            }
        }
    }
    Ok(())
}
