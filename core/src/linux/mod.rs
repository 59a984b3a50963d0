//! The Linux executor: performs what the session machine decides, over rustix.
//!
//! Still `no_std` and allocation-free: paths are `&CStr`, buffers live on the stack.
//! - [`sys`]: one small wrapper per syscall;
//! - [`topology`]: storage dependencies from sysfs (loop backing files, stacked devices);
//! - [`execute`]: the loop that drives a [`Session`](crate::session::Session).

pub mod execute;
pub mod sys;
pub mod topology;

pub use execute::{execute, Controller, Signal};
