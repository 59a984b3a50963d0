//! Names for the errno values a freeze can meet.

/// The symbolic name and a short description of an errno, e.g. `"EBUSY (device or resource busy)"`.
pub fn errno_name(errno: i32) -> String {
    ErrnoName(errno).to_string()
}

/// [`errno_name`] as a `Display` that allocates nothing (for the C ABI's messages).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ErrnoName(pub i32);

impl std::fmt::Display for ErrnoName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let errno = self.0;
        let name = quiesce_core::errno::name(errno).unwrap_or("");
        let mut buf = [0u8; 128];
        let text = quiesce_core::linux::sys::describe_errno(errno, &mut buf);
        if name.is_empty() {
            write!(f, "errno {errno} (")?;
        } else {
            write!(f, "{name} (")?;
        }
        for c in text.chars() {
            write!(f, "{}", c.to_ascii_lowercase())?;
        }
        f.write_str(")")
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
