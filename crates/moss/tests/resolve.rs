//! Resolver behaviour: providers, preference order, policies, conflicts, errors, scale.

use std::time::Instant;

use moss::resolve::{Candidate, Origin, Policy, Request, Resolution, ResolveError, resolve};
use stone::Dependency;

fn dep(text: &str) -> Dependency {
    text.parse().expect("valid dependency text")
}

/// A candidate builder: `pkg("name", release)` in repository `main` (priority 0).
#[derive(Clone)]
struct Pkg(Candidate);

fn pkg(name: &str, release: u64) -> Pkg {
    Pkg(Candidate {
        id: format!("{name}-{release}"),
        name: name.to_owned(),
        version: format!("1.{release}"),
        release,
        build_release: 1,
        origin: Origin::Repository {
            id: "main".into(),
            priority: 0,
        },
        provides: Vec::new(),
        depends: Vec::new(),
        conflicts: Vec::new(),
    })
}

impl Pkg {
    fn id(mut self, id: &str) -> Self {
        self.0.id = id.to_owned();
        self
    }
    fn build(mut self, build_release: u64) -> Self {
        self.0.build_release = build_release;
        self
    }
    fn version(mut self, version: &str) -> Self {
        self.0.version = version.to_owned();
        self
    }
    fn repo(mut self, id: &str, priority: u64) -> Self {
        self.0.origin = Origin::Repository {
            id: id.to_owned(),
            priority,
        };
        self
    }
    fn installed(mut self) -> Self {
        self.0.origin = Origin::Installed;
        self
    }
    fn provides(mut self, text: &str) -> Self {
        self.0.provides.push(dep(text));
        self
    }
    fn depends(mut self, text: &str) -> Self {
        self.0.depends.push(dep(text));
        self
    }
    fn conflicts(mut self, text: &str) -> Self {
        self.0.conflicts.push(dep(text));
        self
    }
}

fn candidates(pkgs: &[Pkg]) -> Vec<Candidate> {
    pkgs.iter().map(|p| p.0.clone()).collect()
}

fn want(items: &[&str], policy: Policy) -> Request {
    Request {
        install: items.iter().map(|item| dep(item)).collect(),
        policy,
        ..Request::default()
    }
}

fn ok(pkgs: &[Pkg], request: &Request) -> Resolution {
    match resolve(&candidates(pkgs), request) {
        Ok(resolution) => resolution,
        Err(error) => panic!("resolution failed:\n{error}"),
    }
}

fn err(pkgs: &[Pkg], request: &Request) -> ResolveError {
    match resolve(&candidates(pkgs), request) {
        Ok(resolution) => panic!("expected failure, got {:?}", resolution.selected),
        Err(error) => error,
    }
}

fn sorted(mut ids: Vec<String>) -> Vec<String> {
    ids.sort();
    ids
}

/// For an acyclic selection: every selected package comes after the selected packages
/// providing its dependencies.
fn assert_dependencies_first(candidates: &[Candidate], resolution: &Resolution) {
    use std::collections::HashMap;
    let positions: HashMap<&str, usize> = resolution
        .selected
        .iter()
        .enumerate()
        .map(|(index, id)| (id.as_str(), index))
        .collect();
    let selected: Vec<&Candidate> = candidates
        .iter()
        .filter(|candidate| positions.contains_key(candidate.id.as_str()))
        .collect();
    let mut providers: HashMap<Dependency, Vec<&str>> = HashMap::new();
    for candidate in &selected {
        for provided in candidate
            .provides
            .iter()
            .cloned()
            .chain([Dependency::name(candidate.name.clone())])
        {
            providers.entry(provided).or_default().push(&candidate.id);
        }
    }
    for candidate in &selected {
        for dependency in &candidate.depends {
            let found = providers
                .get(dependency)
                .unwrap_or_else(|| panic!("{dependency} of {} not selected", candidate.id));
            for provider in found {
                assert!(
                    positions[provider] < positions[candidate.id.as_str()],
                    "{provider} must come before {}",
                    candidate.id
                );
            }
        }
    }
}

fn position(resolution: &Resolution, id: &str) -> usize {
    resolution
        .selected
        .iter()
        .position(|selected| selected == id)
        .unwrap_or_else(|| panic!("{id} not selected in {:?}", resolution.selected))
}

