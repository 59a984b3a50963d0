//! The Linux executor: performs what the session machine decides, over rustix.
//!
//! Still `no_std` and allocation-free: paths are `&CStr`, buffers live on the stack.
//! - [`sys`]: one small wrapper per syscall;
//! - [`topology`]: storage dependencies from sysfs (loop backing files, stacked devices);
//! - [`sysroot`]: the live [`SysTree`](crate::sysfs::SysTree) for the block-device graph: `/sys`
//!   and `/dev` under a root directory descriptor;
//! - [`execute`]: the loop that drives a [`Session`](crate::session::Session);
//! - [`table`]: per-target states shared (as atomics) with the helper processes;
//! - [`freezer`]: the helper process that issues `FIFREEZE`, so that a call stuck in the kernel
//!   cannot hold up the deadline, and the controller's side of it;
//! - [`guardian`]: the helper process that thaws whatever is still ours when the controller
//!   dies or misses its deadline.

pub mod execute;
pub mod freezer;
pub mod guardian;
pub mod sys;
pub mod sysroot;
pub mod table;
pub mod topology;

pub use execute::{
    advance, conclude, deliver, execute, execute_with, run_until_frozen, Controller, Direct,
    FreezeReply, Ops, Signal, ThawReply,
};
