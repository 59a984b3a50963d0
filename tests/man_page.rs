//! The manual page `quiesce(8)` (examples/cli/quiesce.8, hand-written roff) stays true to the
//! command: every option of `quiesce --help` and of each subcommand's help, every option the
//! parser accepts (examples/cli/src/args.rs), every command, and exactly the exit codes of
//! README.md's table appear in it; it names no option the parser does not accept; it names the
//! crate's version; and groff formats it without a warning.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use quiesce_testkit::{quiesce_bin, repo_root, run_timeout};

fn man_source() -> String {
    let path = repo_root().join("examples/cli/quiesce.8");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// The page as text: roff's `\-` as `-`, font changes and comments removed.
fn man_text() -> String {
    let mut out = String::new();
    for line in man_source().lines().filter(|l| !l.starts_with(".\\\"")) {
        let mut s = line.replace("\\-", "-").replace("\\&", "");
        for font in ["\\fB", "\\fI", "\\fR", "\\fP"] {
            s = s.replace(font, "");
        }
        out.push_str(&s);
        out.push('\n');
    }
    out
}

/// The options in a help text: words starting with `-` and a letter (or `--` and a letter),
/// up to `=`, without trailing punctuation.
fn options_in(text: &str) -> BTreeSet<String> {
    text.split(|c: char| c.is_whitespace() || "[]()|,;`'\"".contains(c))
        .filter_map(|w| {
            let w = w.split('=').next().unwrap_or_default();
            let w = w.trim_end_matches(|c: char| !c.is_ascii_alphanumeric());
            let name = w.strip_prefix("--").or_else(|| w.strip_prefix('-'))?;
            name.starts_with(|c: char| c.is_ascii_alphabetic())
                .then(|| w.to_string())
        })
        .collect()
}

/// Whether `word` occurs in `text` as a whole option (not as the prefix of a longer one).
fn has_option(text: &str, word: &str) -> bool {
    text.match_indices(word).any(|(i, _)| {
        let before = text[..i].chars().next_back();
        let after = text[i + word.len()..].chars().next();
        !before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '-')
            && !after.is_some_and(|c| c.is_ascii_alphanumeric() || c == '-')
    })
}

