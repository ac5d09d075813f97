//! exactly-consumer (work in progress).
