//! Recipe parsing, macro expansion, tuning and split rules on small inline inputs.

use std::path::Path;

use boulder::{
    collect::{EntryKind, InstalledEntry, PackageSet, rule_matches},
    macros::{Family, Macros},
    recipe::{Recipe, RecipeError, TuningSetting, Upstream},
    script::{Command, ScriptEnv, ScriptError},
    tuning::{self, PgoStage},
};

fn parse(text: &str) -> Result<(Recipe, Vec<boulder::recipe::Warning>), RecipeError> {
    Recipe::parse(text, Path::new("test/stone.yaml"))
}

const MINIMAL: &str =
    "name: demo\nversion: 1.10\nrelease: 2\nhomepage: https://example.invalid\nlicense: MIT\n";

#[test]
fn unquoted_versions_keep_their_text_and_licences_become_lists() {
    let (recipe, warnings) = parse(MINIMAL).unwrap();
    assert_eq!(recipe.source.version, "1.10");
    assert_eq!(recipe.source.release, 2);
    assert_eq!(recipe.source.license, ["MIT"]);
    assert!(warnings.is_empty(), "{warnings:?}");
}

#[test]
fn legacy_booleans_are_accepted_with_a_warning_and_unknown_keys_are_located() {
    let text = format!("{MINIMAL}networking: yes\nemul32: no\ntune:\n  - lto\nstrip: false\n");
    let (recipe, warnings) = parse(&text).unwrap();
    assert!(recipe.options.networking);
    assert!(!recipe.emul32);
    assert!(!recipe.options.strip);
    let messages: Vec<String> = warnings.iter().map(ToString::to_string).collect();
    assert_eq!(messages.len(), 3, "{messages:?}");
    assert!(
        messages[0].starts_with("6:13: `networking: yes` is a legacy boolean"),
        "{messages:?}"
    );
    assert!(messages[1].starts_with("7:9: `emul32: no`"), "{messages:?}");
    assert!(
        messages[2].starts_with("8:1: unknown key `tune`") && messages[2].contains("tuning"),
        "{messages:?}"
    );
}

#[test]
fn errors_name_file_line_and_column() {
    let error = parse(&format!("{MINIMAL}strip: maybe\n")).unwrap_err();
    assert_eq!(
        error.to_string(),
        "test/stone.yaml:6:8: `strip` must be true or false, found `maybe`"
    );
    let error = parse(&MINIMAL.replace("release: 2", "release: 0")).unwrap_err();
    assert_eq!(
        error.to_string(),
        "test/stone.yaml:3:10: release must be a whole number above 0, found `0`"
    );
    let error = parse("name: [unclosed\n").unwrap_err();
    assert!(matches!(error, RecipeError::Yaml { .. }), "{error}");
    assert!(
        error
            .to_string()
            .starts_with("test/stone.yaml: invalid YAML"),
        "{error}"
    );
    let error = parse(&format!(
        "{MINIMAL}upstreams:\n  - https://x.invalid/a.tar.gz:\n      rename: a\n"
    ))
    .unwrap_err();
    assert!(error.to_string().contains("has no `hash`"), "{error}");
}

#[test]
fn upstreams_profiles_tuning_and_packages() {
    let text = format!(
        "{MINIMAL}upstreams:\n  - https://x.invalid/demo-1.10.tar.xz : {hash}\n  - git|https://git.invalid/tools.git : v1.0\n  - https://x.invalid/extra.zip:\n      hash: {hash}\n      unpack: false\n      rename: extra-1.zip\n\
         tuning:\n  - lto: full\n  - icf: no\n  - nosemantic\n  - harden: false\n\
         profiles:\n  - emul32:\n      setup: '%configure --disable-docs'\n\
         setup: '%configure'\nbuild: '%make'\n\
         packages:\n  - '%(name)-tools':\n      summary: Tools\n      paths:\n        - /usr/bin/demo-*\n        - /usr/bin/x: exe\n      rundeps:\n        - '%(name)'\n",
        hash = "a".repeat(64)
    );
    let (recipe, warnings) = parse(&text).unwrap();
    assert_eq!(recipe.upstreams.len(), 3);
    assert!(matches!(&recipe.upstreams[1], Upstream::Git { git_ref, .. } if git_ref == "v1.0"));
    assert_eq!(
        recipe.upstreams[0].unpack_dir().as_deref(),
        Some("demo-1.10.tar.xz")
    );
    assert_eq!(recipe.upstreams[2].unpack_dir(), None);
    assert_eq!(recipe.upstreams[2].file_name(), "extra-1.zip");
    assert_eq!(
        recipe.tuning[0].setting,
        TuningSetting::Option("full".into())
    );
    assert_eq!(recipe.tuning[1].setting, TuningSetting::Disable);
    assert!(
        warnings
            .iter()
            .any(|w| w.message.contains("`icf: no` is read as `icf: false`"))
    );
    assert_eq!(
        recipe.build_for("emul32/x86_64").setup.as_deref(),
        Some("%configure --disable-docs")
    );
    assert_eq!(
        recipe.build_for("emul32/x86_64").build.as_deref(),
        Some("%make")
    );
    assert_eq!(
        recipe.build_for("x86_64").setup.as_deref(),
        Some("%configure")
    );
    assert_eq!(recipe.packages[0].1.paths.len(), 2);
    let json = serde_json::to_value(&recipe).unwrap();
    assert_eq!(json["source"]["version"], "1.10");
    assert_eq!(json["upstreams"][1]["kind"], "git");
}

