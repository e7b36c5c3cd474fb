//! Format-preserving edits of `stone.yaml` (`boulder recipe bump` and `recipe update`).
//!
//! Recipes are hand-written files with comments, aligned keys and a chosen quoting style; a
//! re-serialisation would lose all of that and make every bump a noisy diff. So, like
//! upstream's line-based updater, an edit replaces one value on one line and leaves every
//! other byte alone. The edited text is parsed again before anyone writes it.

use std::path::Path;

use crate::recipe::Recipe;

/// Why a recipe cannot be edited.
#[derive(Debug, thiserror::Error)]
pub enum EditError {
    /// A top-level key the edit needs is missing.
    #[error("{path}: no top-level `{key}:` line to edit; add one (such as `{key} : 1`)")]
    MissingKey { path: String, key: &'static str },
    /// The release is not a number.
    #[error("{path}, line {line}: release `{value}` is not a whole number; fix it by hand first")]
    BadRelease {
        path: String,
        line: usize,
        value: String,
    },
    /// More new upstreams than the recipe has.
    #[error(
        "{path}: {given} new upstreams given but the recipe has {found}; add the extra upstreams to the recipe by hand"
    )]
    TooManyUpstreams {
        path: String,
        given: usize,
        found: usize,
    },
    /// Only plain (archive) upstreams can be replaced here.
    #[error(
        "{path}, line {line}: upstream {index} is a git upstream; change its ref by hand (only plain upstreams are replaced with -u)"
    )]
    GitUpstream {
        path: String,
        line: usize,
        index: usize,
    },
    /// An upstream entry of a shape this updater does not know.
    #[error(
        "{path}, line {line}: cannot find the hash of upstream {index} (expected `- URL : HASH` or a `hash:` line under it)"
    )]
    UnknownUpstream {
        path: String,
        line: usize,
        index: usize,
    },
    /// The edit produced a recipe that does not parse (a bug or an unusual layout).
    #[error("the edited recipe does not parse, nothing was written: {0}")]
    Invalid(#[from] crate::recipe::RecipeError),
}

/// A recipe's text being edited, line by line.
#[derive(Debug, Clone)]
pub struct RecipeText {
    path: String,
    lines: Vec<String>,
    trailing_newline: bool,
}

/// A new plain upstream: its URL and SHA-256.
#[derive(Debug, Clone)]
pub struct NewUpstream {
    /// Where the archive is.
    pub url: String,
    /// Its SHA-256, hex.
    pub hash: String,
}

impl RecipeText {
    /// The text of the recipe at `path` (named in errors).
    pub fn new(text: &str, path: &Path) -> Self {
        Self {
            path: path.display().to_string(),
            lines: text.lines().map(str::to_owned).collect(),
            trailing_newline: text.ends_with('\n'),
        }
    }

    /// The edited text.
    pub fn text(&self) -> String {
        let mut text = self.lines.join("\n");
        if self.trailing_newline {
            text.push('\n');
        }
        text
    }

    /// The line (index) of a top-level `key:` and the byte range of its value.
    fn top_level(&self, key: &'static str) -> Result<(usize, std::ops::Range<usize>), EditError> {
        for (index, line) in self.lines.iter().enumerate() {
            let Some(rest) = line.strip_prefix(key) else {
                continue;
            };
            let padding = rest.len() - rest.trim_start_matches([' ', '\t']).len();
            let Some(after_colon) = rest[padding..].strip_prefix(':') else {
                continue;
            };
            let start = key.len() + padding + 1;
            let value_start = start + (after_colon.len() - after_colon.trim_start().len());
            // A trailing comment (` #`) is not part of the value.
            let value_end = line[value_start..]
                .find(" #")
                .map_or(line.trim_end().len(), |comment| value_start + comment);
            let value_end = value_start + line[value_start..value_end].trim_end().len();
            return Ok((index, value_start..value_end));
        }
        Err(EditError::MissingKey {
            path: self.path.clone(),
            key,
        })
    }

    /// Replace a scalar value, keeping its quotes if it had any.
    fn set_scalar(&mut self, key: &'static str, value: &str) -> Result<(), EditError> {
        let (index, range) = self.top_level(key)?;
        let line = &mut self.lines[index];
        let old = &line[range.clone()];
        let quoted = match old.chars().next() {
            Some(quote @ ('"' | '\'')) if old.len() > 1 && old.ends_with(quote) => {
                format!("{quote}{value}{quote}")
            }
            _ => value.to_owned(),
        };
        line.replace_range(range, &quoted);
        Ok(())
    }

    /// The release, a whole number.
    pub fn release(&self) -> Result<u64, EditError> {
        let (index, range) = self.top_level("release")?;
        let value = self.lines[index][range].trim_matches(['"', '\'']);
        value.parse().map_err(|_| EditError::BadRelease {
            path: self.path.clone(),
            line: index + 1,
            value: value.to_owned(),
        })
    }

    /// Set `release` to `release`, or to one more than it is.
    pub fn bump(&mut self, release: Option<u64>) -> Result<u64, EditError> {
        let new = match release {
            Some(release) => release,
            None => self.release()? + 1,
        };
        self.set_scalar("release", &new.to_string())?;
        Ok(new)
    }

    /// Set `version`.
    pub fn set_version(&mut self, version: &str) -> Result<(), EditError> {
        self.set_scalar("version", version)
    }

