//! record (todo)
