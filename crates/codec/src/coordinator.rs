//! FindCoordinator's key type (KIP-98 added transaction coordinators,
//! KIP-699 batched keys): one definition for the whole client, used by the
//! net layer's lookups and the transaction core's requests alike.

/// The kind of key a coordinator is looked up for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CoordinatorType {
    /// Key type 0: a consumer group (`group.id`).
    Group,
    /// Key type 1: a transactional producer (`transactional.id`).
    Transaction,
}

impl CoordinatorType {
    /// The `KeyType` field of FindCoordinator (v1+).
    pub fn key_type(self) -> i8 {
        match self {
            CoordinatorType::Group => 0,
            CoordinatorType::Transaction => 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_types_are_kafkas() {
        assert_eq!(CoordinatorType::Group.key_type(), 0);
        assert_eq!(CoordinatorType::Transaction.key_type(), 1);
    }
}
