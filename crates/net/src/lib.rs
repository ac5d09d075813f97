//! exactly-net (work in progress).
