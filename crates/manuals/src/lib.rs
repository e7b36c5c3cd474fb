//! Man pages and shell completions, generated from a binary's own clap definition so that they
//! never drift from `--help`: each binary exposes them through a hidden command
//! (`moss generate ...`, `boulder generate ...`, `mossd --generate-*`) that packaging runs.

use std::{
    io::{self, Write},
    path::{Path, PathBuf},
};

pub use clap_complete::Shell;

/// Write `NAME.1` for `command` and `NAME-SUB.1` for every visible subcommand (recursively)
/// into `directory`; returns the files written.
pub fn write_man_pages(command: clap::Command, directory: &Path) -> io::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(directory)?;
    let mut command = command;
    command.build();
    let mut written = Vec::new();
    write_page(&command, command.get_name(), directory, &mut written)?;
    Ok(written)
}

fn write_page(
    command: &clap::Command,
    name: &str,
    directory: &Path,
    written: &mut Vec<PathBuf>,
) -> io::Result<()> {
    // The page's title is the full command (`moss-state-list`), as git and cargo name theirs.
    let page = command.clone().name(name.to_owned());
    let path = directory.join(format!("{name}.1"));
    let mut buffer = Vec::new();
    clap_mangen::Man::new(page).render(&mut buffer)?;
    std::fs::write(&path, buffer)?;
    written.push(path);
    for sub in command
        .get_subcommands()
        .filter(|sub| !sub.is_hide_set() && sub.get_name() != "help")
    {
        write_page(
            sub,
            &format!("{name}-{}", sub.get_name()),
            directory,
            written,
        )?;
    }
    Ok(())
}

/// Print the completion script of `command` for `shell`.
pub fn write_completions(command: clap::Command, shell: Shell, out: &mut dyn Write) {
    let mut command = command;
    let name = command.get_name().to_owned();
    clap_complete::generate(shell, &mut command, name, out);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example() -> clap::Command {
        clap::Command::new("tool")
            .about("A tool")
            .subcommand(clap::Command::new("list").about("List things"))
            .subcommand(clap::Command::new("secret").hide(true))
    }

    #[test]
    fn pages_cover_visible_subcommands_and_completions_name_the_binary() {
        let directory = tempfile::tempdir().unwrap();
        let written = write_man_pages(example(), directory.path()).unwrap();
        let names: Vec<String> = written
            .iter()
            .map(|path| path.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["tool.1", "tool-list.1"]);
        let page = std::fs::read_to_string(directory.path().join("tool-list.1")).unwrap();
        assert!(page.contains(".TH tool-list 1"), "{page}");
        let mut script = Vec::new();
        write_completions(example(), Shell::Bash, &mut script);
        assert!(
            String::from_utf8(script)
                .unwrap()
                .contains("complete -F _tool")
        );
    }
}

/// Checks for the binaries' tests: the generated pages render with the real `man -l`, and the
/// bash script loads in the real bash.
pub mod checks {
    use std::{path::Path, process::Command};

    /// man's output without overstrike (bold and underline are `c\bc`, `_\bc`).
    pub fn plain(bytes: &[u8]) -> String {
        let mut text: Vec<char> = Vec::new();
        for character in String::from_utf8_lossy(bytes).chars() {
            if character == '\u{8}' {
                text.pop();
                continue;
            }
            text.push(character);
        }
        text.into_iter().collect()
    }

