//! Install order of a selection, and version-text comparison.

use std::cmp::Ordering;

/// Order `roots` (indices below `len`) so that every package comes after the packages it
/// depends on (`dependencies(index)`, which must only return indices from `roots`), except
/// within dependency cycles, where the order follows the depth-first walk.
///
/// Iterative depth-first post-order from each root in turn, so deep chains cannot overflow
/// the stack and the result is deterministic for deterministic inputs. Linear in nodes plus
/// edges.
pub(super) fn install_order(
    roots: &[usize],
    len: usize,
    mut dependencies: impl FnMut(usize) -> Vec<usize>,
) -> Vec<usize> {
    let mut visited = vec![false; len];
    let mut ordered = Vec::with_capacity(roots.len());
    // Each frame: a node and its dependencies still to visit (reversed, popped from the end).
    let mut stack: Vec<(usize, Vec<usize>)> = Vec::new();

    for &root in roots {
        if visited[root] {
            continue;
        }
        visited[root] = true;
        let mut pending = dependencies(root);
        pending.reverse();
        stack.push((root, pending));

        while let Some((node, pending)) = stack.last_mut() {
            match pending.pop() {
                Some(next) if !visited[next] => {
                    visited[next] = true;
                    let mut next_pending = dependencies(next);
                    next_pending.reverse();
                    stack.push((next, next_pending));
                }
                Some(_) => {}
                None => {
                    ordered.push(*node);
                    stack.pop();
                }
            }
        }
    }
    ordered
}

fn trim_zeros(digits: &[u8]) -> &[u8] {
    let start = digits
        .iter()
        .position(|&c| c != b'0')
        .unwrap_or(digits.len());
    &digits[start..]
}

/// How one build of a package ranks against another, newer being greater: `release` (the
/// recipe's counter, which orders builds) first, then `build_release`, then the version text.
/// The resolver prefers the greatest; `moss list sync --upgrade-only` keeps changes that go up.
pub fn compare_builds(
    (a_version, a_release, a_build_release): (&str, u64, u64),
    (b_version, b_release, b_build_release): (&str, u64, u64),
) -> Ordering {
    a_release
        .cmp(&b_release)
        .then(a_build_release.cmp(&b_build_release))
        .then_with(|| compare_versions(a_version, b_version))
}

/// Compare version texts segment by segment, like `rpmvercmp`: separators (anything not
/// ASCII alphanumeric) only split segments; digit runs compare numerically (ignoring
/// leading zeros) and are newer than letter runs; letter runs compare as text; with equal
/// segments, the text with segments left over is newer. `1.10` > `1.9`, `2.0a` > `2.0`,
/// `1.0` > `1.a`.
pub fn compare_versions(a: &str, b: &str) -> Ordering {
    let separator = |c: &u8| !c.is_ascii_alphanumeric();
    let (mut a, mut b) = (a.as_bytes(), b.as_bytes());
    loop {
        a = &a[a.iter().position(|c| !separator(c)).unwrap_or(a.len())..];
        b = &b[b.iter().position(|c| !separator(c)).unwrap_or(b.len())..];
        let (Some(x), Some(y)) = (a.first(), b.first()) else {
            return a.len().min(1).cmp(&b.len().min(1));
        };
        let digits = x.is_ascii_digit();
        if digits != y.is_ascii_digit() {
            return if digits {
                Ordering::Greater
            } else {
                Ordering::Less
            };
        }
        let run = |s: &[u8]| {
            s.iter()
                .position(|c| separator(c) || c.is_ascii_digit() != digits)
                .unwrap_or(s.len())
        };
        let (run_a, rest_a) = a.split_at(run(a));
        let (run_b, rest_b) = b.split_at(run(b));
        let ordering = if digits {
            let (ta, tb) = (trim_zeros(run_a), trim_zeros(run_b));
            ta.len().cmp(&tb.len()).then_with(|| ta.cmp(tb))
        } else {
            run_a.cmp(run_b)
        };
        if ordering != Ordering::Equal {
            return ordering;
        }
        (a, b) = (rest_a, rest_b);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_compare_naturally() {
        use Ordering::*;
        for (a, b, expected) in [
            ("1.10", "1.9", Greater),
            ("1.9", "1.10", Less),
            ("1.0", "1.0", Equal),
            ("1.01", "1.1", Equal),
            ("2.0a", "2.0", Greater),
            ("1.0", "1.a", Greater),
            ("6.2.1", "6.2", Greater),
            ("", "0", Less),
            ("20240101", "9999", Greater),
            ("1.2.3-rc1", "1.2.3-rc2", Less),
            ("123456789012345678901234567890", "2", Greater),
            ("1.0", "1-0", Equal),
            ("1.0.", "1.0", Equal),
            ("1.2", "1.2.0", Less),
            ("abc", "abd", Less),
        ] {
            assert_eq!(compare_versions(a, b), expected, "{a} vs {b}");
        }
    }

    #[test]
    fn dependencies_come_first() {
        // 0 -> 1 -> 2, 0 -> 2, 3 alone.
        let edges = [vec![1, 2], vec![2], vec![], vec![]];
        let order = install_order(&[0, 1, 2, 3], 4, |i| edges[i].clone());
        assert_eq!(order, [2, 1, 0, 3]);
    }

    #[test]
    fn cycles_are_kept_and_terminate() {
        // 0 -> 1 -> 2 -> 0, and 3 -> 0.
        let edges = [vec![1], vec![2], vec![0], vec![0]];
        let order = install_order(&[3, 0, 1, 2], 4, |i| edges[i].clone());
        assert_eq!(order, [2, 1, 0, 3]);
    }

    #[test]
    fn deep_chains_do_not_overflow() {
        let len = 200_000;
        let order = install_order(
            &[0],
            len,
            |i| if i + 1 < len { vec![i + 1] } else { vec![] },
        );
        assert_eq!(order.len(), len);
        assert_eq!(order[0], len - 1);
        assert_eq!(order[len - 1], 0);
    }
}
