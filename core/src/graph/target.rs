//! The target grammar: what a command-line revision argument (`head`, `1a2b`, `feat@head-1`,
//! `+2`...) says, before the graph is consulted. Parsing once, up front, lets the planning
//! functions take a typed [`Target`] instead of re-reading strings, and lets callers name the
//! common targets (`Target::Heads`) without spelling them as text.

use crate::error::{Error, Result};

/// A parsed revision target, as `migrate-up TARGET`, `migrate-down TARGET`, `migrate-stamp
/// TARGET` and either side of a `migrate-history -r START:END` range take it (Alembic's
/// grammar). Keywords are matched case-sensitively; anything else names revisions by id,
/// branch label or unique id prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// `heads`: every script head.
    Heads,
    /// `head`: the single script head (an error when there are several).
    Head,
    /// `base`: before the first revision, the empty database.
    Base,
    /// `current`: the database's rows. Only history ranges accept it; elsewhere it is looked
    /// up as a revision name (and names none, `current` being reserved).
    Current,
    /// An exact id, else a branch label, else a unique id prefix (even one character).
    Rev(String),
    /// A relative step: `+N` / `-N` (from the database's single row), `REV+N`, `REV-N`,
    /// `head-N`, `base+N`, `current-N`.
    Relative(Relative),
    /// `X@...`: within the lineage of X (a branch label or a revision): the revisions that
    /// descend from X, and X's ancestors.
    Branch { branch: String, at: BranchTarget },
}

/// What follows the `@` of `X@...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BranchTarget {
    /// `X@head` or `X@heads`: the heads that descend from X.
    Heads,
    /// `X@base`: the bottom of X's lineage (everything from there up is "X's branch").
    Base,
    /// `X@REV`: a revision (id, label or prefix) that must be in X's lineage.
    Rev(String),
    /// `X@+N`, `X@-N` (from the database's position in the branch), `X@head-N`, `X@base+N`,
    /// `X@REV+N`.
    Relative(Relative),
}

/// `FROM+N` / `FROM-N`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Relative {
    pub from: Anchor,
    /// Up (children) when positive, down (parents) when negative.
    pub steps: i64,
    /// The whole target as written (`feat@head-1`), quoted in error messages.
    pub text: String,
}

/// Where a relative step starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Anchor {
    /// Nothing before the sign (`+1`, `feat@-1`): the database's current revision (in the
    /// branch, for `X@`).
    Database,
    /// `current+N` (history ranges; elsewhere `current` is looked up as a revision name).
    Current,
    /// `head-N`: the single head (of the branch, for `X@`).
    Head,
    /// `base+N`.
    Base,
    /// `REV+N`: an id, label or prefix.
    Rev(String),
}

impl Target {
    /// Parses a target (surrounding whitespace is ignored). Fails, with a usage error, only
    /// where no graph could make sense of it: an empty target, `@` without a branch or a
    /// target, and relative steps from `heads`.
    pub fn parse(target: &str) -> Result<Target> {
        let t = target.trim();
        if t.is_empty() {
            return Err(Error::usage("empty revision target")
                .with_hint("name a revision, 'head', 'heads' or 'base'"));
        }
        if let Some((branch, rest)) = t.split_once('@') {
            return parse_branch(t, branch, rest);
        }
        Ok(match t {
            "heads" => Target::Heads,
            "head" => Target::Head,
            "base" => Target::Base,
            "current" => Target::Current,
            _ => match split_relative(t) {
                Some((from, steps)) => Target::Relative(Relative {
                    from: match from {
                        "" => Anchor::Database,
                        "current" => Anchor::Current,
                        "heads" => return Err(relative_heads_error(t)),
                        "head" => Anchor::Head,
                        "base" => Anchor::Base,
                        rev => Anchor::Rev(rev.to_string()),
                    },
                    steps,
                    text: t.to_string(),
                }),
                None => Target::Rev(t.to_string()),
            },
        })
    }

    /// Parses each of `targets` (for `migrate-stamp`, which takes several).
    pub fn parse_all(targets: &[String]) -> Result<Vec<Target>> {
        targets.iter().map(|t| Target::parse(t)).collect()
    }
}

impl std::str::FromStr for Target {
    type Err = Error;

    fn from_str(s: &str) -> Result<Target> {
        Target::parse(s)
    }
}

/// `X@rest`, `t` being the whole target.
fn parse_branch(t: &str, branch: &str, rest: &str) -> Result<Target> {
    if branch.is_empty() {
        return Err(
            Error::usage(format!("missing branch name before '@' in '{t}'"))
                .with_hint("e.g. mybranch@head, 1a2b@head"),
        );
    }
    let at = match rest {
        "" => {
            return Err(Error::usage(format!("missing target after '@' in '{t}'"))
                .with_hint(format!("e.g. {branch}@head, {branch}@base, {branch}@+1")))
        }
        "heads" | "head" => BranchTarget::Heads,
        "base" => BranchTarget::Base,
        _ => match split_relative(rest) {
            Some((from, steps)) => BranchTarget::Relative(Relative {
                from: match from {
                    "" => Anchor::Database,
                    "heads" => return Err(relative_heads_error(t)),
                    "head" => Anchor::Head,
                    "base" => Anchor::Base,
                    rev => Anchor::Rev(rev.to_string()),
                },
                steps,
                text: t.to_string(),
            }),
            None => BranchTarget::Rev(rest.to_string()),
        },
    };
    Ok(Target::Branch {
        branch: branch.to_string(),
        at,
    })
}