#[test]
fn dependencies_by_name_in_install_order() {
    let pkgs = [
        pkg("app", 1).depends("name(lib)"),
        pkg("lib", 1).depends("name(base)"),
        pkg("base", 1),
        pkg("unrelated", 1),
    ];
    let resolution = ok(&pkgs, &want(&["app"], Policy::Install));
    assert_eq!(resolution.selected, ["base-1", "lib-1", "app-1"]);
    assert_eq!(resolution.requested, [vec!["app-1".to_owned()]]);
}

#[test]
fn dependencies_by_soname_and_pkgconfig_providers() {
    let pkgs = [
        pkg("app", 1)
            .depends("soname(libz.so.1(x86_64))")
            .depends("pkgconfig(zlib)")
            .depends("interpreter(/usr/lib/ld-linux-x86-64.so.2(x86_64))"),
        pkg("zlib", 1)
            .provides("soname(libz.so.1(x86_64))")
            .depends("soname(libc.so.6(x86_64))"),
        pkg("zlib-devel", 1)
            .provides("pkgconfig(zlib)")
            .depends("name(zlib)"),
        pkg("glibc", 1)
            .provides("soname(libc.so.6(x86_64))")
            .provides("interpreter(/usr/lib/ld-linux-x86-64.so.2(x86_64))"),
        // Same target text, different kind or ABI tag: not a match.
        pkg("zlib32", 1).provides("soname(libz.so.1(386))"),
        pkg("zlib-pc32", 1).provides("pkgconfig32(zlib)"),
    ];
    let resolution = ok(&pkgs, &want(&["app"], Policy::Install));
    assert_eq!(
        sorted(resolution.selected.clone()),
        ["app-1", "glibc-1", "zlib-1", "zlib-devel-1"]
    );
    assert_dependencies_first(&candidates(&pkgs), &resolution);
    assert!(position(&resolution, "glibc-1") < position(&resolution, "zlib-1"));
    assert!(position(&resolution, "zlib-1") < position(&resolution, "zlib-devel-1"));
    assert_eq!(position(&resolution, "app-1"), 3);

    // A provider text can be requested directly.
    let resolution = ok(&pkgs, &want(&["pkgconfig(zlib)"], Policy::Install));
    assert_eq!(resolution.requested, [vec!["zlib-devel-1".to_owned()]]);
}

#[test]
fn newest_release_then_build_release_then_version_text() {
    let pkgs = [pkg("a", 1), pkg("a", 3), pkg("a", 2)];
    assert_eq!(ok(&pkgs, &want(&["a"], Policy::Install)).selected, ["a-3"]);

    let pkgs = [
        pkg("b", 2).id("b-2-1").build(1),
        pkg("b", 2).id("b-2-3").build(3),
        pkg("b", 2).id("b-2-2").build(2),
        pkg("b", 1).id("b-1-9").build(9),
    ];
    assert_eq!(
        ok(&pkgs, &want(&["b"], Policy::Install)).selected,
        ["b-2-3"]
    );

    let pkgs = [
        pkg("c", 1).id("c-1.9").version("1.9"),
        pkg("c", 1).id("c-1.10").version("1.10"),
    ];
    assert_eq!(
        ok(&pkgs, &want(&["c"], Policy::Install)).selected,
        ["c-1.10"]
    );
}

#[test]
fn repository_priority_beats_newer_release() {
    let pkgs = [
        pkg("a", 9).repo("volatile", 0),
        pkg("a", 2).repo("local-overlay", 10),
        pkg("a", 5).repo("unstable", 5),
    ];
    assert_eq!(ok(&pkgs, &want(&["a"], Policy::Upgrade)).selected, ["a-2"]);
    assert_eq!(ok(&pkgs, &want(&["a"], Policy::Install)).selected, ["a-2"]);
}

#[test]
fn install_policy_keeps_installed_versions() {
    let pkgs = [
        pkg("app", 1).depends("name(lib)"),
        pkg("lib", 1).installed(),
        pkg("lib", 2),
        pkg("new", 1),
        pkg("new", 2),
    ];
    let resolution = ok(&pkgs, &want(&["app", "new"], Policy::Install));
    assert_eq!(sorted(resolution.selected), ["app-1", "lib-1", "new-2"]);
}

#[test]
fn upgrade_policy_picks_newer() {
    let pkgs = [
        pkg("app", 1).installed().depends("name(lib)"),
        pkg("app", 2).depends("name(lib)"),
        pkg("lib", 1).installed(),
        pkg("lib", 2),
    ];
    let resolution = ok(&pkgs, &want(&["app"], Policy::Upgrade));
    assert_eq!(resolution.selected, ["lib-2", "app-2"]);
}

