//! exactly-txn (work in progress).