fn help(args: &[&str]) -> String {
    let out = run_timeout(
        Command::new(quiesce_bin()).args(args),
        Duration::from_secs(30),
    )
    .unwrap_or_else(|e| panic!("quiesce {args:?}: {e}"));
    assert!(out.status.success(), "quiesce {args:?} failed");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn every_option_of_the_help_is_in_the_manual_page() {
    let man = man_text();
    let mut checked = 0;
    for args in [
        &["--help"][..],
        &["-h"],
        &["plan", "--help"],
        &["run", "--help"],
        &["freeze", "--help"],
        &["thaw", "--help"],
        &["status", "--help"],
        &["recover", "--help"],
    ] {
        let text = help(args);
        let options = options_in(&text);
        assert!(
            options.len() >= 15,
            "quiesce {args:?} names only {options:?}: is this the help?"
        );
        let missing: Vec<&String> = options.iter().filter(|o| !has_option(&man, o)).collect();
        assert!(
            missing.is_empty(),
            "options of `quiesce {}` missing from examples/cli/quiesce.8: {missing:?}",
            args.join(" ")
        );
        checked += options.len();
    }
    // The guest agent's own help.
    let text = help(&["agent", "--help"]);
    let options = options_in(&text);
    assert!(
        options.len() >= 8,
        "quiesce agent --help names only {options:?}"
    );
    let missing: Vec<&String> = options.iter().filter(|o| !has_option(&man, o)).collect();
    assert!(
        missing.is_empty(),
        "options of `quiesce agent --help` missing from examples/cli/quiesce.8: {missing:?}"
    );
    checked += options.len();
    println!("{checked} options of the help texts found in the manual page");
}

/// The options the parser (examples/cli/src/args.rs, without its unit tests) accepts: its
/// string literals that start with `-`.
fn parser_options() -> BTreeSet<String> {
    let path: PathBuf = repo_root().join("examples/cli/src/args.rs");
    let mut src = std::fs::read_to_string(&path).expect("read args.rs");
    // The guest agent parses its own options (examples/cli/src/agent/mod.rs).
    let agent = std::fs::read_to_string(repo_root().join("examples/cli/src/agent/mod.rs"))
        .expect("read agent/mod.rs");
    src.push('\u{0}');
    src.push_str(agent.split("#[cfg(test)]").next().unwrap_or_default());
    // The parsers, not their unit tests (which try bogus options on purpose).
    let (args_rs, agent_rs) = src.split_once("\u{0}").unwrap_or((&src, ""));
    let parser = format!(
        "{}{}",
        args_rs.split("#[cfg(test)]").next().unwrap_or_default(),
        agent_rs
    );
    let literals: BTreeSet<String> = parser
        .split('"')
        .skip(1)
        .step_by(2)
        .filter(|s| s.starts_with('-') && s.len() > 1 && s != &"--")
        .filter(|s| !s.contains(' '))
        .map(|s| s.trim_end_matches('=').to_string())
        .collect();
    assert!(
        literals.contains("--timeout") && literals.contains("--verbose"),
        "found no options in args.rs: {literals:?}"
    );
    literals
}

/// Options of other programs that the manual page names (cp and pkg-config in its examples
/// and FILES).
const OTHER_PROGRAMS: [&str; 4] = ["--sparse", "--cflags", "--libs", "--static"];

#[test]
fn every_option_of_the_manual_page_is_accepted() {
    let accepted = parser_options();
    let stale: Vec<String> = options_in(&man_text())
        .into_iter()
        .filter(|o| !accepted.contains(o) && !OTHER_PROGRAMS.contains(&o.as_str()))
        .collect();
    assert!(
        stale.is_empty(),
        "examples/cli/quiesce.8 names options that examples/cli/src/args.rs does not accept: {stale:?}"
    );
}

#[test]
fn every_option_the_parser_accepts_is_in_the_manual_page() {
    let literals = parser_options();
    let man = man_text();
    let missing: Vec<&String> = literals.iter().filter(|o| !has_option(&man, o)).collect();
    assert!(
        missing.is_empty(),
        "options accepted by examples/cli/src/args.rs missing from the manual page: {missing:?}"
    );
}

#[test]
fn every_command_has_its_section() {
    let man = man_source();
    for cmd in [
        "plan", "run", "freeze", "thaw", "status", "recover", "agent",
    ] {
        assert!(
            man.contains(&format!(".TP\n.B {cmd}\n")),
            "examples/cli/quiesce.8 has no COMMANDS entry `.TP` `.B {cmd}`"
        );
    }
    for section in [
        "NAME",
        "SYNOPSIS",
        "DESCRIPTION",
        "COMMANDS",
        "OPTIONS",
        "EXIT STATUS",
        "FILES",
    ] {
        assert!(
            man.contains(&format!(".SH {section}\n")),
            "no section {section}"
        );
    }
    let th = man
        .lines()
        .find(|l| l.starts_with(".TH "))
        .expect("no .TH line");
    assert!(
        th.contains(&format!("\"quiesce {}\"", env!("CARGO_PKG_VERSION"))),
        "the .TH line does not name version {}: {th}",
        env!("CARGO_PKG_VERSION")
    );
}

/// README.md's exit-code table: (code, name).
fn readme_exit_codes() -> BTreeSet<(u32, String)> {
    let readme = std::fs::read_to_string(repo_root().join("README.md")).expect("README.md");
    readme
        .lines()
        .skip_while(|l| *l != "## Exit codes")
        .filter_map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            let code = cells.get(1)?.parse().ok()?;
            Some((code, cells.get(2)?.trim_matches('`').to_string()))
        })
        .collect()
}

#[test]
fn the_exit_codes_are_those_of_the_readme() {
    let readme = readme_exit_codes();
    assert!(readme.len() >= 18, "README exit codes: {readme:?}");
    let man = man_source();
    let section: String = man
        .split(".SH EXIT STATUS\n")
        .nth(1)
        .and_then(|s| s.split("\n.SH ").next())
        .expect("no EXIT STATUS section")
        .to_string();
    let in_man: BTreeSet<(u32, String)> = section
        .lines()
        .filter_map(|l| {
            let rest = l.strip_prefix(".BR ")?;
            let (code, name) = rest.split_once(' ')?;
            Some((
                code.parse().ok()?,
                name.trim().trim_matches('"').trim().into(),
            ))
        })
        .collect();
    assert_eq!(
        in_man, readme,
        "the EXIT STATUS of examples/cli/quiesce.8 differs from README.md's table"
    );
}

#[test]
fn groff_formats_it_without_warnings() {
    let out = run_timeout(
        Command::new("groff")
            .args(["-man", "-ww", "-z", "-Tutf8"])
            .arg(repo_root().join("examples/cli/quiesce.8")),
        Duration::from_secs(60),
    )
    .unwrap_or_else(|e| panic!("cannot run groff (apt-get install groff-base man-db): {e}"));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && err.trim().is_empty(),
        "groff warns about examples/cli/quiesce.8:\n{err}"
    );
}

#[test]
fn option_words_are_found() {
    let o =
        options_in("  --if-frozen=fail|skip [--json] -h, --help  (plan) --exclude MOUNT -- CMD");
    let v: Vec<&str> = o.iter().map(String::as_str).collect();
    assert_eq!(v, ["--exclude", "--help", "--if-frozen", "--json", "-h"]);
    assert!(has_option("a --hook-timeout b", "--hook-timeout"));
    assert!(!has_option("a --hook-timeout-ms b", "--hook-timeout"));
    assert!(!has_option("--hook-dir", "-h"));
}
