//! Turning a recipe into the jobs and phase scripts of a build.

use std::collections::BTreeSet;

use crate::{
    macros::{Family, MacroError, Macros},
    recipe::{Recipe, Toolchain, Upstream},
    script::{Command, ScriptEnv, ScriptError},
    tuning::{self, PgoStage, TuningError},
};

/// Paths inside the container.
pub mod mason {
    /// The recipe directory (read-only).
    pub const RECIPE: &str = "/mason/recipe";
    /// Fetched sources (read-only).
    pub const SOURCEDIR: &str = "/mason/sourcedir";
    /// Where `make install` and friends install to.
    pub const INSTALL: &str = "/mason/install";
    /// Build directories, one per target.
    pub const BUILD: &str = "/mason/build";
    /// Generated phase scripts (read-only).
    pub const SCRIPTS: &str = "/mason/scripts";
}

/// A phase that could not be prepared.
#[derive(Debug, thiserror::Error)]
pub enum PhaseError {
    /// Macro data.
    #[error(transparent)]
    Macros(#[from] MacroError),
    /// Tuning.
    #[error(transparent)]
    Tuning(#[from] TuningError),
    /// A script did not expand.
    #[error("{}{target} {phase} phase: {source}", recipe_line.map(|line| format!("line {line} of the recipe: ")).unwrap_or_default())]
    Script {
        /// The recipe line of the error, when the script came from the recipe.
        recipe_line: Option<u64>,
        /// Target.
        target: String,
        /// Phase.
        phase: String,
        /// Why (boxed: it carries the macro stack).
        source: Box<ScriptError>,
    },
}

/// One phase ready to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Phase {
    /// `prepare`, `setup`, `build`, `install`, `check`, `workload`.
    pub name: String,
    /// The commands: full scripts, or breakpoints.
    pub commands: Vec<Command>,
    /// For phases with breakpoints: the `.profile` of the shell opened at them.
    pub breakpoint_profile: Option<String>,
}

/// One job: a target at a PGO stage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    /// `x86_64` or `emul32/x86_64`.
    pub target: String,
    /// PGO stage.
    pub stage: PgoStage,
    /// Build dir inside the container.
    pub build_dir: String,
    /// Work dir inside the container.
    pub work_dir: String,
    /// Phases in order.
    pub phases: Vec<Phase>,
    /// The `.profile` of a shell in this job's container (`boulder chroot`): the recipe
    /// environment, actions as `a_NAME` functions and definitions as `d_NAME` variables.
    pub shell_profile: String,
}

/// Fixed values of a build that the builtins need.
#[derive(Debug, Clone)]
pub struct BuildContext {
    /// Parallel jobs.
    pub jobs: usize,
    /// SOURCE_DATE_EPOCH.
    pub source_date_epoch: u64,
}

fn compilers(toolchain: Toolchain, mold: bool) -> Vec<(&'static str, &'static str)> {
    let ld = match (mold, toolchain) {
        (true, _) => "ld.mold",
        (false, Toolchain::Llvm) => "ld.lld",
        (false, Toolchain::Gnu) => "ld.bfd",
    };
    let mut list = match toolchain {
        Toolchain::Llvm => vec![
            ("compiler_c", "clang"),
            ("compiler_cxx", "clang++"),
            ("compiler_objc", "clang"),
            ("compiler_objcxx", "clang++"),
            ("compiler_cpp", "clang-cpp"),
            ("compiler_objcpp", "clang -E -"),
            ("compiler_objcxxcpp", "clang++ -E"),
            ("compiler_d", "ldc2"),
            ("compiler_ar", "llvm-ar"),
            ("compiler_objcopy", "llvm-objcopy"),
            ("compiler_nm", "llvm-nm"),
            ("compiler_ranlib", "llvm-ranlib"),
            ("compiler_strip", "llvm-strip"),
        ],
        Toolchain::Gnu => vec![
            ("compiler_c", "gcc"),
            ("compiler_cxx", "g++"),
            ("compiler_objc", "gcc"),
            ("compiler_objcxx", "g++"),
            ("compiler_cpp", "gcc -E"),
            ("compiler_objcpp", "gcc -E"),
            ("compiler_objcxxcpp", "g++ -E"),
            ("compiler_d", "ldc2"),
            ("compiler_ar", "gcc-ar"),
            ("compiler_objcopy", "objcopy"),
            ("compiler_nm", "gcc-nm"),
            ("compiler_ranlib", "gcc-ranlib"),
            ("compiler_strip", "strip"),
        ],
    };
    list.push(("compiler_ld", ld));
    list
}

