//! The command line, parsed by hand (no dependencies): every mistake is a usage error that
//! names the offending argument and the fix.

use std::ffi::OsString;
use std::time::Duration;

use std::path::PathBuf;

use quiesce::runtime::{HookConfig, IfFrozen, MAX_HOOK_TIMEOUT, MAX_TIMEOUT};

/// What to do.
/// How fast a session freezes: pre-sync and parallel freezing, both on unless switched off
/// (`--no-presync`, `--sequential`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tuning {
    /// `syncfs` every target before the first `FIFREEZE`.
    pub presync: bool,
    /// Freeze independent filesystems at once.
    pub parallel: bool,
}

impl Default for Tuning {
    fn default() -> Self {
        Tuning {
            presync: true,
            parallel: true,
        }
    }
}

/// Selection by disk: `--disk DISK`... or `--exclude-disk DISK`..., and
/// `--allow-partial-group`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Disks {
    /// `--disk`: the disks whose filesystems to freeze.
    pub named: Vec<OsString>,
    /// `--exclude-disk`: every disk but these.
    pub excluded: Vec<OsString>,
    /// `--allow-partial-group`.
    pub allow_partial_group: bool,
}

impl Disks {
    /// Whether the caller selects by disk.
    pub fn active(&self) -> bool {
        !self.named.is_empty() || !self.excluded.is_empty()
    }

    /// The runtime's selection (`None`: by mount point).
    pub fn select(&self) -> Option<quiesce::runtime::Select<'_>> {
        self.active().then(|| quiesce::runtime::Select::Disks {
            disks: if self.named.is_empty() {
                &self.excluded
            } else {
                &self.named
            },
            exclude: self.named.is_empty(),
            allow_partial_group: self.allow_partial_group,
        })
    }
}

#[derive(Debug, PartialEq)]
pub enum Command {
    /// `quiesce plan`.
    Plan {
        mounts: Vec<OsString>,
        exclude: Vec<OsString>,
        /// `--verbose`: list every skipped filesystem, not only the unexpected ones.
        verbose: bool,
        disks: Disks,
    },
    /// `quiesce run ... -- CMD`.
    Run {
        timeout: Duration,
        mounts: Vec<OsString>,
        argv: Vec<OsString>,
        if_frozen: IfFrozen,
        tuning: Tuning,
        hooks: HookConfig,
        disks: Disks,
    },
    /// `quiesce freeze` and the `fsfreezer` form.
    Freeze {
        timeout: Duration,
        mounts: Vec<OsString>,
        stdin: bool,
        /// `--detach`: return once frozen; a detached controller holds the session.
        detach: bool,
        if_frozen: IfFrozen,
        tuning: Tuning,
        hooks: HookConfig,
        disks: Disks,
    },
    /// `quiesce thaw`.
    Thaw {
        mounts: Vec<OsString>,
        /// `--session ID`: the detached session to acknowledge and thaw.
        session: Option<String>,
    },
    /// `quiesce status`: the sessions in progress; `--clear` collects ended detached ones.
    Status {
        clear: bool,
    },
    /// `quiesce recover`: thaw what dead sessions left frozen.
    Recover,
    Help,
    Version,
}

/// A parsed command line.
#[derive(Debug, PartialEq)]
pub struct Invocation {
    pub command: Command,
    pub json: bool,
    /// The subcommand's name, for reports.
    pub name: &'static str,
}

/// A usage error: the message names the argument and the fix.
#[derive(Debug, PartialEq)]
pub struct UsageError {
    pub message: String,
    /// The subcommand, once known (`usage` before that), for the report.
    pub command: &'static str,
    /// Whether `--json` was seen before the error (so the error is reported as JSON).
    pub json: bool,
}