#[test]
fn targets_follow_emul32_and_architectures() {
    let (mut recipe, _) = parse(MINIMAL).unwrap();
    assert_eq!(recipe.targets("x86_64"), ["x86_64"]);
    recipe.emul32 = true;
    assert_eq!(recipe.targets("x86_64"), ["emul32/x86_64", "x86_64"]);
    recipe.architectures = vec!["native".into()];
    assert_eq!(recipe.targets("x86_64"), ["x86_64"]);
}

fn env(target: &str) -> ScriptEnv {
    let mut env = ScriptEnv::new(&Macros::builtin().unwrap(), target).unwrap();
    for (name, value) in [
        ("name", "demo"),
        ("installroot", "/mason/install"),
        ("jobs", "4"),
    ] {
        env.set_builtin(name, value);
    }
    env
}

#[test]
fn macros_expand_per_target_with_dependencies_and_literal_percent() {
    let native = env("x86_64")
        .expand("%make_install\nprintf '%%s' %(libdir)")
        .unwrap();
    let Command::Run(text) = &native.commands[0] else {
        panic!()
    };
    assert_eq!(
        text,
        "make VERBOSE=1 -j \"4\" install DESTDIR=\"/mason/install\"\nprintf '%s' /usr/lib"
    );
    assert!(native.dependencies.contains("binary(make)"));
    let emul32 = env("emul32/x86_64")
        .expand("%(libdir) %(pkgconfigpath)")
        .unwrap();
    let Command::Run(text) = &emul32.commands[0] else {
        panic!()
    };
    assert!(
        text.starts_with("/usr/lib32 /usr/lib32/pkgconfig"),
        "{text}"
    );
}

#[test]
fn unknown_macros_builtins_and_breakpoints() {
    let error = env("x86_64").expand("echo ok\ndate +%Y\n").unwrap_err();
    assert!(
        matches!(&error, ScriptError::UnknownAction { name, line: 2, .. } if name == "Y"),
        "{error}"
    );
    assert!(error.to_string().contains("`%%`"), "{error}");
    let error = env("x86_64").expand("%(nosuch)").unwrap_err();
    assert_eq!(error.to_string(), "line 1: unknown definition `%(nosuch)`");
    let error = env("x86_64").expand("%(_name)").unwrap_err();
    assert!(matches!(error, ScriptError::BuiltinAtTopLevel { .. }));
    let mut looping = env("x86_64");
    looping.set_definition("a", "%(b)");
    looping.set_definition("b", "%(a)");
    assert!(matches!(
        looping.expand("%(a)").unwrap_err(),
        ScriptError::TooDeep { .. }
    ));
    let expansion = env("x86_64")
        .expand("one\n%break_continue\ntwo\n%break_exit\n")
        .unwrap();
    assert_eq!(expansion.commands.len(), 4);
    assert_eq!(
        expansion.commands[1],
        Command::Break {
            exit: false,
            line: 2
        }
    );
    assert_eq!(
        expansion.commands[3],
        Command::Break {
            exit: true,
            line: 4
        }
    );
}

#[test]
fn tuning_resolves_groups_options_and_toolchains() {
    let macros = Macros::builtin().unwrap();
    let text = format!(
        "{MINIMAL}toolchain: gnu\ntuning:\n  - optimize: speed\n  - lto: false\n  - frame-pointer: false\n"
    );
    let (recipe, _) = parse(&text).unwrap();
    let flags = tuning::flags(&macros, "x86_64", &recipe, PgoStage::None).unwrap();
    let c = &flags[&Family::C];
    assert!(c.contains("-O3") && !c.contains("-O2"), "{c}");
    assert!(!c.contains("-flto"), "{c}");
    assert!(
        c.contains("-fomit-frame-pointer") && c.contains("-march=x86-64-v2"),
        "{c}"
    );
    let emul32 = tuning::flags(&macros, "emul32/x86_64", &recipe, PgoStage::Use).unwrap();
    assert!(emul32[&Family::C].contains("-march=i686"));
    assert!(emul32[&Family::C].contains("-fprofile-use"));
    let (bad, _) = parse(&format!("{MINIMAL}tuning:\n  - lto: medium\n")).unwrap();
    let error = tuning::flags(&macros, "x86_64", &bad, PgoStage::None).unwrap_err();
    assert_eq!(
        error.to_string(),
        "tuning group `lto` has no option `medium`"
    );
}

