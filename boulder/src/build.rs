//! `boulder build`: fetch, compose the root, run the phases in containers, analyse, split and
//! emit. Progress goes through [`Progress`]; this module never prints.

use std::{
    io::IsTerminal,
    path::{Path, PathBuf},
    time::{Duration, Instant, SystemTime},
};

use crate::{
    analysis,
    collect::{self, PackageSet},
    container::{self, Bind, ContainerSpec},
    emit::{self, Emitted},
    macros::Macros,
    phases::{self, BuildContext, mason},
    recipe::{Recipe, RecipeError, Toolchain, Warning},
    root::BuildRoot,
    script::Command,
    upstream::UpstreamCache,
};

/// The architecture boulder builds on.
pub const HOST_ARCH: &str = std::env::consts::ARCH;

/// Receives what a build does.
pub trait Progress {
    /// A recipe warning.
    fn warning(&self, warning: &Warning);
    /// A step begins (`fetch`, `root`, `x86_64 build`, ...).
    fn step_started(&self, step: &str);
    /// A line of output of a step.
    fn line(&self, step: &str, line: &str);
    /// Something boulder itself says about a step (always shown).
    fn note(&self, step: &str, message: &str);
    /// A step ended.
    fn step_finished(&self, step: &str, elapsed: Duration);
}

/// Settings of one build.
#[derive(Debug)]
pub struct BuildOptions {
    /// `stone.yaml` or its directory.
    pub recipe: PathBuf,
    /// Where the packages and manifests go.
    pub output: PathBuf,
    /// Cache for sources and work directories.
    pub cache_dir: PathBuf,
    /// The build counter written into the packages.
    pub build_release: u64,
    /// The boulder binary, re-executed as the container helper.
    pub helper: PathBuf,
    /// Parallel jobs for `%(jobs)`.
    pub jobs: usize,
    /// Macro data.
    pub macros: Macros,
    /// Keep the work directory afterwards (for debugging).
    pub keep_work: bool,
    /// Compare the new `manifest.ARCH.bin` with this one; on a match the manifests in the
    /// output are left as they are.
    pub verify: Option<PathBuf>,
}