/// The work dir name: from the first upstream that is unpacked or cloned.
pub fn work_dir_name(recipe: &Recipe) -> Option<String> {
    recipe.upstreams.iter().find_map(Upstream::unpack_dir)
}

/// The generated prepare script: unpack archives and copy git checkouts, in recipe order.
pub fn prepare_script(recipe: &Recipe) -> String {
    let mut script = String::from(
        "extract() {\n\
         \tif command -v bsdtar-static >/dev/null; then bsdtar-static xf \"$1\" -C \"$2\" --strip-components=\"$3\" --no-same-owner\n\
         \telif command -v bsdtar >/dev/null; then bsdtar xf \"$1\" -C \"$2\" --strip-components=\"$3\" --no-same-owner\n\
         \telse tar xf \"$1\" -C \"$2\" --strip-components=\"$3\" --no-same-owner; fi || { echo \"failed to extract $1\"; exit 1; }\n\
         }\n",
    );
    for upstream in &recipe.upstreams {
        let Some(dir) = upstream.unpack_dir() else {
            continue;
        };
        let name = upstream.file_name();
        match upstream {
            Upstream::Plain { stripdirs, .. } => script.push_str(&format!(
                "mkdir -p \"{dir}\"\nextract \"%(sourcedir)/{name}\" \"{dir}\" {stripdirs}\n"
            )),
            Upstream::Git { .. } => script.push_str(&format!(
                "mkdir -p \"{dir}\"\ncp -Ra --no-preserve=ownership \"%(sourcedir)/{name}/.\" \"{dir}\"\n"
            )),
        }
    }
    script
}

/// The environment of one target and stage, with every builtin set.
pub fn script_env(
    macros: &Macros,
    recipe: &Recipe,
    target: &str,
    stage: PgoStage,
    context: &BuildContext,
) -> Result<(ScriptEnv, String, String), PhaseError> {
    let mut env = ScriptEnv::new(macros, target)?;
    let build_dir = format!("{}/{target}", mason::BUILD);
    let work_dir = match work_dir_name(recipe) {
        Some(name) => format!("{build_dir}/{name}"),
        None => build_dir.clone(),
    };
    let source = &recipe.source;
    for (name, value) in [
        ("name", source.name.clone()),
        ("version", source.version.clone()),
        ("release", source.release.to_string()),
        ("jobs", context.jobs.to_string()),
        ("pkgdir", format!("{}/pkg", mason::RECIPE)),
        ("sourcedir", mason::SOURCEDIR.to_owned()),
        ("installroot", mason::INSTALL.to_owned()),
        ("buildroot", build_dir.clone()),
        ("workdir", work_dir.clone()),
        ("compiler_cache", String::new()),
        ("scompiler_cache", String::new()),
        ("compiler_go_cache", String::new()),
        ("compiler_go_mod_cache", String::new()),
        ("compiler_cargo_cache", String::new()),
        ("compiler_zig_cache", String::new()),
        ("rustc_wrapper", String::new()),
        ("compiler_path", "/usr/bin:/bin".to_owned()),
        ("sourcedateepoch", context.source_date_epoch.to_string()),
        ("pgo_stage", stage.as_str().to_owned()),
        ("pgo_dir", format!("{build_dir}-pgo")),
    ] {
        env.set_builtin(name, value);
    }
    for (name, value) in compilers(recipe.options.toolchain, recipe.mold) {
        env.set_builtin(name, value);
    }
    for (family, flags) in tuning::flags(macros, target, recipe, stage)? {
        env.set_builtin(Family::builtin(family), flags);
    }
    Ok((env, build_dir, work_dir))
}

