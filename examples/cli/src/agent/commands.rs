//! The commands: which the agent answers itself, which qemu-ga has (for its "disabled"
//! answers while frozen, and for relaying), and what each request asks for.

use serde_json::{json, Map};

use super::parser::Value;
use super::protocol::{check_arguments, ArgType, QmpError, Request};

/// The commands the agent answers itself, in the order qemu-ga 7.2's `guest-info` lists them.
pub const OWN: [&str; 8] = [
    "guest-fsfreeze-thaw",
    "guest-fsfreeze-freeze-list",
    "guest-fsfreeze-freeze",
    "guest-fsfreeze-status",
    "guest-info",
    "guest-ping",
    "guest-sync",
    "guest-sync-delimited",
];

/// What qemu-ga answers while frozen (its `ga_freeze_allowlist`).
pub const FROZEN_ALLOWED: [&str; 6] = [
    "guest-ping",
    "guest-info",
    "guest-sync",
    "guest-sync-delimited",
    "guest-fsfreeze-status",
    "guest-fsfreeze-thaw",
];

/// qemu-ga 7.2's commands (`qemu-ga -b help`).
pub const QGA_7_2: [&str; 42] = [
    "guest-sync-delimited",
    "guest-sync",
    "guest-ping",
    "guest-get-time",
    "guest-set-time",
    "guest-info",
    "guest-shutdown",
    "guest-file-open",
    "guest-file-close",
    "guest-file-read",
    "guest-file-write",
    "guest-file-seek",
    "guest-file-flush",
    "guest-fsfreeze-status",
    "guest-fsfreeze-freeze",
    "guest-fsfreeze-freeze-list",
    "guest-fsfreeze-thaw",
    "guest-fstrim",
    "guest-suspend-disk",
    "guest-suspend-ram",
    "guest-suspend-hybrid",
    "guest-network-get-interfaces",
    "guest-get-vcpus",
    "guest-set-vcpus",
    "guest-get-disks",
    "guest-get-fsinfo",
    "guest-set-user-password",
    "guest-get-memory-blocks",
    "guest-set-memory-blocks",
    "guest-get-memory-block-info",
    "guest-exec-status",
    "guest-exec",
    "guest-get-host-name",
    "guest-get-users",
    "guest-get-timezone",
    "guest-get-osinfo",
    "guest-get-devices",
    "guest-ssh-get-authorized-keys",
    "guest-ssh-add-authorized-keys",
    "guest-ssh-remove-authorized-keys",
    "guest-get-diskstats",
    "guest-get-cpustats",
];

/// qemu-ga's commands that answer only on failure (`success-response: false`).
pub const NO_SUCCESS_RESPONSE: [&str; 4] = [
    "guest-shutdown",
    "guest-suspend-disk",
    "guest-suspend-ram",
    "guest-suspend-hybrid",
];

/// What to freeze.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Freeze {
    /// `guest-fsfreeze-freeze`, or `-freeze-list` without `mountpoints`.
    All,
    /// `guest-fsfreeze-freeze-list` with `mountpoints`.
    List(Vec<String>),
}

/// What a request asks for.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// Answer this (already encoded).
    Return(Value),
    /// `guest-sync-delimited`: the answer, after a `0xFF`.
    Delimited(Value),
    Fail(QmpError),
    Info,
    Freeze(Freeze),
    Thaw,
    /// Relay to qemu-ga.
    Forward,
}

/// Decides what `req` asks for. `frozen`: a freeze is in effect; `forwarding`: a qemu-ga
/// is behind the agent; `known`: qemu-ga's command names (its list, and what it reported).
pub fn dispatch(
    req: &Request,
    frozen: bool,
    forwarding: bool,
    known: &dyn Fn(&str) -> bool,
) -> Action {
    let name = req.command.as_str();
    let own = OWN.contains(&name);
    // Unknown here: relayed only when thawed and forwarding (qemu-ga may know it).
    if !own && !known(name) && (!forwarding || frozen) {
        return Action::Fail(QmpError::not_found(format!(
            "The command {name} has not been found"
        )));
    }
    if frozen && !FROZEN_ALLOWED.contains(&name) {
        return Action::Fail(QmpError::not_found(format!(
            "Command {name} has been disabled: the agent is in frozen state"
        )));
    }
    if !own {
        return if forwarding {
            Action::Forward
        } else {
            Action::Fail(QmpError::not_found(format!(
                "The command {name} has not been found"
            )))
        };
    }
    let args = &req.arguments;
    let none: [(&str, ArgType, bool); 0] = [];
    let checked = |declared: &[(&str, ArgType, bool)]| check_arguments(args, declared);
    let r = match name {
        "guest-sync" | "guest-sync-delimited" => checked(&[("id", ArgType::Int, true)]),
        "guest-fsfreeze-freeze-list" => checked(&[("mountpoints", ArgType::StrList, false)]),
        _ => checked(&none),
    };
    if let Err(e) = r {
        return Action::Fail(e);
    }
    match name {
        "guest-sync" => Action::Return(args["id"].clone()),
        "guest-sync-delimited" => Action::Delimited(args["id"].clone()),
        "guest-ping" => Action::Return(Value::Object(Map::new())),
        "guest-info" => Action::Info,
        "guest-fsfreeze-status" => Action::Return(json!(if frozen { "frozen" } else { "thawed" })),
        "guest-fsfreeze-freeze" => Action::Freeze(Freeze::All),
        "guest-fsfreeze-freeze-list" => match args.get("mountpoints").and_then(Value::as_array) {
            Some(list) => Action::Freeze(Freeze::List(
                list.iter()
                    .filter_map(|v| v.as_str().map(String::from))
                    .collect(),
            )),
            None => Action::Freeze(Freeze::All),
        },
        _ => Action::Thaw,
    }
}