#[test]
fn split_rules_follow_the_spec_examples() {
    let (recipe, _) = parse(&format!("{MINIMAL}packages:\n  - '%(name)-devel':\n      paths:\n        - /usr/share/demo/devel-only\n  - '%(name)-extra':\n      paths:\n        - /usr/lib/demo/\n")).unwrap();
    let set = PackageSet::new(&recipe, &Macros::builtin().unwrap(), &["x86_64".to_owned()]);
    let route = |path: &str| set.package_for(path).unwrap().name.clone();
    assert_eq!(route("/usr/lib32/debug/x.debug"), "demo-32bit-dbginfo");
    assert_eq!(route("/usr/lib32/libfoo.so"), "demo-32bit-devel");
    assert_eq!(route("/usr/lib32/libfoo.so.1"), "demo-32bit");
    assert_eq!(route("/usr/lib/libfoo.so.1"), "demo");
    assert_eq!(
        route("/usr/lib/libreoffice/program/libmerged.so"),
        "demo-devel"
    );
    assert_eq!(
        route("/usr/lib/python3.12/site-packages/x/foo.a"),
        "demo-devel"
    );
    assert_eq!(route("/usr/share/man/man3/x.3"), "demo-devel");
    assert_eq!(route("/usr/share/man/man1/x.1"), "demo");
    assert_eq!(
        route("/usr/lib/debug/.build-id/ab/cd.debug"),
        "demo-dbginfo"
    );
    assert_eq!(route("/usr/share/demo/devel-only"), "demo-devel");
    assert_eq!(route("/usr/lib/demo/plugin.so"), "demo-extra");
    let devel = set.get("demo-devel").unwrap();
    assert_eq!(devel.rundeps, ["demo"]);
    assert_eq!(devel.summary, "Development files for demo");
    assert!(rule_matches(
        "/usr/lib/qt*/mkspecs",
        "/usr/lib/qt6/mkspecs/linux/qmake.conf"
    ));
    assert!(rule_matches("/usr/lib/lib[a-c]*.so", "/usr/lib/libb.so"));
    assert!(!rule_matches("/usr/lib/lib[!a-c]*.so", "/usr/lib/libb.so"));
    // Path kinds: a `symlink` rule takes only symlinks, an `exe` rule only executables.
    let (recipe, _) = parse(&format!(
        "{MINIMAL}packages:\n  - '%(name)-links':\n      paths:\n        - /usr/bin/*: symlink\n  - '%(name)-tools':\n      paths:\n        - /usr/libexec/*: exe\n"
    ))
    .unwrap();
    let set = PackageSet::new(&recipe, &Macros::builtin().unwrap(), &["x86_64".to_owned()]);
    let entry = |path: &str, mode: u32, kind: EntryKind| InstalledEntry {
        path: path.into(),
        host_path: Default::default(),
        mode,
        kind,
    };
    let route = |entry: InstalledEntry| set.package_for_entry(&entry).unwrap().name.clone();
    assert_eq!(
        route(entry(
            "/usr/bin/a",
            0o120777,
            EntryKind::Symlink("b".into())
        )),
        "demo-links"
    );
    assert_eq!(
        route(entry("/usr/bin/b", 0o100755, EntryKind::Regular(1))),
        "demo"
    );
    assert_eq!(
        route(entry(
            "/usr/libexec/helper",
            0o100755,
            EntryKind::Regular(1)
        )),
        "demo-tools"
    );
    assert_eq!(
        route(entry("/usr/libexec/data", 0o100644, EntryKind::Regular(1))),
        "demo"
    );
}