#[test]
fn upgrade_keeps_an_installed_package_that_is_in_the_repository() {
    // The installed id is also offered (the caller lists it twice); nothing newer exists.
    let pkgs = [pkg("a", 3).installed(), pkg("a", 3), pkg("a", 2)];
    assert_eq!(ok(&pkgs, &want(&["a"], Policy::Upgrade)).selected, ["a-3"]);
}

#[test]
fn no_downgrade_unless_allowed() {
    let pkgs = [pkg("a", 5).installed(), pkg("a", 3).repo("main", 10)];
    assert_eq!(ok(&pkgs, &want(&["a"], Policy::Install)).selected, ["a-5"]);
    assert_eq!(ok(&pkgs, &want(&["a"], Policy::Upgrade)).selected, ["a-5"]);
    assert_eq!(
        ok(&pkgs, &want(&["a"], Policy::AllowDowngrade)).selected,
        ["a-3"]
    );
}

#[test]
fn downgrade_candidates_are_excluded_even_when_needed() {
    // The installed a-5 needs something that no longer exists; the older a-3 would work
    // but would be a downgrade.
    let pkgs = [pkg("a", 5).installed().depends("name(gone)"), pkg("a", 3)];
    let error = err(&pkgs, &want(&["a"], Policy::Upgrade)).to_string();
    assert!(
        error.contains("no package provides name(gone); required by a"),
        "{error}"
    );
    assert!(error.contains("older than the installed"), "{error}");

    let resolution = ok(&pkgs, &want(&["a"], Policy::AllowDowngrade));
    assert_eq!(resolution.selected, ["a-3"]);
}

#[test]
fn conflicting_requests_explain_the_conflict() {
    let pkgs = [
        pkg("italian-pizza", 1).conflicts("name(pineapple)"),
        pkg("pineapple", 1),
    ];
    let error = err(
        &pkgs,
        &want(&["italian-pizza", "pineapple"], Policy::Install),
    );
    let ResolveError::Unsatisfiable(details) = &error else {
        panic!("unexpected error {error:?}");
    };
    assert_eq!(details.conflicts.len(), 1, "{error}");
    assert_eq!(details.conflicts[0].package_id, "italian-pizza-1");
    assert_eq!(details.conflicts[0].provider_id, "pineapple-1");
    let text = error.to_string();
    assert!(
        text.contains(
            "italian-pizza 1.1-1 conflicts with name(pineapple), which pineapple 1.1-1 provides"
        ),
        "{text}"
    );
    assert!(
        text.contains("The following packages are incompatible"),
        "{text}"
    );

    // Either one alone is fine.
    ok(&pkgs, &want(&["italian-pizza"], Policy::Install));
    ok(&pkgs, &want(&["pineapple"], Policy::Install));
}

#[test]
fn conflicts_on_a_provider_and_from_either_side() {
    // The conflict names a provider, not a package, and the pineapple is pulled in
    // indirectly.
    let pkgs = [
        pkg("italian-pizza", 1).conflicts("binary(fruit-on-pizza)"),
        pkg("hawaii", 1).depends("name(pineapple)"),
        pkg("pineapple", 1).provides("binary(fruit-on-pizza)"),
    ];
    let error = err(&pkgs, &want(&["hawaii", "italian-pizza"], Policy::Install)).to_string();
    assert!(
        error.contains("conflicts with binary(fruit-on-pizza)"),
        "{error}"
    );
    let error = err(&pkgs, &want(&["italian-pizza", "hawaii"], Policy::Install)).to_string();
    assert!(error.contains("pineapple"), "{error}");
}

#[test]
fn conflicts_steer_the_choice_between_providers() {
    // pineapple is preferred (higher priority) for binary(topping), but conflicts with the
    // pizza, so the solver backtracks to ham.
    let pkgs = [
        pkg("pizza", 1)
            .depends("binary(topping)")
            .conflicts("name(pineapple)"),
        pkg("pineapple", 1)
            .repo("fruit", 10)
            .provides("binary(topping)"),
        pkg("ham", 1).provides("binary(topping)"),
    ];
    let resolution = ok(&pkgs, &want(&["pizza"], Policy::Install));
    assert_eq!(resolution.selected, ["ham-1", "pizza-1"]);

    // Without the conflict, the higher priority provider wins.
    let mut pkgs = pkgs;
    pkgs[0].0.conflicts.clear();
    let resolution = ok(&pkgs, &want(&["pizza"], Policy::Install));
    assert_eq!(resolution.selected, ["pineapple-1", "pizza-1"]);
}