fn relative_heads_error(t: &str) -> Error {
    Error::usage(format!(
        "relative steps are not allowed with 'heads' ('{t}')"
    ))
    .with_hint("use head-N (single head), LABEL@head-N or REV-N")
}

/// `REV+N` / `REV-N` / `+N` / `-N`: the part before the last `+`/`-` followed only by digits.
/// Revision ids and labels cannot contain `+` or `-`, so such a text never names a revision
/// directly.
fn split_relative(s: &str) -> Option<(&str, i64)> {
    let k = s.rfind(['+', '-'])?;
    let digits = &s[k + 1..];
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: i64 = digits.parse().ok()?;
    Some((&s[..k], if s.as_bytes()[k] == b'+' { n } else { -n }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Target {
        Target::parse(s).expect("parses")
    }

    fn rel(from: Anchor, steps: i64, text: &str) -> Relative {
        Relative {
            from,
            steps,
            text: text.to_string(),
        }
    }

    #[test]
    fn keywords_and_revisions() {
        assert_eq!(p("heads"), Target::Heads);
        assert_eq!(p(" head "), Target::Head);
        assert_eq!(p("base"), Target::Base);
        assert_eq!(p("current"), Target::Current);
        assert_eq!(p("1a2b"), Target::Rev("1a2b".into()));
        // Keywords are case-sensitive: anything else is a revision name.
        assert_eq!(p("HEAD"), Target::Rev("HEAD".into()));
        assert_eq!("base".parse::<Target>().unwrap(), Target::Base);
    }

    #[test]
    fn relative_steps() {
        assert_eq!(p("+2"), Target::Relative(rel(Anchor::Database, 2, "+2")));
        assert_eq!(p("-1"), Target::Relative(rel(Anchor::Database, -1, "-1")));
        assert_eq!(
            p("head-3"),
            Target::Relative(rel(Anchor::Head, -3, "head-3"))
        );
        assert_eq!(
            p("base+01"),
            Target::Relative(rel(Anchor::Base, 1, "base+01"))
        );
        assert_eq!(
            p("current-1"),
            Target::Relative(rel(Anchor::Current, -1, "current-1"))
        );
        assert_eq!(
            p("ab12+1"),
            Target::Relative(rel(Anchor::Rev("ab12".into()), 1, "ab12+1"))
        );
        // Not digits after the sign, or too many: a revision name (which names nothing).
        assert_eq!(p("ab-x"), Target::Rev("ab-x".into()));
        assert_eq!(
            p("+99999999999999999999"),
            Target::Rev("+99999999999999999999".into())
        );
    }

    #[test]
    fn branch_forms() {
        let b = |at| Target::Branch {
            branch: "feat".into(),
            at,
        };
        assert_eq!(p("feat@head"), b(BranchTarget::Heads));
        assert_eq!(p("feat@heads"), b(BranchTarget::Heads));
        assert_eq!(p("feat@base"), b(BranchTarget::Base));
        assert_eq!(p("feat@x1"), b(BranchTarget::Rev("x1".into())));
        assert_eq!(p("feat@current"), b(BranchTarget::Rev("current".into())));
        assert_eq!(
            p("feat@-1"),
            b(BranchTarget::Relative(rel(Anchor::Database, -1, "feat@-1")))
        );
        assert_eq!(
            p("feat@head-2"),
            b(BranchTarget::Relative(rel(Anchor::Head, -2, "feat@head-2")))
        );
        assert_eq!(
            p("feat@x1+1"),
            b(BranchTarget::Relative(rel(
                Anchor::Rev("x1".into()),
                1,
                "feat@x1+1"
            )))
        );
    }

    #[test]
    fn syntax_errors() {
        let e = |s: &str| Target::parse(s).expect_err(s).message;
        assert_eq!(e("  "), "empty revision target");
        assert_eq!(e("@head"), "missing branch name before '@' in '@head'");
        assert_eq!(e("feat@"), "missing target after '@' in 'feat@'");
        assert_eq!(
            e("heads-1"),
            "relative steps are not allowed with 'heads' ('heads-1')"
        );
        assert_eq!(
            e("feat@heads+1"),
            "relative steps are not allowed with 'heads' ('feat@heads+1')"
        );
        assert_eq!(
            Target::parse_all(&["head".into(), "".into()])
                .unwrap_err()
                .message,
            "empty revision target"
        );
    }
}
