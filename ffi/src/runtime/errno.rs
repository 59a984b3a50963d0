//! Names for the errno values a freeze can meet.

/// The symbolic name and a short description of an errno, e.g. `"EBUSY (device or resource busy)"`.
pub fn errno_name(errno: i32) -> String {
    let name = match errno {
        1 => "EPERM",
        2 => "ENOENT",
        5 => "EIO",
        9 => "EBADF",
        13 => "EACCES",
        16 => "EBUSY",
        19 => "ENODEV",
        20 => "ENOTDIR",
        22 => "EINVAL",
        30 => "EROFS",
        36 => "ENAMETOOLONG",
        38 => "ENOSYS",
        40 => "ELOOP",
        95 => "EOPNOTSUPP",
        116 => "ESTALE",
        _ => "",
    };
    let text = std::io::Error::from_raw_os_error(errno).to_string();
    // std appends " (os error N)"; keep only the description.
    let text = text
        .split(" (os error")
        .next()
        .unwrap_or(&text)
        .to_lowercase();
    if name.is_empty() {
        format!("errno {errno} ({text})")
    } else {
        format!("{name} ({text})")
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn names_common_errors() {
        assert_eq!(super::errno_name(16), "EBUSY (device or resource busy)");
        assert!(super::errno_name(4242).starts_with("errno 4242"));
    }
}
