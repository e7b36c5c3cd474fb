//! Tuning: from the recipe's `tuning` list and the macro data's groups to compiler flags.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::{
    macros::{CompilerFlags, Family, MacroError, Macros, TuningGroup},
    recipe::{Recipe, Toolchain, TuningSetting},
};

/// The PGO stage a job builds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PgoStage {
    /// No PGO.
    None,
    /// Instrumented build.
    One,
    /// Context-sensitive instrumented build (llvm).
    Two,
    /// Build with the merged profile.
    Use,
}

impl PgoStage {
    /// Value of the `pgo_stage` builtin.
    pub fn as_str(self) -> &'static str {
        match self {
            PgoStage::None => "NONE",
            PgoStage::One => "ONE",
            PgoStage::Two => "TWO",
            PgoStage::Use => "USE",
        }
    }
}

/// Tuning that cannot be resolved.
#[derive(Debug, thiserror::Error)]
pub enum TuningError {
    /// Macro data missing or invalid.
    #[error(transparent)]
    Macros(#[from] MacroError),
    /// The recipe names a group that does not exist.
    #[error("unknown tuning group `{0}`")]
    UnknownGroup(String),
    /// The recipe names an option the group does not have.
    #[error("tuning group `{group}` has no option `{option}`")]
    UnknownOption {
        /// The group.
        group: String,
        /// The option.
        option: String,
    },
    /// A group refers to a flag that does not exist.
    #[error("tuning group `{group}` refers to unknown flag `{flag}`")]
    UnknownFlag {
        /// The group.
        group: String,
        /// The flag.
        flag: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Choice {
    Enabled(Option<String>),
    Disabled,
}

/// The flag strings of each compiler family for a target.
pub fn flags(
    macros: &Macros,
    target: &str,
    recipe: &Recipe,
    stage: PgoStage,
) -> Result<BTreeMap<Family, String>, TuningError> {
    let layers = macros.layers(target)?;
    let mut groups: HashMap<String, TuningGroup> = HashMap::new();
    let mut flag_table: HashMap<String, CompilerFlags> = HashMap::new();
    for layer in &layers {
        for map in &layer.tuning {
            groups.extend(
                map.iter()
                    .map(|(name, group)| (name.clone(), group.clone())),
            );
        }
        for map in &layer.flags {
            flag_table.extend(map.iter().map(|(name, flag)| (name.clone(), flag.clone())));
        }
    }
    // Insertion order matters only for error messages; resolution below is order free.
    let mut choices: Vec<(String, Choice)> =
        vec![("architecture".to_owned(), Choice::Enabled(None))];
    let set = |choices: &mut Vec<(String, Choice)>, name: &str, choice: Choice| {
        choices.retain(|(existing, _)| existing != name);
        choices.push((name.to_owned(), choice));
    };
    let mut mentioned = BTreeSet::new();
    for item in &recipe.tuning {
        let group = groups
            .get(&item.group)
            .ok_or_else(|| TuningError::UnknownGroup(item.group.clone()))?;
        mentioned.insert(item.group.clone());
        let choice = match &item.setting {
            TuningSetting::Enable => Choice::Enabled(group.default.clone()),
            TuningSetting::Disable => Choice::Disabled,
            TuningSetting::Option(option) => {
                if group.option(option).is_none() {
                    return Err(TuningError::UnknownOption {
                        group: item.group.clone(),
                        option: option.clone(),
                    });
                }
                Choice::Enabled(Some(option.clone()))
            }
        };
        set(&mut choices, &item.group, choice);
    }
    // The target's own list replaces the base list when it has one.
    let defaults = layers
        .get(1)
        .filter(|arch| !arch.default_tuning_groups.is_empty())
        .or(layers.first())
        .map(|file| file.default_tuning_groups.clone())
        .unwrap_or_default();
    for name in defaults {
        if mentioned.contains(&name) {
            continue;
        }
        let group = groups
            .get(&name)
            .ok_or_else(|| TuningError::UnknownGroup(name.clone()))?;
        set(&mut choices, &name, Choice::Enabled(group.default.clone()));
    }
    match stage {
        PgoStage::None => {}
        PgoStage::One => set(&mut choices, "pgostage1", Choice::Enabled(None)),
        PgoStage::Two => set(&mut choices, "pgostage2", Choice::Enabled(None)),
        PgoStage::Use => {
            set(&mut choices, "pgouse", Choice::Enabled(None));
            if recipe.options.samplepgo {
                set(&mut choices, "pgosample", Choice::Enabled(None));
            }
        }
    }
    let mut flag_names = BTreeSet::new();
    for (name, choice) in &choices {
        let group = groups
            .get(name)
            .ok_or_else(|| TuningError::UnknownGroup(name.clone()))?;
        let names = match choice {
            Choice::Enabled(Some(option)) => group
                .option(option)
                .ok_or_else(|| TuningError::UnknownOption {
                    group: name.clone(),
                    option: option.clone(),
                })?
                .enabled
                .as_ref(),
            Choice::Enabled(None) => group.root.enabled.as_ref(),
            Choice::Disabled => group.root.disabled.as_ref(),
        };
        for flag in names.map(|names| names.names()).unwrap_or_default() {
            if !flag_table.contains_key(&flag) {
                return Err(TuningError::UnknownFlag {
                    group: name.clone(),
                    flag,
                });
            }
            flag_names.insert(flag);
        }
    }
    let gnu = recipe.options.toolchain == Toolchain::Gnu;
    let mut out = BTreeMap::new();
    for family in Family::ALL {
        // Each flag string is one unit: sorted and de-duplicated as whole strings.
        let mut strings: BTreeSet<String> = BTreeSet::new();
        for name in &flag_names {
            if let Some(text) = flag_table.get(name).and_then(|flag| flag.get(family, gnu)) {
                let text = text.trim();
                if text.len() > 1 {
                    strings.insert(text.to_owned());
                }
            }
        }
        let mut joined = strings.into_iter().collect::<Vec<_>>().join(" ");
        if recipe.mold {
            match family {
                Family::C | Family::Cxx => joined.push_str(" -fuse-ld=mold"),
                Family::Rust => joined.push_str(" -Clink-arg=-fuse-ld=mold"),
                _ => {}
            }
        }
        out.insert(family, joined);
    }
    Ok(out)
}
