//! What the net layer reads from every response: the broker's throttle time
//! (KIP-219: a throttled broker answers at once and expects the client to
//! hold back further requests on that connection for `throttle_time_ms`).

use exactly_codec::messages::*;

/// Implemented by every Kafka response type.
pub trait ResponseMeta {
    /// The throttle time the broker asked for, when the response carries one
    /// and it is positive.
    fn throttle_time_ms(&self) -> Option<i32>;
}

macro_rules! throttled {
    ($($ty:ident),* $(,)?) => {$(
        impl ResponseMeta for $ty {
            fn throttle_time_ms(&self) -> Option<i32> {
                (self.throttle_time_ms > 0).then_some(self.throttle_time_ms)
            }
        }
    )*};
}

macro_rules! unthrottled {
    ($($ty:ident),* $(,)?) => {$(
        impl ResponseMeta for $ty {
            fn throttle_time_ms(&self) -> Option<i32> {
                None
            }
        }
    )*};
}

throttled! {
    AddOffsetsToTxnResponse,
    AddPartitionsToTxnResponse,
    AddRaftVoterResponse,
    AllocateProducerIdsResponse,
    AlterClientQuotasResponse,
    AlterConfigsResponse,
    AlterPartitionReassignmentsResponse,
    AlterPartitionResponse,
    AlterReplicaLogDirsResponse,
    AlterShareGroupOffsetsResponse,
    AlterUserScramCredentialsResponse,
    ApiVersionsResponse,
    AssignReplicasToDirsResponse,
    BrokerHeartbeatResponse,
    BrokerRegistrationResponse,
    ConsumerGroupDescribeResponse,
    ConsumerGroupHeartbeatResponse,
    ControllerRegistrationResponse,
    CreateAclsResponse,
    CreateDelegationTokenResponse,
    CreatePartitionsResponse,
    CreateTopicsResponse,
    DeleteAclsResponse,
    DeleteGroupsResponse,
    DeleteRecordsResponse,
    DeleteShareGroupOffsetsResponse,
    DeleteTopicsResponse,
    DescribeAclsResponse,
    DescribeClientQuotasResponse,
    DescribeClusterResponse,
    DescribeConfigsResponse,
    DescribeDelegationTokenResponse,
    DescribeGroupsResponse,
    DescribeLogDirsResponse,
    DescribeProducersResponse,
    DescribeShareGroupOffsetsResponse,
    DescribeTopicPartitionsResponse,
    DescribeTransactionsResponse,
    DescribeUserScramCredentialsResponse,
    ElectLeadersResponse,
    EndTxnResponse,
    ExpireDelegationTokenResponse,
    FetchResponse,
    FetchSnapshotResponse,
    FindCoordinatorResponse,
    GetTelemetrySubscriptionsResponse,
    HeartbeatResponse,
    IncrementalAlterConfigsResponse,
    InitProducerIdResponse,
    JoinGroupResponse,
    LeaveGroupResponse,
    ListConfigResourcesResponse,
    ListGroupsResponse,
    ListOffsetsResponse,
    ListPartitionReassignmentsResponse,
    ListTransactionsResponse,
    MetadataResponse,
    OffsetCommitResponse,
    OffsetDeleteResponse,
    OffsetFetchResponse,
    OffsetForLeaderEpochResponse,
    ProduceResponse,
    PushTelemetryResponse,
    RemoveRaftVoterResponse,
    RenewDelegationTokenResponse,
    ShareAcknowledgeResponse,
    ShareFetchResponse,
    ShareGroupDescribeResponse,
    ShareGroupHeartbeatResponse,
    SyncGroupResponse,
    TxnOffsetCommitResponse,
    UnregisterBrokerResponse,
    UpdateFeaturesResponse,
    UpdateRaftVoterResponse,
}

unthrottled! {
    BeginQuorumEpochResponse,
    DeleteShareGroupStateResponse,
    DescribeQuorumResponse,
    EndQuorumEpochResponse,
    EnvelopeResponse,
    InitializeShareGroupStateResponse,
    ReadShareGroupStateResponse,
    ReadShareGroupStateSummaryResponse,
    SaslAuthenticateResponse,
    SaslHandshakeResponse,
    VoteResponse,
    WriteShareGroupStateResponse,
    WriteTxnMarkersResponse,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_positive_throttle_only() {
        let r = MetadataResponse::default().with_throttle_time_ms(250);
        assert_eq!(r.throttle_time_ms(), Some(250));
        let r = MetadataResponse::default();
        assert_eq!(r.throttle_time_ms(), None);
        assert_eq!(SaslHandshakeResponse::default().throttle_time_ms(), None);
    }
}