#[test]
fn a_package_conflicting_with_its_own_provider_is_installable() {
    // Replacement packages declare a conflict on what they also provide.
    let pkgs = [
        pkg("new-sh", 1)
            .provides("binary(sh)")
            .conflicts("binary(sh)"),
        pkg("old-sh", 1).provides("binary(sh)"),
    ];
    let resolution = ok(&pkgs, &want(&["new-sh"], Policy::Install));
    assert_eq!(resolution.selected, ["new-sh-1"]);
    err(&pkgs, &want(&["new-sh", "old-sh"], Policy::Install));
}

#[test]
fn missing_provider_names_it_and_the_requirer() {
    let pkgs = [
        pkg("app", 1).depends("name(bar)"),
        pkg("bar", 1).depends("soname(libfoo.so.1(x86_64))"),
    ];
    let error = err(&pkgs, &want(&["app"], Policy::Install));
    let ResolveError::Unsatisfiable(details) = &error else {
        panic!("unexpected error {error:?}");
    };
    assert_eq!(details.missing.len(), 1);
    assert_eq!(
        details.missing[0].dependency,
        dep("soname(libfoo.so.1(x86_64))")
    );
    assert_eq!(details.missing[0].required_by_id, "bar-1");
    let text = error.to_string();
    assert!(
        text.contains("no package provides soname(libfoo.so.1(x86_64)); required by bar 1.1-1"),
        "{text}"
    );
    assert!(text.contains("app"), "{text}");
}

#[test]
fn missing_provider_falls_back_to_a_candidate_that_works() {
    let pkgs = [
        pkg("bar", 2).depends("soname(libfoo.so.2(x86_64))"),
        pkg("bar", 1),
    ];
    let resolution = ok(&pkgs, &want(&["bar"], Policy::Install));
    assert_eq!(resolution.selected, ["bar-1"]);
}

#[test]
fn requested_item_without_any_provider() {
    let pkgs = [pkg("a", 1)];
    let error = err(
        &pkgs,
        &want(&["a", "soname(libnope.so.1(x86_64))"], Policy::Install),
    );
    assert_eq!(
        error,
        ResolveError::NoProvider {
            dependencies: vec![dep("soname(libnope.so.1(x86_64))")]
        }
    );
    assert_eq!(
        error.to_string(),
        "no package provides soname(libnope.so.1(x86_64)); requested"
    );
}

#[test]
fn dependency_cycles_resolve() {
    let pkgs = [
        pkg("app", 1).depends("name(a)"),
        pkg("a", 1).depends("name(b)"),
        pkg("b", 1).depends("name(c)"),
        pkg("c", 1).depends("name(a)").depends("name(base)"),
        pkg("base", 1),
        pkg("self", 1).depends("name(self)"),
    ];
    let resolution = ok(&pkgs, &want(&["app", "self"], Policy::Install));
    assert_eq!(
        sorted(resolution.selected.clone()),
        ["a-1", "app-1", "b-1", "base-1", "c-1", "self-1"]
    );
    assert_eq!(position(&resolution, "base-1"), 0);
    assert!(position(&resolution, "a-1") < position(&resolution, "app-1"));
}

#[test]
fn locked_and_kept_packages() {
    let pkgs = [
        pkg("app", 2).depends("name(lib)"),
        pkg("lib", 1).installed(),
        pkg("lib", 2),
    ];
    // Upgrade would move lib to 2; the lock holds it.
    let mut request = want(&["app"], Policy::Upgrade);
    request.lock = vec!["lib-1".into()];
    assert_eq!(ok(&pkgs, &request).selected, ["lib-1", "app-2"]);
    // keep is a preference too.
    let mut request = want(&["app"], Policy::Upgrade);
    request.keep = vec!["lib-1".into()];
    assert_eq!(ok(&pkgs, &request).selected, ["lib-1", "app-2"]);

    // A lock that cannot hold makes resolution fail, naming the lock.
    let pkgs = [
        pkg("app", 2).depends("name(lib)"),
        pkg("lib", 1).installed().conflicts("name(app)"),
        pkg("lib", 2),
    ];
    let mut request = want(&["app"], Policy::Upgrade);
    request.lock = vec!["lib-1".into()];
    let error = err(&pkgs, &request).to_string();
    assert!(error.contains("locked"), "{error}");
    // Without the lock the solver finds lib-2.
    assert_eq!(
        ok(&pkgs, &want(&["app"], Policy::Install)).selected,
        ["lib-2", "app-2"]
    );
}

