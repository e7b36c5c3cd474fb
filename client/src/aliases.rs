//! Upstream's two-word short aliases (`li` = `list installed`, `ar` = `repo add`, ...), which
//! clap cannot express as subcommand aliases. Unlike upstream, only the word in the subcommand
//! position is rewritten, so a package that happens to be called `rm` or `ls` is left alone.

use std::ffi::OsString;

/// Alias, then the words it stands for.
const ALIASES: &[(&str, &[&str])] = &[
    ("li", &["list", "installed"]),
    ("la", &["list", "available"]),
    ("ls", &["list", "sync"]),
    ("lu", &["list", "sync"]),
    ("ar", &["repo", "add"]),
    ("lr", &["repo", "list"]),
    ("rr", &["repo", "remove"]),
    ("ur", &["repo", "update"]),
    ("er", &["repo", "enable"]),
    ("dr", &["repo", "disable"]),
];

/// Global options that take a value, so the word after them is not the subcommand.
const VALUED: &[&str] = &["-D", "--directory"];

/// `arguments` (the program name first) with an alias in the subcommand position expanded.
pub fn expand(arguments: Vec<OsString>) -> Vec<OsString> {
    let mut position = 1;
    while let Some(word) = arguments.get(position).and_then(|word| word.to_str()) {
        if VALUED.contains(&word) {
            position += 2;
        } else if word.starts_with('-') {
            position += 1;
        } else {
            break;
        }
    }
    let Some((_, words)) = arguments
        .get(position)
        .and_then(|word| word.to_str())
        .and_then(|word| ALIASES.iter().find(|(alias, _)| *alias == word))
    else {
        return arguments;
    };
    let mut expanded = arguments[..position].to_vec();
    expanded.extend(words.iter().map(OsString::from));
    expanded.extend_from_slice(&arguments[position + 1..]);
    expanded
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(words: &[&str]) -> Vec<String> {
        expand(words.iter().map(OsString::from).collect())
            .into_iter()
            .map(|word| word.into_string().unwrap())
            .collect()
    }

    #[test]
    fn only_the_subcommand_word_is_rewritten() {
        assert_eq!(run(&["moss", "li"]), ["moss", "list", "installed"]);
        assert_eq!(
            run(&["moss", "-D", "/r", "-y", "ar", "x", "file:///i"]),
            ["moss", "-D", "/r", "-y", "repo", "add", "x", "file:///i"]
        );
        assert_eq!(
            run(&["moss", "--directory", "li", "la"]),
            ["moss", "--directory", "li", "list", "available"]
        );
        assert_eq!(
            run(&["moss", "install", "rm", "ls"]),
            ["moss", "install", "rm", "ls"]
        );
        assert_eq!(run(&["moss"]), ["moss"]);
    }
}