/// The jobs of a target: PGO stages when the build has a workload, else one.
pub fn jobs(
    macros: &Macros,
    recipe: &Recipe,
    target: &str,
    context: &BuildContext,
) -> Result<(Vec<Job>, BTreeSet<String>), PhaseError> {
    let build = recipe.build_for(target);
    let stages = if build.workload.is_some() {
        let mut stages = vec![PgoStage::One];
        if recipe.options.toolchain == Toolchain::Llvm && recipe.options.cspgo {
            stages.push(PgoStage::Two);
        }
        stages.push(PgoStage::Use);
        stages
    } else {
        vec![PgoStage::None]
    };
    let mut dependencies = BTreeSet::new();
    let mut jobs = Vec::new();
    for stage in stages {
        let (env, build_dir, work_dir) = script_env(macros, recipe, target, stage, context)?;
        let error = |phase: &str| {
            let target = target.to_owned();
            let phase = phase.to_owned();
            let first_line = build.lines.get(&phase).copied();
            move |source: ScriptError| PhaseError::Script {
                recipe_line: first_line
                    .zip(source.line())
                    .map(|(first, line)| first + line as u64 - 1),
                target,
                phase,
                source: Box::new(source),
            }
        };
        let prefix = env.expand("%scriptBase").map_err(error("prefix"))?;
        let prefix = run_text(&prefix.commands);
        let environment = match &build.environment {
            Some(text) => run_text(&env.expand(text).map_err(error("environment"))?.commands),
            None => String::new(),
        };
        let training = matches!(stage, PgoStage::One | PgoStage::Two);
        let mut bodies = vec![
            ("setup", build.setup.clone()),
            ("build", build.build.clone()),
        ];
        if training {
            let merge = match (recipe.options.toolchain, stage) {
                (Toolchain::Llvm, PgoStage::One) => "\n%llvm_merge_s1",
                (Toolchain::Llvm, _) => "\n%llvm_merge_s2",
                _ => "",
            };
            bodies.push((
                "workload",
                build.workload.clone().map(|text| format!("{text}{merge}")),
            ));
        } else {
            bodies.push(("install", build.install.clone()));
            bodies.push(("check", build.check.clone()));
        }
        let prepare_env = env
            .expand(&prepare_script(recipe))
            .map_err(error("prepare"))?;
        let mut phases = vec![Phase {
            breakpoint_profile: None,
            name: "prepare".to_owned(),
            commands: vec![Command::Run(format!(
                "#!/usr/bin/env bash\nset -o errexit -o nounset -o pipefail\ncd \"{build_dir}\"\n{}",
                run_text(&prepare_env.commands)
            ))],
        }];
        for (name, body) in bodies {
            let Some(body) = body.filter(|text| !text.trim().is_empty()) else {
                continue;
            };
            let expansion = env.expand(&body).map_err(error(name))?;
            dependencies.extend(expansion.dependencies);
            let commands: Vec<Command> = expansion
                .commands
                .into_iter()
                .map(|command| match command {
                    Command::Run(text) => Command::Run(format!("{prefix}\n{environment}\n{text}")),
                    other => other,
                })
                .collect();
            let breakpoint_profile = commands
                .iter()
                .any(|command| matches!(command, Command::Break { .. }))
                .then(|| breakpoint_profile(&env, &prefix, &environment));
            phases.push(Phase {
                name: name.to_owned(),
                commands,
                breakpoint_profile,
            });
        }
        jobs.push(Job {
            target: target.to_owned(),
            stage,
            build_dir,
            work_dir,
            phases,
            shell_profile: breakpoint_profile(&env, &prefix, &environment),
        });
    }
    Ok((jobs, dependencies))
}