/// A build failed.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The recipe.
    #[error(transparent)]
    Recipe(#[from] RecipeError),
    /// Preparing phases (boxed: script errors carry a macro stack).
    #[error(transparent)]
    Phase(Box<phases::PhaseError>),
    /// Sources.
    #[error(transparent)]
    Upstream(#[from] crate::upstream::UpstreamError),
    /// The root.
    #[error(transparent)]
    Root(#[from] crate::root::RootError),
    /// The container could not run.
    #[error(transparent)]
    Container(#[from] container::ContainerError),
    /// A phase failed.
    #[error("the {step} step failed with exit code {code}")]
    StepFailed {
        /// Which.
        step: String,
        /// Its exit code.
        code: i32,
    },
    /// `%break_exit`.
    #[error("stopped at the breakpoint in the {step} step, line {line}")]
    Breakpoint {
        /// Phase.
        step: String,
        /// Script line.
        line: usize,
    },
    /// Emitting.
    #[error(transparent)]
    Emit(#[from] emit::EmitError),
    /// `--verify` found different packages.
    #[error("the build does not match {}: {differences}", manifest.display())]
    Verify {
        /// The manifest given.
        manifest: PathBuf,
        /// What differs.
        differences: String,
    },
    /// The recipe has no targets for this host.
    #[error("the recipe builds for no target of this {HOST_ARCH} host")]
    NoTargets,
    /// Local I/O.
    #[error("{context} {}: {source}", path.display())]
    Io {
        /// What.
        context: &'static str,
        /// Where.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

impl From<phases::PhaseError> for BuildError {
    fn from(error: phases::PhaseError) -> Self {
        BuildError::Phase(Box::new(error))
    }
}

fn io(context: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> BuildError {
    let path = path.to_path_buf();
    move |source| BuildError::Io {
        context,
        path,
        source,
    }
}

/// What a build produced.
#[derive(Debug, Clone)]
pub struct BuildReport {
    /// Files written into the output directory.
    pub emitted: Emitted,
    /// Packages by name, in output order.
    pub packages: Vec<String>,
    /// Every step with its duration, in order.
    pub timings: Vec<(String, Duration)>,
}

/// SOURCE_DATE_EPOCH: the environment's, else the last git commit of the recipe dir, else now.
pub fn source_date_epoch(recipe_dir: &Path) -> u64 {
    if let Some(value) = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        return value;
    }
    let from_git = std::process::Command::new("git")
        .arg("-C")
        .arg(recipe_dir)
        .args(["log", "-1", "--format=%ct", "--", "."])
        .output()
        .ok()
        .filter(|output| output.status.success())
        .and_then(|output| String::from_utf8_lossy(&output.stdout).trim().parse().ok());
    from_git.unwrap_or_else(|| {
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_secs())
    })
}

struct Runner<'a> {
    options: &'a BuildOptions,
    progress: &'a dyn Progress,
    timings: Vec<(String, Duration)>,
    rootfs: PathBuf,
    binds: Vec<Bind>,
    networking: bool,
    scripts: PathBuf,
    counter: usize,
}

impl Runner<'_> {
    /// Open a login shell in the container with the breakpoint profile, on our terminal.
    fn breakpoint(
        &self,
        host_home: &Path,
        home: &str,
        workdir: &str,
        profile: &str,
    ) -> Result<(), BuildError> {
        let profile_path = host_home.join(".profile");
        std::fs::write(&profile_path, profile).map_err(io("writing", &profile_path))?;
        let spec = ContainerSpec {
            rootfs: self.rootfs.clone(),
            binds: self.binds.clone(),
            networking: self.networking,
            workdir: PathBuf::from(workdir),
            command: vec!["/usr/bin/bash".to_owned(), "--login".to_owned()],
            env: vec![
                ("HOME".to_owned(), home.to_owned()),
                ("PATH".to_owned(), "/usr/bin:/usr/sbin".to_owned()),
                (
                    "TERM".to_owned(),
                    std::env::var("TERM").unwrap_or_else(|_| "dumb".to_owned()),
                ),
            ],
        };
        container::run_interactive(&self.options.helper, &spec)?;
        Ok(())
    }

    fn timed<T>(
        &mut self,
        step: &str,
        work: impl FnOnce(&mut Self) -> Result<T, BuildError>,
    ) -> Result<T, BuildError> {
        self.progress.step_started(step);
        let start = Instant::now();
        let result = work(self);
        let elapsed = start.elapsed();
        self.progress.step_finished(step, elapsed);
        self.timings.push((step.to_owned(), elapsed));
        result
    }

    /// Run a script in the container; a non-zero exit fails the step.
    fn run_script(
        &mut self,
        step: &str,
        script: &str,
        workdir: &str,
        home: &str,
    ) -> Result<(), BuildError> {
        self.counter += 1;
        let file_name = format!("{:03}-{}.sh", self.counter, step.replace(['/', ' '], "-"));
        let host_script = self.scripts.join(&file_name);
        std::fs::write(&host_script, script).map_err(io("writing", &host_script))?;
        let spec = ContainerSpec {
            rootfs: self.rootfs.clone(),
            binds: self.binds.clone(),
            networking: self.networking,
            workdir: PathBuf::from(workdir),
            command: vec![
                "/usr/bin/bash".to_owned(),
                format!("{}/{file_name}", mason::SCRIPTS),
            ],
            env: vec![
                ("HOME".to_owned(), home.to_owned()),
                ("PATH".to_owned(), "/usr/bin:/usr/sbin".to_owned()),
            ],
        };
        let progress = self.progress;
        let code = container::run(&self.options.helper, &spec, |line| {
            progress.line(step, line)
        })?;
        if code != 0 {
            return Err(BuildError::StepFailed {
                step: step.to_owned(),
                code,
            });
        }
        Ok(())
    }
}

/// Build a recipe with a build root.
pub fn build(
    options: &BuildOptions,
    root: &dyn BuildRoot,
    progress: &dyn Progress,
) -> Result<BuildReport, BuildError> {
    let loaded = Recipe::load(&options.recipe)?;
    for warning in &loaded.warnings {
        progress.warning(warning);
    }
    let recipe = loaded.recipe.clone();
    // The parent of a bare file name (`stone.yaml`, the default) is "", which names no
    // directory: it is the current one.
    let recipe_dir = match loaded.path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let recipe_dir = std::fs::canonicalize(&recipe_dir).map_err(io("resolving", &recipe_dir))?;
    let targets = recipe.targets(HOST_ARCH);
    if targets.is_empty() {
        return Err(BuildError::NoTargets);
    }
    let context = BuildContext {
        jobs: options.jobs,
        source_date_epoch: source_date_epoch(&recipe_dir),
    };
    let mut all_jobs = Vec::new();
    let mut action_dependencies = std::collections::BTreeSet::new();
    for target in &targets {
        let (jobs, dependencies) = phases::jobs(&options.macros, &recipe, target, &context)?;
        all_jobs.extend(jobs);
        action_dependencies.extend(dependencies);
    }

    let id = format!(
        "{}-{}-{}",
        recipe.source.name, recipe.source.version, recipe.source.release
    );
    let work = options.cache_dir.join("work").join(&id);
    if work.exists() {
        std::fs::remove_dir_all(&work).map_err(io("cleaning", &work))?;
    }
    let [rootfs, build_dir, install, sourcedir, artefacts, scripts] = [
        "root",
        "build",
        "install",
        "sourcedir",
        "artefacts",
        "scripts",
    ]
    .map(|name| work.join(name));
    for dir in [
        &rootfs, &build_dir, &install, &sourcedir, &artefacts, &scripts,
    ] {
        std::fs::create_dir_all(dir).map_err(io("creating", dir))?;
    }
    let mut runner = Runner {
        options,
        progress,
        timings: Vec::new(),
        rootfs: rootfs.clone(),
        binds: Vec::new(),
        networking: recipe.options.networking,
        scripts: scripts.clone(),
        counter: 0,
    };

    let cache = UpstreamCache::new(options.cache_dir.join("upstreams"));
    let pins = runner.timed("fetch", |_| {
        let mut pins = Vec::new();
        for upstream in &recipe.upstreams {
            let identity = cache.fetch(upstream, &recipe_dir, &sourcedir)?;
            if let crate::recipe::Upstream::Git { url, git_ref, .. } = upstream
                && identity != *git_ref
            {
                pins.push((url.clone(), git_ref.clone(), identity));
            }
        }
        Ok(pins)
    })?;
    if !pins.is_empty() {
        // Tags and branches move; the recipe records the commit that was built.
        let text = std::fs::read_to_string(&loaded.path).map_err(io("reading", &loaded.path))?;
        let pinned = crate::upstream::pin_git_refs(&text, &pins);
        std::fs::write(&loaded.path, pinned).map_err(io("pinning git refs in", &loaded.path))?;
        for (url, git_ref, commit) in &pins {
            progress.note(
                "fetch",
                &format!("pinned {url} {git_ref} to {commit} in the recipe"),
            );
        }
    }

    let packages = phases::root_packages(&recipe, &action_dependencies);
    let composed = runner.timed("root", |_| {
        Ok(root.compose(&rootfs, &packages, recipe.options.networking)?)
    })?;
    runner.binds = composed.binds;
    runner.binds.extend([
        Bind {
            source: recipe_dir.clone(),
            target: mason::RECIPE.into(),
            read_only: true,
        },
        Bind {
            source: sourcedir.clone(),
            target: mason::SOURCEDIR.into(),
            read_only: true,
        },
        Bind {
            source: scripts.clone(),
            target: mason::SCRIPTS.into(),
            read_only: true,
        },
        Bind {
            source: build_dir.clone(),
            target: mason::BUILD.into(),
            read_only: false,
        },
        Bind {
            source: install.clone(),
            target: mason::INSTALL.into(),
            read_only: false,
        },
    ]);
    // `boulder chroot` enters this root later the way the steps do (kept with --keep-work or
    // after a failure).
    if let Some(job) = all_jobs.first() {
        let record = crate::chroot::ChrootRecord {
            rootfs: rootfs.clone(),
            binds: runner.binds.clone(),
            networking: recipe.options.networking,
            home: job.build_dir.clone(),
            host_home: build_dir.join(&job.target),
            workdir: job.build_dir.clone(),
            profile: job.shell_profile.clone(),
        };
        crate::chroot::record(&work, &record).map_err(io("recording the build root", &work))?;
    }
    if let Some(check) = &composed.check_script {
        runner.timed("root check", |runner| {
            runner.run_script("root check", check, "/", "/root")
        })?;
    }

    for job in &all_jobs {
        let job_dir = build_dir.join(&job.target);
        let _ = std::fs::remove_dir_all(&job_dir);
        std::fs::create_dir_all(&job_dir).map_err(io("creating", &job_dir))?;
        if job.stage != crate::tuning::PgoStage::None {
            let pgo = build_dir.join(format!("{}-pgo", job.target));
            std::fs::create_dir_all(&pgo).map_err(io("creating", &pgo))?;
        }
        for phase in &job.phases {
            let step = match job.stage {
                crate::tuning::PgoStage::None => format!("{} {}", job.target, phase.name),
                stage => format!(
                    "{} {} ({})",
                    job.target,
                    phase.name,
                    stage.as_str().to_lowercase()
                ),
            };
            runner.timed(&step, |runner| {
                for command in &phase.commands {
                    match command {
                        Command::Run(script) => {
                            let host_work = build_dir.join(
                                job.work_dir
                                    .trim_start_matches(&format!("{}/", mason::BUILD)),
                            );
                            let workdir = if host_work.is_dir() {
                                &job.work_dir
                            } else {
                                &job.build_dir
                            };
                            runner.run_script(&step, script, workdir, &job.build_dir)?;
                        }
                        Command::Break { exit, line } => {
                            let interactive = std::io::stdin().is_terminal();
                            if interactive {
                                let profile = phase.breakpoint_profile.clone().unwrap_or_default();
                                runner.breakpoint(
                                    &build_dir.join(&job.target),
                                    &job.build_dir,
                                    &job.work_dir,
                                    &profile,
                                )?;
                            } else {
                                runner.progress.note(
                                    &step,
                                    &format!("breakpoint at line {line}: no terminal, so no shell"),
                                );
                            }
                            if *exit {
                                return Err(BuildError::Breakpoint {
                                    step: step.clone(),
                                    line: *line,
                                });
                            }
                        }
                    }
                }
                Ok(())
            })?;
        }
    }

    let set = PackageSet::new(&recipe, &options.macros, &targets);
    if recipe.options.compressman {
        runner.timed("compressman", |_| {
            crate::compress::compress_pages(&install)
                .map_err(io("compressing pages in", &install))?;
            Ok(())
        })?;
    }
    let entries = runner.timed("strip", |runner| {
        let entries = collect::walk(&install).map_err(io("reading", &install))?;
        let jobs = analysis::strip_jobs(&entries, recipe.options.debug, recipe.options.strip);
        if !jobs.is_empty() {
            let script = analysis::strip_script(
                &jobs,
                mason::INSTALL,
                recipe.options.toolchain == Toolchain::Llvm,
                recipe.options.strip,
            );
            runner.run_script("strip", &script, "/", "/root")?;
        }
        collect::walk(&install).map_err(io("reading", &install))
    })?;
    let built = runner.timed("analyse", |_| {
        let findings: Vec<_> = entries
            .iter()
            .map(|entry| analysis::analyse(entry, &install, recipe.options.lastrip))
            .collect();
        Ok(emit::assemble(&set, &entries, &findings)?)
    })?;
    let emitted = runner.timed("emit", |_| {
        let mut emitted = emit::write(
            &recipe,
            &built,
            HOST_ARCH,
            options.build_release,
            &artefacts,
        )?;
        std::fs::create_dir_all(&options.output).map_err(io("creating", &options.output))?;
        let verified = match &options.verify {
            Some(manifest) => {
                verify(manifest, &emitted.manifest_bin)?;
                true
            }
            None => false,
        };
        let mut moved = Vec::new();
        let manifests = [&emitted.manifest_bin, &emitted.manifest_jsonc];
        for path in emitted.stones.iter().chain(manifests) {
            if verified && manifests.contains(&path) {
                // A verified build leaves the existing manifests alone.
                moved.push(options.output.join(path.file_name().unwrap_or_default()));
                continue;
            }
            let name = path.file_name().unwrap_or_default();
            let target = options.output.join(name);
            let _ = std::fs::remove_file(&target);
            if std::fs::hard_link(path, &target).is_err() {
                std::fs::copy(path, &target).map_err(io("copying to", &target))?;
            }
            moved.push(target);
        }
        let manifest_jsonc = moved.pop().unwrap_or_default();
        let manifest_bin = moved.pop().unwrap_or_default();
        emitted = Emitted {
            stones: moved,
            manifest_bin,
            manifest_jsonc,
        };
        Ok(emitted)
    })?;
    let timings = runner.timings;
    if !options.keep_work {
        let _ = std::fs::remove_dir_all(&work);
    }
    Ok(BuildReport {
        emitted,
        packages: built
            .iter()
            .map(|package| package.spec.name.clone())
            .collect(),
        timings,
    })
}

/// Compare two binary manifests: the same bytes, or the same package metadata.
pub fn verify(expected: &Path, built: &Path) -> Result<(), BuildError> {
    let hash = |path: &Path| crate::upstream::sha256_file(path).map_err(io("reading", path));
    if hash(expected)? == hash(built)? {
        return Ok(());
    }
    let packages = |path: &Path| -> Result<Vec<stone::Package>, BuildError> {
        let archive = stone::Archive::open(path).map_err(|error| BuildError::Verify {
            manifest: expected.to_path_buf(),
            differences: error.to_string(),
        })?;
        let mut packages = archive.packages().map_err(|error| BuildError::Verify {
            manifest: expected.to_path_buf(),
            differences: error.to_string(),
        })?;
        packages.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(packages)
    };
    let (old, new) = (packages(expected)?, packages(built)?);
    if old == new {
        return Ok(());
    }
    let names = |list: &[stone::Package]| list.iter().map(|p| p.name.clone()).collect::<Vec<_>>();
    let mut differences = Vec::new();
    if names(&old) != names(&new) {
        differences.push(format!(
            "packages {:?} became {:?}",
            names(&old),
            names(&new)
        ));
    }
    for package in &new {
        if let Some(previous) = old.iter().find(|p| p.name == package.name)
            && previous != package
        {
            differences.push(format!("{} changed", package.name));
        }
    }
    Err(BuildError::Verify {
        manifest: expected.to_path_buf(),
        differences: differences.join("; "),
    })
}
