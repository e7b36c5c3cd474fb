//! The recipe script language: `%action`, `%(definition)`, `%(_builtin)` and `%%`, expanded
//! textually and recursively for one target.

use std::collections::{BTreeSet, HashMap};

use crate::macros::{Action, MacroError, Macros};

/// Nesting depth at which expansion gives up (a macro that refers to itself).
const MAX_DEPTH: usize = 128;

/// What a script expands to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expansion {
    /// The commands, split at breakpoints.
    pub commands: Vec<Command>,
    /// Dependencies of every action used, transitively.
    pub dependencies: BTreeSet<String>,
}

/// One piece of an expanded script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Script text to run.
    Run(String),
    /// `%break_continue` (`exit: false`) or `%break_exit` at a script line.
    Break {
        /// Whether the build stops after the breakpoint.
        exit: bool,
        /// 1-based line in the phase script.
        line: usize,
    },
}

/// A script that cannot be expanded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScriptError {
    /// `%name` names no action.
    #[error("line {line}: unknown action `%{name}`{}{hint}", context(stack))]
    UnknownAction {
        /// The action.
        name: String,
        /// 1-based line in the script given.
        line: usize,
        /// Macros being expanded, outermost first.
        stack: Vec<String>,
        /// A hint for common mistakes.
        hint: String,
    },
    /// `%(name)` names no definition.
    #[error("line {line}: unknown definition `%({name})`{}", context(stack))]
    UnknownDefinition {
        /// The definition.
        name: String,
        /// 1-based line.
        line: usize,
        /// Macros being expanded.
        stack: Vec<String>,
    },
    /// `%(_name)` names no builtin.
    #[error("line {line}: unknown builtin `%(_{name})`{}", context(stack))]
    UnknownBuiltin {
        /// The builtin without the underscore.
        name: String,
        /// 1-based line.
        line: usize,
        /// Macros being expanded.
        stack: Vec<String>,
    },
    /// A builtin used directly in a recipe.
    #[error(
        "line {line}: builtin `%(_{name})` may only be used inside macro definitions; use `%({name})`"
    )]
    BuiltinAtTopLevel {
        /// The builtin.
        name: String,
        /// 1-based line.
        line: usize,
    },
    /// Macros refer to each other without end.
    #[error(
        "macro expansion is nested deeper than {MAX_DEPTH} levels{}",
        context(stack)
    )]
    TooDeep {
        /// Macros being expanded.
        stack: Vec<String>,
    },
}

impl ScriptError {
    /// The line in the expanded script, when the error has one.
    pub fn line(&self) -> Option<usize> {
        match self {
            ScriptError::UnknownAction { line, .. }
            | ScriptError::UnknownDefinition { line, .. }
            | ScriptError::UnknownBuiltin { line, .. }
            | ScriptError::BuiltinAtTopLevel { line, .. } => Some(*line),
            ScriptError::TooDeep { .. } => None,
        }
    }
}

fn context(stack: &[String]) -> String {
    if stack.is_empty() {
        String::new()
    } else {
        format!(" (while expanding {})", stack.join(" → "))
    }
}

/// Actions, definitions and builtins for one target.
#[derive(Debug, Clone)]
pub struct ScriptEnv {
    actions: HashMap<String, Action>,
    definitions: HashMap<String, String>,
    builtins: HashMap<String, String>,
}

impl ScriptEnv {
    /// Load the layers of a target (`x86_64`, `emul32/x86_64`); later layers win.
    pub fn new(macros: &Macros, target: &str) -> Result<Self, MacroError> {
        let mut actions = HashMap::new();
        let mut definitions = HashMap::new();
        for layer in macros.layers(target)? {
            for map in &layer.actions {
                for (name, action) in map {
                    actions.insert(name.clone(), action.clone());
                }
            }
            for map in &layer.definitions {
                for (name, value) in map {
                    definitions.insert(name.clone(), value.trim().to_owned());
                }
            }
        }
        Ok(Self {
            actions,
            definitions,
            builtins: HashMap::new(),
        })
    }

    /// Set a builtin (`name` without the underscore).
    pub fn set_builtin(&mut self, name: &str, value: impl Into<String>) {
        self.builtins.insert(name.to_owned(), value.into());
    }

    /// Set or replace a definition.
    pub fn set_definition(&mut self, name: &str, value: impl Into<String>) {
        self.definitions.insert(name.to_owned(), value.into());
    }

    /// All actions.
    pub fn actions(&self) -> &HashMap<String, Action> {
        &self.actions
    }

    /// All definitions.
    pub fn definitions(&self) -> &HashMap<String, String> {
        &self.definitions
    }