#[test]
fn provider_by_several_names_prefers_installed_then_priority() {
    let pkgs = [
        pkg("app", 1).depends("binary(editor)"),
        pkg("nano", 1).provides("binary(editor)").repo("main", 1),
        pkg("vim", 1).provides("binary(editor)").repo("main", 5),
        pkg("emacs", 1).provides("binary(editor)").installed(),
    ];
    let resolution = ok(&pkgs, &want(&["app"], Policy::Install));
    assert_eq!(resolution.selected, ["emacs-1", "app-1"]);
    let resolution = ok(&pkgs[..3], &want(&["app"], Policy::Install));
    assert_eq!(resolution.selected, ["vim-1", "app-1"]);
}

#[test]
fn results_do_not_depend_on_candidate_order() {
    let pkgs = vec![
        pkg("app", 1).depends("name(a)").depends("name(b)"),
        pkg("a", 1).depends("name(c)"),
        pkg("a", 2).depends("name(c)"),
        pkg("b", 1).depends("soname(libc.so(x))"),
        pkg("c", 1).provides("soname(libc.so(x))"),
        pkg("c2", 1).provides("soname(libc.so(x))"),
    ];
    let request = want(&["app"], Policy::Install);
    let first = ok(&pkgs, &request);
    let mut reversed = pkgs.clone();
    reversed.reverse();
    assert_eq!(ok(&reversed, &request), first);
}

/// `layers` layers of `width` packages; each package depends on three packages of the
/// next layer, alternately by name, soname and pkgconfig, and exists in two releases.
fn layered(layers: usize, width: usize) -> Vec<Candidate> {
    let mut candidates = Vec::with_capacity(layers * width * 2);
    for layer in 0..layers {
        for index in 0..width {
            for release in 1..=2 {
                let mut package = pkg(&format!("p{layer}-{index}"), release)
                    .provides(&format!("soname(libp{layer}-{index}.so.{release}(x86_64))"))
                    .provides(&format!("pkgconfig(p{layer}-{index})"));
                if layer + 1 < layers {
                    let next = layer + 1;
                    package = package
                        .depends(&format!("name(p{next}-{})", index % width))
                        .depends(&format!(
                            "soname(libp{next}-{}.so.2(x86_64))",
                            (index * 7 + 1) % width
                        ))
                        .depends(&format!("pkgconfig(p{next}-{})", (index * 13 + 5) % width));
                }
                candidates.push(package.0);
            }
        }
    }
    candidates
}

#[test]
#[allow(clippy::print_stderr)]
fn layered_graph_of_5000_packages() {
    let (layers, width) = (10, 500);
    let candidates = layered(layers, width);
    let request = Request {
        install: (0..width)
            .map(|i| Dependency::name(format!("p0-{i}")))
            .collect(),
        policy: Policy::Upgrade,
        ..Request::default()
    };
    let started = Instant::now();
    let resolution = resolve(&candidates, &request).expect("layered graph resolves");
    eprintln!(
        "resolved {} of {} candidates ({} names) in {:?}",
        resolution.selected.len(),
        candidates.len(),
        layers * width,
        started.elapsed()
    );
    assert_eq!(resolution.selected.len(), layers * width);
    assert!(resolution.selected.iter().all(|id| id.ends_with("-2")));
    assert_dependencies_first(&candidates, &resolution);
}

/// Scale check for large repositories; run with
/// `cargo test --release -p moss --test resolve -- --ignored`.
#[test]
#[ignore = "slow in debug builds; run with --release"]
#[allow(clippy::print_stderr)]
fn layered_graph_of_50000_packages() {
    let (layers, width) = (50, 1000);
    let candidates = layered(layers, width);
    let request = Request {
        install: (0..width)
            .map(|i| Dependency::name(format!("p0-{i}")))
            .collect(),
        policy: Policy::Upgrade,
        ..Request::default()
    };
    let started = Instant::now();
    let resolution = resolve(&candidates, &request).expect("layered graph resolves");
    eprintln!(
        "resolved {} of {} candidates ({} names) in {:?}",
        resolution.selected.len(),
        candidates.len(),
        layers * width,
        started.elapsed()
    );
    assert_eq!(resolution.selected.len(), layers * width);
    assert_dependencies_first(&candidates, &resolution);
}
