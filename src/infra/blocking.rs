//! Waiting that must not stall the async runtime.
//!
//! The store and the deploy state are behind mutexes, used from async tasks: a wait on
//! them (or inside SQLite, for a file another process has locked) would hold a worker thread,
//! and with two cores two such waits stop everything, `!ping` and `/healthz` included. A wait
//! that may be long is therefore handed to [`tokio::task::block_in_place`], which moves the
//! worker's other tasks to another thread first.

use tokio::runtime::{Handle, RuntimeFlavor};

/// Runs `work`, which may block, without holding up the runtime's other tasks. Outside a
/// multi-threaded runtime (a plain thread, a single-threaded test) it simply runs.
pub fn off_runtime<T>(work: impl FnOnce() -> T) -> T {
    match Handle::try_current() {
        Ok(handle) if handle.runtime_flavor() == RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(work)
        }
        _ => work(),
    }
}
