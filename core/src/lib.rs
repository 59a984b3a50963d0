//! quiesce-core: the allocation-free heart of quiesce.
//!
//! Everything the freeze path needs, with no heap and no `std`:
//! - [`mountinfo`]: a zero-copy parser of `/proc/self/mountinfo`;
//! - [`fstype`]: which filesystem types can be frozen;
//! - [`plan`] and [`order`]: which superblocks to freeze and in which order;
//! - [`session`]: the sans-IO freeze -> signal -> await -> thaw machine with one deadline;
//! - [`status`]: stable status codes shared with the C ABI and the CLI;
//! - [`errno`]: the errno values quiesce meets, defined once;
//! - [`linux`] (feature `linux`): the executor that performs the syscalls, over rustix.
//!
//! Capacities are const generics; callers provide the storage.
#![no_std]
#![forbid(unsafe_op_in_unsafe_fn)]
#![deny(missing_docs)]

pub mod blockdev;
pub mod errno;
pub mod fstype;
#[cfg(feature = "linux")]
pub mod linux;
pub mod mountinfo;
pub mod order;
pub mod plan;
pub mod session;
pub mod status;
pub mod sysfs;

pub use status::{Consistency, Status};
