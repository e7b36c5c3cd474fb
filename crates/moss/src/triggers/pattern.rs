//! Path patterns of trigger definitions: globs with named captures.
//!
//! `*` is part of one path component, `**` any run of components (`**/` also matches none, so
//! `/usr/share/fonts/**/*.ttf` matches a font directly in `fonts/`), `?` one character other than
//! `/`, and `(name:sub)` captures what `sub` matches as `$(name)`. Every other character is
//! literal: upstream copies regex syntax through, so `+`, `[` or `|` in a path silently changed
//! what matched; here `\` escapes the next character and nothing else has a meaning.

use std::collections::BTreeMap;

use regex::Regex;

/// A compiled pattern.
#[derive(Debug, Clone)]
pub struct Pattern {
    text: String,
    regex: Regex,
}

/// Why a pattern does not compile.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("pattern {pattern:?} is malformed: {reason}")]
pub struct PatternError {
    /// The pattern text.
    pub pattern: String,
    /// What is wrong.
    pub reason: String,
}

impl Pattern {
    /// Compile `text`.
    pub fn new(text: &str) -> Result<Self, PatternError> {
        let error = |reason: &str| PatternError {
            pattern: text.to_owned(),
            reason: reason.to_owned(),
        };
        let characters: Vec<char> = text.chars().collect();
        let mut position = 0;
        let mut names = Vec::new();
        let body = compile(&characters, &mut position, 0, &mut names).map_err(|e| error(&e))?;
        if position != characters.len() {
            return Err(error("a `)` closes no group"));
        }
        let regex = Regex::new(&format!("^{body}$")).map_err(|e| error(&e.to_string()))?;
        Ok(Self {
            text: text.to_owned(),
            regex,
        })
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The captures when `path` matches, `None` otherwise.
    pub fn captures(&self, path: &str) -> Option<BTreeMap<String, String>> {
        let captures = self.regex.captures(path)?;
        Some(
            self.regex
                .capture_names()
                .flatten()
                .filter_map(|name| {
                    captures
                        .name(name)
                        .map(|value| (name.to_owned(), value.as_str().to_owned()))
                })
                .collect(),
        )
    }
}

fn compile(
    characters: &[char],
    position: &mut usize,
    depth: usize,
    names: &mut Vec<String>,
) -> Result<String, String> {
    let mut out = String::new();
    while let Some(&character) = characters.get(*position) {
        match character {
            ')' if depth > 0 => return Ok(out),
            ')' => return Err("a `)` closes no group".to_owned()),
            '*' if characters.get(*position + 1) == Some(&'*') => {
                if characters.get(*position + 2) == Some(&'/') {
                    out.push_str("(?:.*/)?");
                    *position += 3;
                } else {
                    out.push_str(".*");
                    *position += 2;
                }
            }
            '*' => {
                out.push_str("[^/]*");
                *position += 1;
            }
            '?' => {
                out.push_str("[^/]");
                *position += 1;
            }
            '\\' => {
                let Some(next) = characters.get(*position + 1) else {
                    return Err("it ends with a lone `\\`".to_owned());
                };
                out.push_str(&regex::escape(&next.to_string()));
                *position += 2;
            }
            '(' => {
                let colon = characters[*position + 1..]
                    .iter()
                    .position(|c| *c == ':')
                    .ok_or("a group needs `(name:pattern)`")?;
                let name: String = characters[*position + 1..*position + 1 + colon]
                    .iter()
                    .collect();
                if name.is_empty()
                    || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                    || name.starts_with(|c: char| c.is_ascii_digit())
                {
                    return Err(format!("group name {name:?} is not an identifier"));
                }
                if names.contains(&name) {
                    return Err(format!("group name {name:?} is used twice"));
                }
                names.push(name.clone());
                *position += colon + 2;
                let inner = compile(characters, position, depth + 1, names)?;
                if characters.get(*position) != Some(&')') {
                    return Err(format!("group {name:?} is not closed"));
                }
                *position += 1;
                out.push_str(&format!("(?P<{name}>{inner})"));
            }
            other => {
                out.push_str(&regex::escape(&other.to_string()));
                *position += 1;
            }
        }
    }
    if depth > 0 {
        return Err("a group is not closed".to_owned());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::Pattern;

    fn captures(pattern: &str, path: &str) -> Option<Vec<(String, String)>> {
        Pattern::new(pattern)
            .unwrap()
            .captures(path)
            .map(|map| map.into_iter().collect())
    }

    #[test]
    fn stars_stay_in_one_component() {
        assert!(captures("/usr/lib*/lib*.so.*", "/usr/lib/libc.so.6").is_some());
        assert!(captures("/usr/lib*/lib*.so.*", "/usr/lib32/libz.so.1").is_some());
        assert!(captures("/usr/lib*/lib*.so.*", "/usr/lib/x/libz.so.1").is_none());
        assert!(captures("/usr/share/fonts/**/*.ttf", "/usr/share/fonts/a.ttf").is_some());
        assert!(captures("/usr/share/fonts/**/*.ttf", "/usr/share/fonts/x/y/a.ttf").is_some());
        assert!(captures("/usr/a?c", "/usr/a/c").is_none());
    }

    #[test]
    fn groups_capture() {
        assert_eq!(
            captures(
                "/usr/lib/modules/(version:*)/*",
                "/usr/lib/modules/6.6.7/modules.dep"
            ),
            Some(vec![("version".into(), "6.6.7".into())])
        );
        assert_eq!(
            captures(
                "/usr/lib/modules/(version:*)/*",
                "/usr/lib/modules/6.6.7/a/b"
            ),
            None
        );
    }

    #[test]
    fn regex_syntax_is_literal() {
        assert!(captures("/usr/share/c++/x", "/usr/share/c++/x").is_some());
        assert!(captures("/usr/share/c++/x", "/usr/share/cc/x").is_none());
        assert!(captures("/usr/[ab]", "/usr/a").is_none());
        assert!(captures("/usr/\\*", "/usr/*").is_some());
    }

    #[test]
    fn malformed_groups_are_errors() {
        assert!(Pattern::new("/usr/(version*)").is_err());
        assert!(Pattern::new("/usr/(v:*").is_err());
        assert!(Pattern::new("/usr/x)").is_err());
    }
}