    /// Expand a recipe script: builtins are not allowed directly, breakpoints split it.
    pub fn expand(&self, script: &str) -> Result<Expansion, ScriptError> {
        let mut state = State {
            stack: Vec::new(),
            dependencies: BTreeSet::new(),
        };
        let mut commands = Vec::new();
        let mut current = String::new();
        for (index, line) in script.split_inclusive('\n').enumerate() {
            let trimmed = line.trim();
            if trimmed == "%break_continue" || trimmed == "%break_exit" {
                if !current.trim().is_empty() {
                    commands.push(Command::Run(std::mem::take(&mut current)));
                }
                commands.push(Command::Break {
                    exit: trimmed == "%break_exit",
                    line: index + 1,
                });
                continue;
            }
            self.expand_into(line, index + 1, true, &mut state, &mut current)?;
        }
        if !current.trim().is_empty() {
            commands.push(Command::Run(current));
        }
        Ok(Expansion {
            commands,
            dependencies: state.dependencies,
        })
    }

    /// Expand a text as if it were inside a macro (builtins allowed), e.g. a flag string or a
    /// package name. Breakpoints are not special here.
    pub fn expand_text(&self, text: &str) -> Result<String, ScriptError> {
        let mut state = State {
            stack: vec!["(text)".to_owned()],
            dependencies: BTreeSet::new(),
        };
        let mut out = String::new();
        self.expand_into(text, 1, false, &mut state, &mut out)?;
        Ok(out)
    }

    fn expand_into(
        &self,
        text: &str,
        line: usize,
        top: bool,
        state: &mut State,
        out: &mut String,
    ) -> Result<(), ScriptError> {
        if state.stack.len() > MAX_DEPTH {
            return Err(ScriptError::TooDeep {
                stack: state.stack.clone(),
            });
        }
        let bytes = text.as_bytes();
        let mut position = 0;
        let mut line = line;
        while position < bytes.len() {
            let byte = bytes[position];
            if byte != b'%' {
                // Copy up to the next `%` in one go.
                let next = text[position..]
                    .find('%')
                    .map_or(bytes.len(), |offset| position + offset);
                let chunk = &text[position..next];
                if top {
                    line += chunk.matches('\n').count();
                }
                out.push_str(chunk);
                position = next;
                continue;
            }
            let rest = &text[position + 1..];
            if rest.starts_with('%') {
                out.push('%');
                position += 2;
                continue;
            }
            if let Some(inner) = rest.strip_prefix('(')
                && let Some(close) = inner.find(')')
                && is_identifier(inner[..close].trim_start_matches('_'))
            {
                let name = &inner[..close];
                self.reference(name, line, top, state, out)?;
                position += 2 + close + 1;
                continue;
            }
            let length = rest
                .bytes()
                .take_while(|byte| byte.is_ascii_alphanumeric() || *byte == b'_')
                .count();
            if length == 0 {
                out.push('%');
                position += 1;
                continue;
            }
            let name = &rest[..length];
            let action = self
                .actions
                .get(name)
                .ok_or_else(|| ScriptError::UnknownAction {
                    name: name.to_owned(),
                    line,
                    stack: state.stack.clone(),
                    hint: hint_for(name),
                })?;
            state
                .dependencies
                .extend(action.dependencies.iter().cloned());
            state.stack.push(format!("%{name}"));
            self.expand_into(action.command.trim(), line, false, state, out)?;
            state.stack.pop();
            position += 1 + length;
        }
        Ok(())
    }

    fn reference(
        &self,
        name: &str,
        line: usize,
        top: bool,
        state: &mut State,
        out: &mut String,
    ) -> Result<(), ScriptError> {
        if let Some(builtin) = name.strip_prefix('_') {
            if top {
                return Err(ScriptError::BuiltinAtTopLevel {
                    name: builtin.to_owned(),
                    line,
                });
            }
            let value = self
                .builtins
                .get(builtin)
                .ok_or_else(|| ScriptError::UnknownBuiltin {
                    name: builtin.to_owned(),
                    line,
                    stack: state.stack.clone(),
                })?;
            state.stack.push(format!("%(_{builtin})"));
            self.expand_into(value, line, false, state, out)?;
            state.stack.pop();
            return Ok(());
        }
        let value = self
            .definitions
            .get(name)
            .ok_or_else(|| ScriptError::UnknownDefinition {
                name: name.to_owned(),
                line,
                stack: state.stack.clone(),
            })?;
        state.stack.push(format!("%({name})"));
        self.expand_into(value, line, false, state, out)?;
        state.stack.pop();
        Ok(())
    }
}

struct State {
    stack: Vec<String>,
    dependencies: BTreeSet<String>,
}

fn is_identifier(text: &str) -> bool {
    !text.is_empty()
        && text
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || byte == b'_')
}

fn hint_for(name: &str) -> String {
    if name.len() <= 3
        && name
            .bytes()
            .any(|byte| byte.is_ascii_digit() || byte.is_ascii_alphabetic())
    {
        format!("; a literal percent sign is written `%%` (e.g. `%%{name}`)")
    } else {
        String::new()
    }
}
