//! exactly facade.