/// `guest-info`'s answer: the version and every command, each with whether it is enabled now
/// and whether it answers on success. `others`: qemu-ga's entries when forwarding.
pub fn info(frozen: bool, others: &[Value]) -> Value {
    let mut list: Vec<Value> = Vec::new();
    let entry = |name: &str, success: bool| {
        json!({
            "enabled": !frozen || FROZEN_ALLOWED.contains(&name),
            "name": name,
            "success-response": success,
        })
    };
    for o in others {
        let Some(name) = o.get("name").and_then(Value::as_str) else {
            continue;
        };
        if OWN.contains(&name) {
            continue;
        }
        let success = o
            .get("success-response")
            .and_then(Value::as_bool)
            .unwrap_or(!NO_SUCCESS_RESPONSE.contains(&name));
        let mut e = entry(name, success);
        if !o.get("enabled").and_then(Value::as_bool).unwrap_or(true) {
            e["enabled"] = json!(false);
        }
        list.push(e);
    }
    for name in OWN {
        list.push(entry(name, true));
    }
    json!({"version": env!("CARGO_PKG_VERSION"), "supported_commands": list})
}

#[cfg(test)]
mod tests {
    use super::super::protocol::check;
    use super::*;

    fn act(v: Value, frozen: bool, forwarding: bool) -> Action {
        let known = |n: &str| QGA_7_2.contains(&n);
        dispatch(&check(v).unwrap(), frozen, forwarding, &known)
    }

    #[test]
    fn frozen_allows_only_qemu_gas_set() {
        let text = |a: Action| match a {
            Action::Fail(e) => (e.class, String::from_utf8(e.desc).unwrap()),
            other => panic!("{other:?}"),
        };
        use super::super::protocol::Class::CommandNotFound;
        assert_eq!(
            text(act(json!({"execute": "guest-get-osinfo"}), true, true)),
            (
                CommandNotFound,
                "Command guest-get-osinfo has been disabled: the agent is in frozen state".into()
            )
        );
        assert_eq!(
            text(act(
                json!({"execute": "guest-fsfreeze-freeze"}),
                true,
                false
            )),
            (
                CommandNotFound,
                "Command guest-fsfreeze-freeze has been disabled: the agent is in frozen state"
                    .into()
            )
        );
        assert_eq!(
            text(act(json!({"execute": "nope"}), true, true)),
            (
                CommandNotFound,
                "The command nope has not been found".into()
            )
        );
        assert_eq!(
            act(json!({"execute": "guest-fsfreeze-status"}), true, false),
            Action::Return(json!("frozen"))
        );
        assert_eq!(
            act(json!({"execute": "guest-fsfreeze-thaw"}), true, false),
            Action::Thaw
        );
        assert_eq!(
            act(json!({"execute": "guest-get-osinfo"}), false, true),
            Action::Forward
        );
        assert_eq!(
            act(json!({"execute": "guest-newer-command"}), false, true),
            Action::Forward
        );
        assert_eq!(
            act(
                json!({"execute": "guest-fsfreeze-freeze-list", "arguments": {"mountpoints": ["/a"]}}),
                false,
                false
            ),
            Action::Freeze(Freeze::List(vec!["/a".into()]))
        );
        assert_eq!(
            act(
                json!({"execute": "guest-fsfreeze-freeze-list"}),
                false,
                false
            ),
            Action::Freeze(Freeze::All)
        );
    }

    #[test]
    fn info_marks_what_is_disabled_while_frozen() {
        let i = info(
            true,
            &[json!({"enabled": true, "name": "guest-exec", "success-response": true})],
        );
        let list = i["supported_commands"].as_array().unwrap();
        let get = |n: &str| {
            list.iter().find(|e| e["name"] == n).unwrap()["enabled"]
                .as_bool()
                .unwrap()
        };
        assert!(!get("guest-exec") && !get("guest-fsfreeze-freeze") && get("guest-fsfreeze-thaw"));
    }
}
