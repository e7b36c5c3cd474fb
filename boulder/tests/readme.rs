//! The README's `boulder` command lines match `boulder --help`: every command and subcommand
//! is shown, and every line shown is a real command.

use moss_manuals::checks::readme_matches_help;

#[test]
fn the_readme_shows_every_command_of_help() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md"))
        .expect("the README");
    let boulder = std::path::Path::new(env!("CARGO_BIN_EXE_boulder"));
    readme_matches_help(boulder, &readme, "boulder", &["generate"]);
}