    /// Replace the first plain upstreams, in order, by `upstreams` (URL and hash; a nested
    /// entry keeps its other keys, such as `stripdirs` or `rename`).
    pub fn replace_upstreams(&mut self, upstreams: &[NewUpstream]) -> Result<(), EditError> {
        let (start, _) = self.top_level("upstreams")?;
        // The entries: `- ` lines indented under `upstreams`, up to the next top-level line.
        let mut entries = Vec::new();
        let mut index = start + 1;
        while index < self.lines.len() {
            let line = &self.lines[index];
            if !line.trim().is_empty() && !line.starts_with([' ', '\t']) {
                break;
            }
            if line.trim_start().starts_with("- ") {
                entries.push(index);
            }
            index += 1;
        }
        let end = index;
        if upstreams.len() > entries.len() {
            return Err(EditError::TooManyUpstreams {
                path: self.path.clone(),
                given: upstreams.len(),
                found: entries.len(),
            });
        }
        for (position, new) in upstreams.iter().enumerate() {
            let line_index = entries[position];
            let next = entries.get(position + 1).copied().unwrap_or(end);
            self.replace_upstream(line_index, next, position + 1, new)?;
        }
        Ok(())
    }

    fn replace_upstream(
        &mut self,
        line_index: usize,
        next: usize,
        position: usize,
        new: &NewUpstream,
    ) -> Result<(), EditError> {
        let line = self.lines[line_index].clone();
        let dash = line.find("- ").unwrap_or(0);
        let url_start = dash + 2 + (line[dash + 2..].len() - line[dash + 2..].trim_start().len());
        // The key ends at `: ` or a final `:`; URLs hold `:` only followed by `/` or digits.
        let colon = line[url_start..]
            .match_indices(':')
            .map(|(offset, _)| url_start + offset)
            .find(|&at| line[at + 1..].is_empty() || line[at + 1..].starts_with([' ', '\t']))
            .ok_or_else(|| self.unknown(line_index, position))?;
        let url = line[url_start..colon].trim_end();
        if url.starts_with("git|") {
            return Err(EditError::GitUpstream {
                path: self.path.clone(),
                line: line_index + 1,
                index: position,
            });
        }
        let url_end = url_start + url.len();
        let after = line[colon + 1..].trim();
        let mut edited = line.clone();
        if !after.is_empty() && !after.starts_with('#') {
            // `- URL : HASH`.
            let hash_start =
                colon + 1 + (line[colon + 1..].len() - line[colon + 1..].trim_start().len());
            let hash_end = hash_start + after.split_whitespace().next().unwrap_or("").len();
            edited.replace_range(hash_start..hash_end, &new.hash);
        } else {
            // `- URL :` then `hash: HASH` among the nested keys.
            let hash_line = (line_index + 1..next)
                .find(|&index| self.lines[index].trim_start().starts_with("hash"))
                .ok_or_else(|| self.unknown(line_index, position))?;
            let text = &self.lines[hash_line];
            let colon = text
                .find(':')
                .ok_or_else(|| self.unknown(line_index, position))?;
            let value = text[colon + 1..].trim_start();
            let value_start = text.len() - value.len();
            let value_end = value_start + value.split_whitespace().next().unwrap_or("").len();
            self.lines[hash_line].replace_range(value_start..value_end, &new.hash);
        }
        edited.replace_range(url_start..url_end, &new.url);
        self.lines[line_index] = edited;
        Ok(())
    }

    fn unknown(&self, line_index: usize, position: usize) -> EditError {
        EditError::UnknownUpstream {
            path: self.path.clone(),
            line: line_index + 1,
            index: position,
        }
    }

    /// Check that the edited text is still a recipe.
    pub fn validate(&self) -> Result<(), EditError> {
        Recipe::parse(&self.text(), Path::new(&self.path))?;
        Ok(())
    }

    /// The changed lines as `-old` / `+new` pairs (edits never add or remove lines).
    pub fn diff(&self, original: &str) -> String {
        let mut diff = String::new();
        for (number, (old, new)) in original.lines().zip(&self.lines).enumerate() {
            if old != new {
                diff.push_str(&format!("@@ line {}\n-{old}\n+{new}\n", number + 1));
            }
        }
        diff
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RECIPE: &str = "# comment\nname        : demo\nversion     : \"1.2\" # quoted\nrelease     : 9\nupstreams   :\n    - https://example.invalid/demo-1.2.tar.xz : aaaa\n    - file:extra.tar.gz :\n        hash: bbbb\n        stripdirs: 1\nsummary     : x\n";

    #[test]
    fn edits_keep_everything_else() {
        let mut text = RecipeText::new(RECIPE, Path::new("stone.yaml"));
        assert_eq!(text.bump(None).unwrap(), 10);
        text.set_version("1.3").unwrap();
        text.replace_upstreams(&[
            NewUpstream {
                url: "https://example.invalid/demo-1.3.tar.xz".into(),
                hash: "cccc".into(),
            },
            NewUpstream {
                url: "file:extra-2.tar.gz".into(),
                hash: "dddd".into(),
            },
        ])
        .unwrap();
        assert_eq!(
            text.text(),
            "# comment\nname        : demo\nversion     : \"1.3\" # quoted\nrelease     : 10\nupstreams   :\n    - https://example.invalid/demo-1.3.tar.xz : cccc\n    - file:extra-2.tar.gz :\n        hash: dddd\n        stripdirs: 1\nsummary     : x\n"
        );
    }

    #[test]
    fn too_many_upstreams_and_git_are_refused() {
        let mut text = RecipeText::new(
            "release: 1\nupstreams:\n    - git|https://example.invalid/x.git : v1\n",
            Path::new("r"),
        );
        let new = NewUpstream {
            url: "u".into(),
            hash: "h".into(),
        };
        assert!(matches!(
            text.replace_upstreams(&[new.clone(), new.clone()]),
            Err(EditError::TooManyUpstreams { .. })
        ));
        assert!(matches!(
            text.replace_upstreams(&[new]),
            Err(EditError::GitUpstream { line: 3, .. })
        ));
    }
}
