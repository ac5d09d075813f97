//! cluster
/// x
#[derive(Debug)]
pub struct Client;