    /// Run `binary MAN_ARGS DIR`, render every page with `man -l` (each must have a NAME
    /// section), and return the pages' file names, sorted, with their rendered text.
    pub fn rendered_pages(binary: &Path, man_arguments: &[&str]) -> Vec<(String, String)> {
        let directory = tempfile_dir();
        let status = Command::new(binary)
            .args(man_arguments)
            .arg(&directory)
            .status()
            .expect("the binary runs");
        assert!(
            status.success(),
            "{} {man_arguments:?} failed",
            binary.display()
        );
        let mut pages: Vec<String> = std::fs::read_dir(&directory)
            .expect("the pages directory")
            .map(|entry| {
                entry
                    .expect("an entry")
                    .file_name()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        pages.sort();
        let rendered = pages
            .into_iter()
            .map(|page| {
                let output = Command::new("man")
                    .arg("-l")
                    .arg(directory.join(&page))
                    .env("MANWIDTH", "80")
                    .output()
                    .expect("man (apt-get install man-db)");
                let text = plain(&output.stdout);
                assert!(
                    output.status.success() && text.contains("NAME"),
                    "{page}: {text}"
                );
                (page, text)
            })
            .collect();
        let _ = std::fs::remove_dir_all(&directory);
        rendered
    }

    /// Run `binary COMPLETION_ARGS bash`, load the script in bash and check that `name`
    /// completes through it; zsh and fish scripts must be produced too.
    pub fn completions_load(binary: &Path, completion_arguments: &[&str], name: &str) {
        let script = |shell: &str| {
            let output = Command::new(binary)
                .args(completion_arguments)
                .arg(shell)
                .output()
                .expect("the binary runs");
            assert!(
                output.status.success() && output.stdout.len() > 500,
                "{shell}"
            );
            output.stdout
        };
        let directory = tempfile_dir();
        let path = directory.join(format!("{name}.bash"));
        std::fs::write(&path, script("bash")).expect("write the script");
        let loaded = Command::new("bash")
            .arg("-c")
            .arg(format!("source {} && complete -p {name}", path.display()))
            .output()
            .expect("bash runs");
        let registered = String::from_utf8_lossy(&loaded.stdout).into_owned();
        let _ = std::fs::remove_dir_all(&directory);
        assert!(
            registered.contains(&format!("-F _{name} {name}")),
            "{registered}"
        );
        script("zsh");
        script("fish");
    }

    /// The subcommands `binary ARGUMENTS --help` lists (without `help`).
    pub fn listed_commands(binary: &Path, arguments: &[&str]) -> Vec<String> {
        let output = Command::new(binary)
            .args(arguments)
            .arg("--help")
            .env("COLUMNS", "200")
            .output()
            .expect("the binary runs");
        let text = String::from_utf8_lossy(&output.stdout).into_owned();
        let Some(section) = text.split("Commands:\n").nth(1) else {
            return Vec::new();
        };
        section
            .lines()
            .take_while(|line| !line.trim().is_empty())
            // Entries are indented by two spaces; wrapped descriptions by more.
            .filter(|line| line.starts_with("  ") && !line[2..].starts_with(' '))
            .filter_map(|line| line.split_whitespace().next())
            .filter(|name| *name != "help")
            .map(str::to_owned)
            .collect()
    }

    /// Check that the README's command lines (lines of its code blocks starting with `program `)
    /// name every command and subcommand `binary --help` lists, and that each of those lines
    /// starts with a listed command or one of `hidden`. Returns the README lines found.
    pub fn readme_matches_help(
        binary: &Path,
        readme: &str,
        program: &str,
        hidden: &[&str],
    ) -> Vec<String> {
        let prefix = format!("{program} ");
        // Only lines of code blocks: prose may start with the program's name too.
        let mut in_code = false;
        let code: Vec<&str> = readme
            .lines()
            .map(str::trim)
            .filter(|line| {
                if line.starts_with("```") {
                    in_code = !in_code;
                    return false;
                }
                in_code
            })
            .collect();
        let lines: Vec<Vec<String>> = code
            .into_iter()
            .filter(|line| line.starts_with(&prefix))
            .map(|line| {
                // Comments are not commands.
                let line = line.split("  #").next().unwrap_or(line);
                line.split(|character: char| {
                    character.is_whitespace() || "|[];".contains(character)
                })
                .filter(|token| !token.is_empty())
                .map(str::to_owned)
                .collect()
            })
            .collect();
        assert!(!lines.is_empty(), "the README has no `{program} ...` lines");
        let commands = listed_commands(binary, &[]);
        assert!(!commands.is_empty(), "{program} --help lists no commands");
        for command in &commands {
            assert!(
                lines.iter().any(|tokens| tokens.contains(command)),
                "the README shows no `{program} {command}` line"
            );
            for subcommand in listed_commands(binary, &[command]) {
                assert!(
                    lines
                        .iter()
                        .any(|tokens| tokens.contains(command) && tokens.contains(&subcommand)),
                    "the README shows no `{program} {command} {subcommand}` line"
                );
            }
        }
        for tokens in &lines {
            // The command is the first word that is neither an option nor a placeholder.
            let first = tokens[1..]
                .iter()
                .find(|token| {
                    !token.starts_with('-')
                        && token
                            .chars()
                            .any(|character| character.is_ascii_lowercase())
                        && !token.contains('/')
                        && !token.contains('=')
                })
                .cloned()
                .unwrap_or_default();
            assert!(
                commands.contains(&first) || hidden.contains(&first.as_str()),
                "the README line `{}` names no command of {program} --help",
                tokens.join(" ")
            );
        }
        lines.into_iter().map(|tokens| tokens.join(" ")).collect()
    }

    fn tempfile_dir() -> std::path::PathBuf {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let directory = std::env::temp_dir().join(format!(
            "moss-manuals-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
        ));
        std::fs::create_dir_all(&directory).expect("a scratch directory");
        directory
    }
}
