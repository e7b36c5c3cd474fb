//! Health: what `Verify` found.

use gettextrs::gettext;
use moss_proto::wire::Problem;

use crate::view::fill;

/// A problem as a row: where (the store or a state) and what.
pub fn problem_row(problem: &Problem) -> (String, String) {
    let place = if problem.state == 0 {
        gettext("Store")
    } else {
        fill("State {}", &[&problem.state.to_string()])
    };
    (
        problem.path.clone(),
        format!("{place} · {}", problem.problem),
    )
}

/// The summary line after a verification.
pub fn summary(problems: &[Problem]) -> String {
    match problems.len() {
        0 => gettext("No problems found: every file matches its recorded hash"),
        1 => gettext("1 problem found"),
        count => fill("{} problems found", &[&count.to_string()]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problems_name_their_place() {
        let problem = Problem {
            state: 2,
            path: "/usr/bin/tool".into(),
            problem: "content differs".into(),
        };
        assert_eq!(
            problem_row(&problem),
            ("/usr/bin/tool".into(), "State 2 · content differs".into())
        );
        assert_eq!(summary(&[problem.clone(), problem]), "2 problems found");
        assert!(summary(&[]).starts_with("No problems"));
    }
}