/// Parses `--if-frozen`'s value: `fail` (the default) or `skip`.
pub fn parse_if_frozen(text: &str) -> Result<IfFrozen, String> {
    match text {
        "fail" => Ok(IfFrozen::Fail),
        "skip" => Ok(IfFrozen::Skip),
        _ => Err(format!(
            "--if-frozen '{text}' is not a policy: use --if-frozen=fail (the default: stop, naming the filesystem) or --if-frozen=skip (leave it out of the snapshot)"
        )),
    }
}

/// Parses `--timeout`'s value: seconds, decimals allowed, more than 0, at most an hour.
pub fn parse_timeout(text: &str) -> Result<Duration, String> {
    let secs: f64 = match text.trim().parse() {
        Ok(v) if f64::is_finite(v) => v,
        _ => {
            return Err(format!(
                "--timeout '{text}' is not a number of seconds; e.g. --timeout 30"
            ))
        }
    };
    if secs <= 0.0 {
        return Err(format!(
            "--timeout '{text}' must be more than 0 seconds; e.g. --timeout 30"
        ));
    }
    if secs > MAX_TIMEOUT.as_secs_f64() {
        return Err(format!(
            "--timeout '{text}' is too long: at most {} seconds, since frozen filesystems stall every writer",
            MAX_TIMEOUT.as_secs()
        ));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// Parses `--hook-timeout`'s value: seconds, decimals allowed, more than 0, at most a day.
pub fn parse_hook_timeout(text: &str) -> Result<Duration, String> {
    let secs: f64 = match text.trim().parse() {
        Ok(v) if f64::is_finite(v) && v > 0.0 => v,
        _ => {
            return Err(format!(
                "--hook-timeout '{text}' is not a number of seconds more than 0; e.g. --hook-timeout 600 (the default is 1800)"
            ))
        }
    };
    if secs > MAX_HOOK_TIMEOUT.as_secs_f64() {
        return Err(format!(
            "--hook-timeout '{text}' is too long: at most {} seconds",
            MAX_HOOK_TIMEOUT.as_secs()
        ));
    }
    Ok(Duration::from_secs_f64(secs))
}

fn looks_like_number(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_digit() || c == '.')
}

/// Parses the arguments after the program name.
pub fn parse(args: Vec<OsString>) -> Result<Invocation, UsageError> {
    let name = match args.first().map(|a| a.to_string_lossy()) {
        Some(a) if a == "plan" => "plan",
        Some(a) if a == "run" => "run",
        Some(a) if a == "freeze" => "freeze",
        Some(a) if a == "thaw" => "thaw",
        Some(a) if a == "status" => "status",
        Some(a) if a == "recover" => "recover",
        Some(a) if looks_like_number(&a) => "freeze",
        _ => "usage",
    };
    parse_inner(args).map_err(|mut e| {
        e.command = name;
        e
    })
}

fn parse_inner(args: Vec<OsString>) -> Result<Invocation, UsageError> {
    let mut json = args
        .iter()
        .take_while(|a| *a != "--")
        .any(|a| a == "--json");
    let err = |message: String, json: bool| UsageError {
        message,
        command: "usage",
        json,
    };
    let mut it = args.into_iter();
    let Some(first) = it.next() else {
        return Err(err("no command given; try `quiesce --help`".into(), json));
    };
    let first_s = first.to_string_lossy().into_owned();
    let name: &'static str = match first_s.as_str() {
        "plan" => "plan",
        "run" => "run",
        "freeze" => "freeze",
        "thaw" => "thaw",
        "status" => "status",
        "recover" => "recover",
        "help" | "--help" | "-h" => {
            return Ok(Invocation {
                command: Command::Help,
                json,
                name: "help",
            })
        }
        "--version" | "-V" | "version" => {
            return Ok(Invocation {
                command: Command::Version,
                json,
                name: "version",
            })
        }
        s if looks_like_number(s) => {
            // The fsfreezer / safefreeze form: quiesce TIMEOUT MOUNT...
            let timeout = parse_timeout(s).map_err(|m| err(m, json))?;
            let mounts: Vec<OsString> = it.collect();
            if let Some(opt) = mounts.iter().find(|m| m.to_string_lossy().starts_with('-')) {
                return Err(err(
                    format!(
                        "unknown option '{}' in the fsfreezer form `quiesce TIMEOUT MOUNT...`; use `quiesce freeze` for options",
                        opt.to_string_lossy()
                    ),
                    json,
                ));
            }
            if mounts.is_empty() {
                return Err(err("no mount point named; usage: quiesce TIMEOUT MOUNT...".into(), json));
            }
            return Ok(Invocation {
                command: Command::Freeze {
                    timeout,
                    mounts,
                    stdin: false,
                    detach: false,
                    if_frozen: IfFrozen::Fail,
                    tuning: Tuning::default(),
                    hooks: HookConfig::default(),
                    disks: Disks::default(),
                },
                json,
                name: "freeze",
            });
        }
        other => {
            return Err(err(
                format!("unknown command '{other}'; commands: plan, run, freeze, thaw, status, recover (see `quiesce --help`)"),
                json,
            ))
        }
    };

    let mut timeout: Option<Duration> = None;
    let mut stdin = false;
    let mut detach = false;
    let mut session_id: Option<String> = None;
    let mut clear = false;
    let mut if_frozen = IfFrozen::Fail;
    let mut exclude = Vec::new();
    let mut verbose = false;
    let mut mounts = Vec::new();
    let mut argv: Option<Vec<OsString>> = None;
    let mut hooks = HookConfig::default();
    let mut tuning = Tuning::default();
    let mut disks = Disks::default();
    let session = name == "run" || name == "freeze";
    let selects = session || name == "plan";
    while let Some(arg) = it.next() {
        let s = arg.to_string_lossy().into_owned();
        let value =
            |it: &mut std::vec::IntoIter<OsString>, opt: &str| -> Result<OsString, UsageError> {
                it.next()
                    .ok_or_else(|| err(format!("{opt} needs a value"), json))
            };
        match s.as_str() {
            "--" => {
                argv = Some(it.by_ref().collect());
                break;
            }
            "--json" => json = true,
            "--help" | "-h" => {
                return Ok(Invocation {
                    command: Command::Help,
                    json,
                    name: "help",
                })
            }
            "--timeout" | "-t" if name == "run" || name == "freeze" => {
                let v = value(&mut it, "--timeout")?;
                timeout = Some(parse_timeout(&v.to_string_lossy()).map_err(|m| err(m, json))?);
            }
            t if (name == "run" || name == "freeze") && t.starts_with("--timeout=") => {
                timeout = Some(parse_timeout(&t["--timeout=".len()..]).map_err(|m| err(m, json))?);
            }
            "--stdin" if name == "freeze" => stdin = true,
            "--detach" if name == "freeze" => detach = true,
            "--clear" if name == "status" => clear = true,
            "--session" if name == "thaw" => {
                session_id = Some(value(&mut it, "--session")?.to_string_lossy().into_owned())
            }
            t if name == "thaw" && t.starts_with("--session=") => {
                session_id = Some(t["--session=".len()..].to_string())
            }
            "--if-frozen" if name == "run" || name == "freeze" => {
                let v = value(&mut it, "--if-frozen")?;
                if_frozen = parse_if_frozen(&v.to_string_lossy()).map_err(|m| err(m, json))?;
            }
            t if (name == "run" || name == "freeze") && t.starts_with("--if-frozen=") => {
                if_frozen =
                    parse_if_frozen(&t["--if-frozen=".len()..]).map_err(|m| err(m, json))?;
            }
            "--hook-dir" if session => hooks.dir = Some(value(&mut it, "--hook-dir")?.into()),
            "--pre-script" if session => hooks.pre = Some(value(&mut it, "--pre-script")?.into()),
            "--post-script" if session => {
                hooks.post = Some(value(&mut it, "--post-script")?.into())
            }
            "--hook-timeout" if session => {
                let v = value(&mut it, "--hook-timeout")?;
                hooks.timeout =
                    parse_hook_timeout(&v.to_string_lossy()).map_err(|m| err(m, json))?;
            }
            "--require-app-consistent" if session => hooks.require_app_consistent = true,
            "--presync" if session => tuning.presync = true,
            "--no-presync" if session => tuning.presync = false,
            "--parallel" if session => tuning.parallel = true,
            "--sequential" if session => tuning.parallel = false,
            t if session && t.starts_with("--hook-dir=") => {
                hooks.dir = Some(PathBuf::from(&t["--hook-dir=".len()..]))
            }
            t if session && t.starts_with("--pre-script=") => {
                hooks.pre = Some(PathBuf::from(&t["--pre-script=".len()..]))
            }
            t if session && t.starts_with("--post-script=") => {
                hooks.post = Some(PathBuf::from(&t["--post-script=".len()..]))
            }
            t if session && t.starts_with("--hook-timeout=") => {
                hooks.timeout =
                    parse_hook_timeout(&t["--hook-timeout=".len()..]).map_err(|m| err(m, json))?;
            }
            "--disk" if selects => disks.named.push(value(&mut it, "--disk")?),
            t if selects && t.starts_with("--disk=") => {
                disks.named.push(OsString::from(&t["--disk=".len()..]))
            }
            "--exclude-disk" if selects => disks.excluded.push(value(&mut it, "--exclude-disk")?),
            t if selects && t.starts_with("--exclude-disk=") => disks
                .excluded
                .push(OsString::from(&t["--exclude-disk=".len()..])),
            "--allow-partial-group" if selects => disks.allow_partial_group = true,
            "--verbose" | "-v" if name == "plan" => verbose = true,
            "--exclude" if name == "plan" => exclude.push(value(&mut it, "--exclude")?),
            t if name == "plan" && t.starts_with("--exclude=") => {
                exclude.push(OsString::from(&t["--exclude=".len()..]))
            }
            t if t.starts_with('-') && t.len() > 1 => {
                return Err(err(
                    format!("unknown option '{t}' for `quiesce {name}`; see `quiesce --help`"),
                    json,
                ));
            }
            _ => mounts.push(arg),
        }
    }
    let need_timeout = |t: Option<Duration>| {
        t.ok_or_else(|| {
            err(
                format!("`quiesce {name}` needs --timeout SECS: the longest the filesystems may stay frozen, e.g. --timeout 30"),
                json,
            )
        })
    };
    if disks.active() {
        if !disks.named.is_empty() && !disks.excluded.is_empty() {
            return Err(err(
                "--disk and --exclude-disk do not mix: name the disks to freeze, or the disks to leave out".into(),
                json,
            ));
        }
        let after_dashes = argv.as_ref().filter(|_| name != "run");
        let mut given = mounts
            .iter()
            .chain(&exclude)
            .chain(after_dashes.into_iter().flatten());
        if let Some(m) = given.next() {
            return Err(err(
                format!(
                    "'{}': mount points and --disk/--exclude-disk do not mix; select by mount point or by disk",
                    m.to_string_lossy()
                ),
                json,
            ));
        }
    } else if disks.allow_partial_group {
        return Err(err(
            "--allow-partial-group applies to a selection by disk: add --disk DISK or --exclude-disk DISK".into(),
            json,
        ));
    }
    let by_disk = disks.active();
    let need_mounts = |m: &Vec<OsString>| {
        if m.is_empty() && !by_disk {
            Err(err(
                format!("no mount point named; usage: see `quiesce {name} --help`"),
                json,
            ))
        } else {
            Ok(())
        }
    };
    if hooks.require_app_consistent && hooks.dir.is_none() && hooks.pre.is_none() {
        return Err(err(
            "--require-app-consistent needs a hook that runs before the freeze: --hook-dir DIR or --pre-script PATH".into(),
            json,
        ));
    }
    let command = match name {
        "plan" => {
            if let Some(rest) = argv {
                mounts.extend(rest);
            }
            Command::Plan {
                mounts,
                exclude,
                verbose,
                disks,
            }
        }
        "run" => {
            let argv = argv.unwrap_or_default();
            if argv.is_empty() {
                return Err(err(
                    "`quiesce run` needs the snapshot command after `--`, e.g. quiesce run --timeout 30 /data -- my-snapshot-tool".into(),
                    json,
                ));
            }
            let timeout = need_timeout(timeout)?;
            need_mounts(&mounts)?;
            Command::Run {
                timeout,
                mounts,
                argv,
                if_frozen,
                tuning,
                hooks,
                disks,
            }
        }
        "freeze" => {
            if let Some(rest) = argv {
                mounts.extend(rest);
            }
            let timeout = need_timeout(timeout)?;
            need_mounts(&mounts)?;
            if detach && stdin {
                return Err(err(
                    "--detach and --stdin exclude each other: with --detach, `quiesce thaw` acknowledges".into(),
                    json,
                ));
            }
            if detach && if_frozen == IfFrozen::Skip {
                return Err(err(
                    "--detach takes no --if-frozen=skip: a detached session covers every named filesystem or freezes none".into(),
                    json,
                ));
            }
            Command::Freeze {
                timeout,
                mounts,
                stdin,
                detach,
                if_frozen,
                tuning,
                hooks,
                disks,
            }
        }
        "status" | "recover" => {
            if let Some(extra) = mounts.first().or(argv.as_ref().and_then(|a| a.first())) {
                return Err(err(
                    format!(
                        "`quiesce {name}` takes no mount point ('{}'); it reads the session records in {}",
                        extra.to_string_lossy(),
                        quiesce::runtime::RUN_DIR
                    ),
                    json,
                ));
            }
            if name == "status" {
                Command::Status { clear }
            } else {
                Command::Recover
            }
        }
        _ => {
            if let Some(rest) = argv {
                mounts.extend(rest);
            }
            match (&session_id, mounts.is_empty()) {
                (Some(_), false) => {
                    return Err(err(
                        "`quiesce thaw` takes --session ID or MOUNT..., not both".into(),
                        json,
                    ))
                }
                (Some(_), true) => {}
                (None, _) => need_mounts(&mounts)?,
            }
            Command::Thaw {
                mounts,
                session: session_id,
            }
        }
    };
    Ok(Invocation {
        command,
        json,
        name,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(args: &[&str]) -> Result<Invocation, UsageError> {
        parse(args.iter().map(OsString::from).collect())
    }

    #[test]
    fn timeouts() {
        assert_eq!(parse_timeout("30"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_timeout("0.5"), Ok(Duration::from_millis(500)));
        for bad in ["0", "-1", "abc", "1e9", "inf", "NaN", "", "3601"] {
            let e = parse_timeout(bad).unwrap_err();
            assert!(e.contains(&format!("'{bad}'")), "{e}");
        }
    }

    #[test]
    fn commands() {
        let i = p(&[
            "run",
            "--timeout",
            "5",
            "/a",
            "--json",
            "--",
            "cp",
            "-a",
            "x",
        ])
        .unwrap();
        assert!(i.json);
        assert_eq!(
            i.command,
            Command::Run {
                timeout: Duration::from_secs(5),
                mounts: vec!["/a".into()],
                argv: vec!["cp".into(), "-a".into(), "x".into()],
                if_frozen: IfFrozen::Fail,
                tuning: Tuning::default(),
                hooks: HookConfig::default(),
                disks: Disks::default(),
            }
        );
        let i = p(&["30", "/a", "/b"]).unwrap();
        assert_eq!(
            i.command,
            Command::Freeze {
                timeout: Duration::from_secs(30),
                mounts: vec!["/a".into(), "/b".into()],
                stdin: false,
                detach: false,
                if_frozen: IfFrozen::Fail,
                tuning: Tuning::default(),
                hooks: HookConfig::default(),
                disks: Disks::default(),
            }
        );
        let i = p(&["freeze", "--detach", "--timeout", "600", "/data"]).unwrap();
        assert!(matches!(
            i.command,
            Command::Freeze {
                detach: true,
                stdin: false,
                ..
            }
        ));
        assert_eq!(
            p(&["thaw", "--session", "12-34"]).unwrap().command,
            Command::Thaw {
                mounts: vec![],
                session: Some("12-34".into())
            }
        );
        assert_eq!(
            p(&["status", "--clear"]).unwrap().command,
            Command::Status { clear: true }
        );
        let i = p(&["freeze", "--stdin", "--timeout=2", "/a"]).unwrap();
        assert!(matches!(i.command, Command::Freeze { stdin: true, .. }));
        let i = p(&["freeze", "--if-frozen=skip", "--timeout=2", "/a"]).unwrap();
        assert!(matches!(
            i.command,
            Command::Freeze {
                if_frozen: IfFrozen::Skip,
                tuning: Tuning {
                    presync: true,
                    parallel: true
                },
                ..
            }
        ));
        let i = p(&["run", "--if-frozen", "fail", "-t", "2", "/a", "--", "x"]).unwrap();
        assert!(matches!(
            i.command,
            Command::Run {
                if_frozen: IfFrozen::Fail,
                tuning: Tuning {
                    presync: true,
                    parallel: true
                },
                ..
            }
        ));
        let i = p(&[
            "run",
            "--no-presync",
            "--sequential",
            "-t",
            "2",
            "/a",
            "--",
            "x",
        ])
        .unwrap();
        assert!(matches!(
            i.command,
            Command::Run {
                tuning: Tuning {
                    presync: false,
                    parallel: false
                },
                ..
            }
        ));
        assert_eq!(
            p(&["status", "--json"]).unwrap().command,
            Command::Status { clear: false }
        );
        assert_eq!(p(&["recover"]).unwrap().command, Command::Recover);
        let i = p(&["plan", "--exclude", "/x"]).unwrap();
        assert_eq!(
            i.command,
            Command::Plan {
                mounts: vec![],
                exclude: vec!["/x".into()],
                verbose: false,
                disks: Disks::default(),
            }
        );
        let i = p(&["plan", "--verbose", "/a"]).unwrap();
        assert_eq!(
            i.command,
            Command::Plan {
                mounts: vec!["/a".into()],
                exclude: vec![],
                verbose: true,
                disks: Disks::default(),
            }
        );
    }

    #[test]
    fn disk_options() {
        let i = p(&["plan", "--disk", "/dev/vdb", "--disk=serial:vol-1"]).unwrap();
        let Command::Plan { disks, mounts, .. } = i.command else {
            panic!("plan expected");
        };
        assert_eq!(
            disks.named,
            vec![OsString::from("/dev/vdb"), "serial:vol-1".into()]
        );
        assert!(mounts.is_empty() && disks.excluded.is_empty() && !disks.allow_partial_group);
        let i = p(&[
            "freeze",
            "-t",
            "5",
            "--exclude-disk",
            "/dev/vda",
            "--allow-partial-group",
        ])
        .unwrap();
        let Command::Freeze { disks, .. } = i.command else {
            panic!("freeze expected");
        };
        assert_eq!(disks.excluded, vec![OsString::from("/dev/vda")]);
        assert!(disks.allow_partial_group);
        let i = p(&["run", "-t", "5", "--disk", "/dev/vdb", "--", "true"]).unwrap();
        assert!(matches!(i.command, Command::Run { ref disks, .. } if disks.active()));
        for bad in [
            &["plan", "--disk", "/dev/vdb", "/data"][..],
            &["plan", "--disk", "/dev/vdb", "--exclude", "/data"],
            &["freeze", "-t", "5", "--disk", "/dev/vdb", "--", "/data"],
            &["plan", "--disk", "/dev/vdb", "--exclude-disk", "/dev/vdc"],
            &["plan", "--allow-partial-group"],
            &["plan", "--disk"],
        ] {
            let e = p(bad).unwrap_err();
            assert!(!e.message.is_empty(), "{bad:?}");
        }
        let e = p(&["plan", "--disk", "/dev/vdb", "/data"]).unwrap_err();
        assert!(
            e.message.contains("'/data'") && e.message.contains("do not mix"),
            "{}",
            e.message
        );
    }

    #[test]
    fn hook_options() {
        let i = p(&[
            "run",
            "-t",
            "5",
            "--hook-dir",
            "/etc/quiesce/hooks.d",
            "--pre-script=/etc/pre",
            "--post-script",
            "/etc/post",
            "--hook-timeout",
            "2.5",
            "--require-app-consistent",
            "/a",
            "--",
            "true",
        ])
        .unwrap();
        let Command::Run { hooks, .. } = i.command else {
            panic!("not run: {:?}", i.command);
        };
        assert_eq!(
            hooks,
            HookConfig {
                dir: Some("/etc/quiesce/hooks.d".into()),
                pre: Some("/etc/pre".into()),
                post: Some("/etc/post".into()),
                timeout: Duration::from_millis(2500),
                require_app_consistent: true,
            }
        );
        let i = p(&["freeze", "-t", "5", "--hook-dir=/h", "--stdin", "/a"]).unwrap();
        let Command::Freeze { hooks, .. } = i.command else {
            panic!("not freeze");
        };
        assert_eq!(hooks.dir, Some("/h".into()));
        assert_eq!(hooks.timeout, Duration::from_secs(1800));
    }

    #[test]
    fn usage_errors_name_the_argument() {
        for (args, word) in [
            (&["freeze", "/a"][..], "--timeout"),
            (&["freeze", "--timeout", "abc", "/a"], "'abc'"),
            (&["freeze", "--timeout", "5"], "no mount point"),
            (&["freeze", "--bogus", "--timeout", "5", "/a"], "'--bogus'"),
            (&["run", "--timeout", "5", "/a"], "after `--`"),
            (&["plan", "--stdin"], "'--stdin'"),
            (&["explode"], "'explode'"),
            (&[], "no command"),
            (&["5", "--stdin", "/a"], "'--stdin'"),
            (&["freeze", "--if-frozen=maybe", "-t", "1", "/a"], "'maybe'"),
            (&["plan", "--if-frozen=skip"], "'--if-frozen=skip'"),
            (&["status", "/a"], "'/a'"),
            (
                &["freeze", "--detach", "--stdin", "-t", "5", "/a"],
                "--stdin",
            ),
            (
                &["freeze", "--detach", "--if-frozen=skip", "-t", "5", "/a"],
                "--if-frozen=skip",
            ),
            (&["thaw", "--session", "1-2", "/a"], "not both"),
            (&["thaw"], "no mount point"),
            (&["thaw", "--session"], "--session needs a value"),
            (
                &["run", "--detach", "-t", "5", "/a", "--", "x"],
                "'--detach'",
            ),
            (
                &[
                    "run",
                    "-t",
                    "5",
                    "--require-app-consistent",
                    "/a",
                    "--",
                    "x",
                ],
                "--hook-dir",
            ),
            (
                &["run", "-t", "5", "--hook-timeout", "0", "/a", "--", "x"],
                "'0'",
            ),
            (&["plan", "--hook-dir", "/h"], "'--hook-dir'"),
            (
                &["run", "-t", "5", "--verbose", "/a", "--", "x"],
                "'--verbose'",
            ),
            (
                &["freeze", "-t", "5", "/a", "--hook-dir"],
                "--hook-dir needs a value",
            ),
        ] {
            let e = p(args).unwrap_err();
            assert!(e.message.contains(word), "{args:?}: {}", e.message);
        }
        assert!(
            p(&["freeze", "--json", "--timeout", "x", "/a"])
                .unwrap_err()
                .json
        );
    }
}