#[test]
fn jobs_have_pgo_stages_prepare_scripts_and_root_packages() {
    use boulder::phases::{self, BuildContext};
    let macros = Macros::builtin().unwrap();
    let hash = "b".repeat(64);
    let text = format!(
        "{MINIMAL}cspgo: true\nupstreams:\n  - https://x.invalid/demo-1.10.tar.xz : {hash}\n  - https://x.invalid/data.zip:\n      hash: {hash}\n      unpackdir: demo-1.10.tar.xz/data\n      stripdirs: 0\n\
         builddeps:\n  - pkgconfig(zlib)\nprofiles:\n  - emul32:\n      builddeps:\n        - pkgconfig32(zlib)\n\
         setup: '%cmake'\nbuild: '%cmake_build'\nworkload: './bench'\ninstall: '%cmake_install'\n"
    );
    let (recipe, _) = parse(&text).unwrap();
    let context = BuildContext {
        jobs: 3,
        source_date_epoch: 7,
    };
    let (jobs, dependencies) = phases::jobs(&macros, &recipe, "x86_64", &context).unwrap();
    let stages: Vec<_> = jobs.iter().map(|job| job.stage).collect();
    assert_eq!(stages, [PgoStage::One, PgoStage::Two, PgoStage::Use]);
    let names = |index: usize| {
        jobs[index]
            .phases
            .iter()
            .map(|phase| phase.name.as_str())
            .collect::<Vec<_>>()
    };
    assert_eq!(names(0), ["prepare", "setup", "build", "workload"]);
    assert_eq!(names(2), ["prepare", "setup", "build", "install"]);
    assert_eq!(jobs[0].work_dir, "/mason/build/x86_64/demo-1.10.tar.xz");
    let Command::Run(workload) = &jobs[0].phases[3].commands[0] else {
        panic!()
    };
    assert!(
        workload.contains(
            "./bench\nllvm-profdata merge -output=\"/mason/build/x86_64-pgo/ir.profdata\""
        ),
        "{workload}"
    );
    assert!(
        workload.contains("export SOURCE_DATE_EPOCH=\"7\"")
            && workload.contains("-fprofile-generate"),
        "{workload}"
    );
    let Command::Run(prepare) = &jobs[0].phases[0].commands[0] else {
        panic!()
    };
    assert!(
        prepare.contains("extract \"/mason/sourcedir/demo-1.10.tar.xz\" \"demo-1.10.tar.xz\" 1"),
        "{prepare}"
    );
    assert!(
        prepare.contains("extract \"/mason/sourcedir/data.zip\" \"demo-1.10.tar.xz/data\" 0"),
        "{prepare}"
    );
    assert!(dependencies.contains("binary(cmake)") && dependencies.contains("binary(ninja)"));
    let packages = phases::root_packages(&recipe, &dependencies);
    for wanted in [
        "clang",
        "bash",
        "binary(bsdtar-static)",
        "binary(cmake)",
        "pkgconfig(zlib)",
        "pkgconfig32(zlib)",
    ] {
        assert!(
            packages.iter().any(|package| package == wanted),
            "{wanted} not in {packages:?}"
        );
    }
}

#[test]
fn control_kdl_prepends_appends_and_overrides() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("stone.yaml"),
        format!(
            "{MINIMAL}builddeps:\n  - pkgconfig(a)\nsetup: '%configure'\nbuild: '%make'\nrundeps:\n  - x\n\
             profiles:\n  - emul32:\n      install: echo 32\npackages:\n  - '%(name)-devel':\n      rundeps:\n        - y\n"
        ),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("control.kdl"),
        r#"override {
    build "make -j1"
}
append {
    setup "echo after"
    builddeps {
        "pkgconfig(b)"
    }
    rundeps {
        z
    }
    profiles {
        emul32 {
            install "echo more"
        }
    }
    packages {
        "%(name)-devel" {
            conflicts {
                old-devel
            }
        }
    }
}
prepend {
    setup "echo before"
    build "never seen: override comes last"
}
"#,
    )
    .unwrap();
    let recipe = Recipe::load(dir.path()).unwrap().recipe;
    assert_eq!(
        recipe.build.setup.as_deref(),
        Some("echo before\n%configure\necho after")
    );
    assert_eq!(recipe.build.build.as_deref(), Some("make -j1"));
    assert_eq!(recipe.build.builddeps, ["pkgconfig(a)", "pkgconfig(b)"]);
    assert_eq!(recipe.package.rundeps, ["x", "z"]);
    assert_eq!(
        recipe.profiles[0].1.install.as_deref(),
        Some("echo 32\necho more")
    );
    assert_eq!(recipe.packages[0].1.conflicts, ["old-devel"]);

    std::fs::write(
        dir.path().join("control.kdl"),
        "append {\n    packages {\n        nosuch {\n        }\n    }\n}\n",
    )
    .unwrap();
    let error = Recipe::load(dir.path()).unwrap_err();
    assert_eq!(
        error.to_string(),
        format!(
            "{}:3:9: the recipe has no package `nosuch`",
            dir.path().join("control.kdl").display()
        )
    );
}