/// The `.profile` of the shell opened at a breakpoint: the phase prefix without its shebang,
/// shell options and `TERM`, the recipe environment, every action as an exported function
/// `a_<name>` and every definition as an exported variable `d_<name>`.
pub fn breakpoint_profile(env: &ScriptEnv, prefix: &str, environment: &str) -> String {
    let mut profile: String = prefix
        .lines()
        .filter(|line| {
            let line = line.trim_start();
            !(line.starts_with("#!")
                || line.starts_with("set -")
                || line.starts_with("export TERM="))
        })
        .map(|line| format!("{line}\n"))
        .collect();
    profile.push_str(environment);
    profile.push('\n');
    let mut actions: Vec<_> = env.actions().keys().collect();
    actions.sort();
    for name in actions {
        if let Ok(expansion) = env.expand(&format!("%{name}")) {
            profile.push_str(&format!(
                "a_{name}() {{\n{}\n}}\nexport -f a_{name}\n",
                run_text(&expansion.commands)
            ));
        }
    }
    let mut definitions: Vec<_> = env.definitions().keys().collect();
    definitions.sort();
    for name in definitions {
        if let Ok(value) = env.expand_text(&format!("%({name})")) {
            let quoted = value
                .replace('\\', "\\\\")
                .replace('"', "\\\"")
                .replace('$', "\\$")
                .replace('`', "\\`");
            profile.push_str(&format!("export d_{name}=\"{quoted}\"\n"));
        }
    }
    profile
}

fn run_text(commands: &[Command]) -> String {
    commands
        .iter()
        .filter_map(|command| match command {
            Command::Run(text) => Some(text.as_str()),
            Command::Break { .. } => None,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The packages a build root needs: base set, toolchain, emul32 extras, recipe deps of the root
/// and every profile, archive tools and the dependencies of every action used.
pub fn root_packages(recipe: &Recipe, action_dependencies: &BTreeSet<String>) -> Vec<String> {
    let mut packages: BTreeSet<String> = [
        "bash",
        "coreutils",
        "dash",
        "diffutils",
        "findutils",
        "gawk",
        "glibc-devel",
        "grep",
        "layout",
        "libarchive",
        "linux-headers",
        "pkgconf",
        "sed",
        "util-linux",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect();
    match recipe.options.toolchain {
        Toolchain::Llvm => {
            packages.insert("clang".to_owned());
        }
        Toolchain::Gnu => {
            packages.extend(["binary(ld.bfd)", "binary(gcc)", "binary(g++)"].map(str::to_owned));
        }
    }
    if recipe.emul32 {
        packages.insert("glibc-32bit-devel".to_owned());
        match recipe.options.toolchain {
            Toolchain::Llvm => packages.insert("clang-32bit".to_owned()),
            Toolchain::Gnu => {
                packages.insert("gcc-32bit".to_owned());
                packages.insert("libstdc++-32bit-devel".to_owned())
            }
        };
    }
    if recipe.mold {
        packages.insert("binary(mold)".to_owned());
    }
    packages.extend(recipe_dependencies(recipe));
    for upstream in &recipe.upstreams {
        if let Upstream::Plain { url, .. } = upstream {
            let name = upstream.file_name();
            for text in [url.as_str(), name.as_str()] {
                let extension = text.rsplit('.').next().unwrap_or_default();
                match extension {
                    "xz" | "zst" | "bz2" | "gz" | "lz" | "tgz" | "7z" | "zip" => {
                        packages.insert("binary(bsdtar-static)".to_owned());
                    }
                    "rpm" => {
                        packages.insert("binary(rpm2cpio)".to_owned());
                        packages.insert("cpio".to_owned());
                    }
                    "deb" => {
                        packages.insert("binary(ar)".to_owned());
                    }
                    _ => {}
                }
            }
        }
    }
    packages.extend(action_dependencies.iter().cloned());
    packages.into_iter().collect()
}

/// The recipe's own build and check dependencies, root and profiles.
pub fn recipe_dependencies(recipe: &Recipe) -> BTreeSet<String> {
    std::iter::once(&recipe.build)
        .chain(recipe.profiles.iter().map(|(_, build)| build))
        .flat_map(|build| build.builddeps.iter().chain(&build.checkdeps))
        .cloned()
        .collect()
}
