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
