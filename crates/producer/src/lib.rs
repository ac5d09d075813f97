//! exactly-producer (work in progress).
