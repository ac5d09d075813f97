//! Kafka error codes as a typed enum.
//!
//! Every error code the Kafka protocol defines, with its wire code, its name as
//! Kafka spells it, and whether the protocol marks it retriable. Unknown codes
//! (a newer broker, a hostile peer) are preserved as [`ErrorCode::Unknown`] so
//! nothing is lost and no caller ever treats an unknown code as success.
//!
//! Retriability here is the protocol's own flag; what the producer *does* on an
//! error is decided by the one classifier in `exactly-txn`, never by this bit.

macro_rules! error_codes {
    ( $( ($variant:ident, $code:literal, $name:literal, $retriable:literal, $description:literal) ),* $(,)? ) => {
        /// A Kafka protocol error code (`0` = no error is not a variant: see
        /// [`ErrorCode::from_code`]).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum ErrorCode {
            /// A code this client does not know, kept as received.
            Unknown(i16),
            $(
                #[doc = concat!("`", $name, "` (", stringify!($code), "): ", $description)]
                $variant,
            )*
        }

        impl ErrorCode {
            /// Every known error code, in wire-code order.
            pub const ALL: &'static [ErrorCode] = &[ $( ErrorCode::$variant, )* ];

            /// `None` for `0` (no error), otherwise the typed code; unknown
            /// codes become [`ErrorCode::Unknown`].
            pub const fn from_code(code: i16) -> Option<ErrorCode> {
                match code {
                    0 => None,
                    $( $code => Some(ErrorCode::$variant), )*
                    other => Some(ErrorCode::Unknown(other)),
                }
            }

            /// The wire code.
            pub const fn code(self) -> i16 {
                match self {
                    ErrorCode::Unknown(code) => code,
                    $( ErrorCode::$variant => $code, )*
                }
            }

            /// The name Kafka gives this code (`"NOT_LEADER_OR_FOLLOWER"`), or
            /// `"UNKNOWN"` for a code this client does not know.
            pub const fn name(self) -> &'static str {
                match self {
                    ErrorCode::Unknown(_) => "UNKNOWN",
                    $( ErrorCode::$variant => $name, )*
                }
            }

            /// What the broker means by this code, in a sentence. Unknown codes
            /// say so.
            pub const fn description(self) -> &'static str {
                match self {
                    ErrorCode::Unknown(_) => "An error code this client does not know (sent by a newer or non-conforming broker); treat it as a failure, never as success.",
                    $( ErrorCode::$variant => $description, )*
                }
            }

            /// Whether the protocol marks this code retriable. Unknown codes
            /// are not retriable: a client must never spin on what it cannot
            /// interpret.
            pub const fn is_retriable(self) -> bool {
                match self {
                    ErrorCode::Unknown(_) => false,
                    $( ErrorCode::$variant => $retriable, )*
                }
            }
        }
    };
}

error_codes! {
    (UnknownServerError, -1, "UNKNOWN_SERVER_ERROR", false,
        "The broker hit an error it could not map to any specific code; the request may or may not have taken effect."),
    (OffsetOutOfRange, 1, "OFFSET_OUT_OF_RANGE", false,
        "The requested offset lies outside the range the partition currently holds (before the log start or past the end)."),
    (CorruptMessage, 2, "CORRUPT_MESSAGE", true,
        "The broker found a message whose CRC, size or structure is invalid."),
    (UnknownTopicOrPartition, 3, "UNKNOWN_TOPIC_OR_PARTITION", true,
        "The broker does not host this topic or partition (it may not exist yet, or metadata is stale)."),
    (InvalidFetchSize, 4, "INVALID_FETCH_SIZE", false,
        "The fetch asked for a size the broker will not serve."),
    (LeaderNotAvailable, 5, "LEADER_NOT_AVAILABLE", true,
        "The partition has no leader at the moment, for example during an election."),
    (NotLeaderOrFollower, 6, "NOT_LEADER_OR_FOLLOWER", true,
        "This broker is not the leader (or a follower, for follower fetches) of the partition; refresh metadata and go to the right broker."),
    (RequestTimedOut, 7, "REQUEST_TIMED_OUT", true,
        "The broker gave up waiting for the request to complete; the write may still have happened."),
    (BrokerNotAvailable, 8, "BROKER_NOT_AVAILABLE", false,
        "The broker is not available."),
    (ReplicaNotAvailable, 9, "REPLICA_NOT_AVAILABLE", true,
        "A replica the request needs is not available on this broker."),
    (MessageTooLarge, 10, "MESSAGE_TOO_LARGE", false,
        "A record batch is larger than the topic or broker accepts."),
    (StaleControllerEpoch, 11, "STALE_CONTROLLER_EPOCH", false,
        "A controller request carried an epoch older than the broker's current controller epoch."),
    (OffsetMetadataTooLarge, 12, "OFFSET_METADATA_TOO_LARGE", false,
        "The metadata string attached to an offset commit is longer than the broker allows."),
    (NetworkException, 13, "NETWORK_EXCEPTION", true,
        "The broker lost its connection while handling the request (usually a disconnect between brokers)."),
    (CoordinatorLoadInProgress, 14, "COORDINATOR_LOAD_IN_PROGRESS", true,
        "The coordinator is still loading its state (group or transaction log) and cannot answer yet."),
    (CoordinatorNotAvailable, 15, "COORDINATOR_NOT_AVAILABLE", true,
        "The coordinator for this group or transactional id is not available right now."),
    (NotCoordinator, 16, "NOT_COORDINATOR", true,
        "This broker is not the coordinator for the group or transactional id; look the coordinator up again."),
    (InvalidTopicException, 17, "INVALID_TOPIC_EXCEPTION", false,
        "The topic name is invalid, or the request tried to write to an internal topic it may not touch."),
    (RecordListTooLarge, 18, "RECORD_LIST_TOO_LARGE", false,
        "The produce request's record set for a partition exceeds the configured segment size."),
    (NotEnoughReplicas, 19, "NOT_ENOUGH_REPLICAS", true,
        "Fewer in-sync replicas are available than the topic's min.insync.replicas requires; nothing was written."),
    (NotEnoughReplicasAfterAppend, 20, "NOT_ENOUGH_REPLICAS_AFTER_APPEND", true,
        "The records were written to the leader, but the in-sync replica set shrank below the minimum before they were replicated; the outcome is uncertain."),
    (InvalidRequiredAcks, 21, "INVALID_REQUIRED_ACKS", false,
        "The produce request carried an acks value the broker does not accept."),
    (IllegalGeneration, 22, "ILLEGAL_GENERATION", false,
        "The group member used a generation id that is no longer current."),
    (InconsistentGroupProtocol, 23, "INCONSISTENT_GROUP_PROTOCOL", false,
        "The member's protocol type or supported protocols do not match those of the group."),
    (InvalidGroupId, 24, "INVALID_GROUP_ID", false,
        "The group id is empty or otherwise invalid."),
    (UnknownMemberId, 25, "UNKNOWN_MEMBER_ID", false,
        "The coordinator does not know this member id (it may have been removed from the group)."),
    (InvalidSessionTimeout, 26, "INVALID_SESSION_TIMEOUT", false,
        "The requested session timeout lies outside the range the broker allows."),
    (RebalanceInProgress, 27, "REBALANCE_IN_PROGRESS", false,
        "The group is rebalancing; the member must rejoin."),
    (InvalidCommitOffsetSize, 28, "INVALID_COMMIT_OFFSET_SIZE", false,
        "The committed offset's metadata is too large for the offsets topic."),
    (TopicAuthorizationFailed, 29, "TOPIC_AUTHORIZATION_FAILED", false,
        "The principal is not authorized to access this topic."),
    (GroupAuthorizationFailed, 30, "GROUP_AUTHORIZATION_FAILED", false,
        "The principal is not authorized to access this consumer group."),
    (ClusterAuthorizationFailed, 31, "CLUSTER_AUTHORIZATION_FAILED", false,
        "The principal is not authorized for this cluster-level operation (idempotent writes need it on old brokers)."),
    (InvalidTimestamp, 32, "INVALID_TIMESTAMP", false,
        "A record's timestamp lies outside the range the topic accepts."),
    (UnsupportedSaslMechanism, 33, "UNSUPPORTED_SASL_MECHANISM", false,
        "The broker does not support the requested SASL mechanism."),
    (IllegalSaslState, 34, "ILLEGAL_SASL_STATE", false,
        "A SASL request arrived in a state of the authentication exchange that does not expect it."),
    (UnsupportedVersion, 35, "UNSUPPORTED_VERSION", false,
        "The broker does not support this API at this version."),
    (TopicAlreadyExists, 36, "TOPIC_ALREADY_EXISTS", false,
        "A topic with this name already exists."),
    (InvalidPartitions, 37, "INVALID_PARTITIONS", false,
        "The number of partitions is invalid."),
    (InvalidReplicationFactor, 38, "INVALID_REPLICATION_FACTOR", false,
        "The replication factor is invalid (for example larger than the number of brokers)."),
    (InvalidReplicaAssignment, 39, "INVALID_REPLICA_ASSIGNMENT", false,
        "The replica assignment is invalid."),
    (InvalidConfig, 40, "INVALID_CONFIG", false,
        "A configuration value is invalid."),
    (NotController, 41, "NOT_CONTROLLER", true,
        "The request was sent to a broker that is not the controller."),
    (InvalidRequest, 42, "INVALID_REQUEST", false,
        "The request is malformed or inconsistent in a way the broker detected; this usually indicates a client bug."),
    (UnsupportedForMessageFormat, 43, "UNSUPPORTED_FOR_MESSAGE_FORMAT", false,
        "The message format version of the topic does not support this request (for example transactions on an old format)."),
    (PolicyViolation, 44, "POLICY_VIOLATION", false,
        "The request breaks a policy configured on the broker."),
    (OutOfOrderSequenceNumber, 45, "OUT_OF_ORDER_SEQUENCE_NUMBER", false,
        "The broker received a producer sequence number that does not follow the last one it stored for this producer and partition."),
    (DuplicateSequenceNumber, 46, "DUPLICATE_SEQUENCE_NUMBER", false,
        "The broker already has a batch with this producer id, epoch and sequence: the batch was written before."),
    (InvalidProducerEpoch, 47, "INVALID_PRODUCER_EPOCH", false,
        "The producer's epoch is older than the one the broker knows; another instance has taken over or the epoch was bumped."),
    (InvalidTxnState, 48, "INVALID_TXN_STATE", false,
        "The transaction coordinator cannot perform the operation in the transaction's current state."),
    (InvalidProducerIdMapping, 49, "INVALID_PRODUCER_ID_MAPPING", false,
        "The producer id in the request does not belong to the transactional id the coordinator holds."),
    (InvalidTransactionTimeout, 50, "INVALID_TRANSACTION_TIMEOUT", false,
        "The transaction timeout is larger than the broker's transaction.max.timeout.ms."),
    (ConcurrentTransactions, 51, "CONCURRENT_TRANSACTIONS", false,
        "Another transaction operation for this producer is still being completed on the coordinator; retry shortly."),
    (TransactionCoordinatorFenced, 52, "TRANSACTION_COORDINATOR_FENCED", false,
        "The transaction coordinator that sent this request is no longer the active coordinator."),
    (TransactionalIdAuthorizationFailed, 53, "TRANSACTIONAL_ID_AUTHORIZATION_FAILED", false,
        "The principal is not authorized to use this transactional id."),
    (SecurityDisabled, 54, "SECURITY_DISABLED", false,
        "Security features are disabled on this broker."),
    (OperationNotAttempted, 55, "OPERATION_NOT_ATTEMPTED", false,
        "The broker did not attempt this part of the request because another part of the same request failed."),
    (KafkaStorageError, 56, "KAFKA_STORAGE_ERROR", true,
        "The broker's disk holding this replica failed or is offline."),
    (LogDirNotFound, 57, "LOG_DIR_NOT_FOUND", false,
        "The requested log directory does not exist on the broker."),
    (SaslAuthenticationFailed, 58, "SASL_AUTHENTICATION_FAILED", false,
        "SASL authentication failed (bad credentials or mechanism-level failure)."),
    (UnknownProducerId, 59, "UNKNOWN_PRODUCER_ID", false,
        "The broker has no state for this producer id on the partition (for example retention removed it)."),
    (ReassignmentInProgress, 60, "REASSIGNMENT_IN_PROGRESS", false,
        "A partition reassignment is already in progress."),
    (DelegationTokenAuthDisabled, 61, "DELEGATION_TOKEN_AUTH_DISABLED", false,
        "Delegation token authentication is disabled on the broker."),
    (DelegationTokenNotFound, 62, "DELEGATION_TOKEN_NOT_FOUND", false,
        "No delegation token with this id exists."),
    (DelegationTokenOwnerMismatch, 63, "DELEGATION_TOKEN_OWNER_MISMATCH", false,
        "The delegation token's owner does not match the requester."),
    (DelegationTokenRequestNotAllowed, 64, "DELEGATION_TOKEN_REQUEST_NOT_ALLOWED", false,
        "Delegation token requests are not allowed on this connection (for example one authenticated with a token)."),
    (DelegationTokenAuthorizationFailed, 65, "DELEGATION_TOKEN_AUTHORIZATION_FAILED", false,
        "The principal is not authorized for this delegation token operation."),
    (DelegationTokenExpired, 66, "DELEGATION_TOKEN_EXPIRED", false,
        "The delegation token has expired."),
    (InvalidPrincipalType, 67, "INVALID_PRINCIPAL_TYPE", false,
        "The principal type is not supported."),
    (NonEmptyGroup, 68, "NON_EMPTY_GROUP", false,
        "The group still has members, so the operation (such as deletion) is refused."),
    (GroupIdNotFound, 69, "GROUP_ID_NOT_FOUND", false,
        "No group with this id exists."),
    (FetchSessionIdNotFound, 70, "FETCH_SESSION_ID_NOT_FOUND", true,
        "The fetch session id is not known to the broker."),
    (InvalidFetchSessionEpoch, 71, "INVALID_FETCH_SESSION_EPOCH", true,
        "The fetch session epoch does not match the broker's."),
    (ListenerNotFound, 72, "LISTENER_NOT_FOUND", true,
        "The leader has no endpoint for the listener the request came in on."),
    (TopicDeletionDisabled, 73, "TOPIC_DELETION_DISABLED", false,
        "Topic deletion is disabled on the broker."),
    (FencedLeaderEpoch, 74, "FENCED_LEADER_EPOCH", true,
        "The request carried a leader epoch older than the broker's current one for the partition."),
    (UnknownLeaderEpoch, 75, "UNKNOWN_LEADER_EPOCH", true,
        "The request carried a leader epoch newer than the broker knows."),
    (UnsupportedCompressionType, 76, "UNSUPPORTED_COMPRESSION_TYPE", false,
        "The requested compression type is not supported (by this request version or this consumer)."),
    (StaleBrokerEpoch, 77, "STALE_BROKER_EPOCH", false,
        "A broker request carried a broker epoch that is not the current one."),
    (OffsetNotAvailable, 78, "OFFSET_NOT_AVAILABLE", true,
        "The leader cannot serve the requested offset yet, for example while the high watermark catches up after an election."),
    (MemberIdRequired, 79, "MEMBER_ID_REQUIRED", false,
        "The join request must be repeated with the member id the coordinator assigned."),
    (PreferredLeaderNotAvailable, 80, "PREFERRED_LEADER_NOT_AVAILABLE", true,
        "The preferred leader could not be elected."),
    (GroupMaxSizeReached, 81, "GROUP_MAX_SIZE_REACHED", false,
        "The group already has as many members as group.max.size allows."),
    (FencedInstanceId, 82, "FENCED_INSTANCE_ID", false,
        "Another member with the same group.instance.id has taken over; this static member is fenced."),
    (EligibleLeadersNotAvailable, 83, "ELIGIBLE_LEADERS_NOT_AVAILABLE", true,
        "No eligible replica can become leader of the partition."),
    (ElectionNotNeeded, 84, "ELECTION_NOT_NEEDED", true,
        "The leader election is not needed."),
    (NoReassignmentInProgress, 85, "NO_REASSIGNMENT_IN_PROGRESS", false,
        "There is no partition reassignment in progress."),
    (GroupSubscribedToTopic, 86, "GROUP_SUBSCRIBED_TO_TOPIC", false,
        "Offsets of the topic cannot be deleted because the group is still subscribed to it."),
    (InvalidRecord, 87, "INVALID_RECORD", false,
        "The broker rejected a record because it violates a rule (for example a compacted topic needs keys)."),
    (UnstableOffsetCommit, 88, "UNSTABLE_OFFSET_COMMIT", true,
        "Offsets for the partition are pending in an open transaction; the fetch must wait for it to finish."),
    (ThrottlingQuotaExceeded, 89, "THROTTLING_QUOTA_EXCEEDED", true,
        "The request exceeded a throttling quota and was rejected."),
    (ProducerFenced, 90, "PRODUCER_FENCED", false,
        "A newer producer with the same transactional id has taken over; this producer is fenced for good."),
    (ResourceNotFound, 91, "RESOURCE_NOT_FOUND", false,
        "The requested resource does not exist."),
    (DuplicateResource, 92, "DUPLICATE_RESOURCE", false,
        "The resource already exists."),
    (UnacceptableCredential, 93, "UNACCEPTABLE_CREDENTIAL", false,
        "The credential is not acceptable."),
    (InconsistentVoterSet, 94, "INCONSISTENT_VOTER_SET", false,
        "The voter set of the quorum is inconsistent."),
    (InvalidUpdateVersion, 95, "INVALID_UPDATE_VERSION", false,
        "The feature update version is invalid."),
    (FeatureUpdateFailed, 96, "FEATURE_UPDATE_FAILED", false,
        "The feature update could not be applied."),
    (PrincipalDeserializationFailure, 97, "PRINCIPAL_DESERIALIZATION_FAILURE", false,
        "The request principal could not be deserialized."),
    (SnapshotNotFound, 98, "SNAPSHOT_NOT_FOUND", false,
        "The requested metadata snapshot does not exist."),
    (PositionOutOfRange, 99, "POSITION_OUT_OF_RANGE", false,
        "The requested position lies outside the fetchable range of the metadata log."),
    (UnknownTopicId, 100, "UNKNOWN_TOPIC_ID", true,
        "The broker does not know this topic id."),
    (DuplicateBrokerRegistration, 101, "DUPLICATE_BROKER_REGISTRATION", false,
        "A broker registration reused the id of a registered broker."),
    (BrokerIdNotRegistered, 102, "BROKER_ID_NOT_REGISTERED", false,
        "The broker id is not registered."),
    (InconsistentTopicId, 103, "INCONSISTENT_TOPIC_ID", true,
        "The topic id in the request does not match the one the broker holds for that topic name."),
    (InconsistentClusterId, 104, "INCONSISTENT_CLUSTER_ID", false,
        "The cluster id in the request does not match this cluster's."),
    (TransactionalIdNotFound, 105, "TRANSACTIONAL_ID_NOT_FOUND", false,
        "The transactional id could not be found."),
    (FetchSessionTopicIdError, 106, "FETCH_SESSION_TOPIC_ID_ERROR", true,
        "The fetch session hit a topic id problem (some topics have ids and some do not)."),
    (IneligibleReplica, 107, "INELIGIBLE_REPLICA", false,
        "The new ISR contains at least one replica that is not eligible."),
    (NewLeaderElected, 108, "NEW_LEADER_ELECTED", false,
        "A new leader was elected for the partition and the request was not completed."),
    (OffsetMovedToTieredStorage, 109, "OFFSET_MOVED_TO_TIERED_STORAGE", false,
        "The requested offset has moved to tiered storage."),
    (FencedMemberEpoch, 110, "FENCED_MEMBER_EPOCH", false,
        "The member epoch is fenced by the group coordinator; the member must rejoin with epoch zero."),
    (UnreleasedInstanceId, 111, "UNRELEASED_INSTANCE_ID", false,
        "The static member's instance id is still in use and has not been released."),
    (UnsupportedAssignor, 112, "UNSUPPORTED_ASSIGNOR", false,
        "The requested assignor is not supported by the group coordinator."),
    (StaleMemberEpoch, 113, "STALE_MEMBER_EPOCH", false,
        "The member epoch is stale; the member should retry with its latest epoch."),
    (MismatchedEndpointType, 114, "MISMATCHED_ENDPOINT_TYPE", false,
        "The request was sent to an endpoint of the wrong type (for example a controller instead of a broker)."),
    (UnsupportedEndpointType, 115, "UNSUPPORTED_ENDPOINT_TYPE", false,
        "The endpoint type is not supported by this node."),
    (UnknownControllerId, 116, "UNKNOWN_CONTROLLER_ID", false,
        "The controller id is not known to the node."),
    (UnknownSubscriptionId, 117, "UNKNOWN_SUBSCRIPTION_ID", false,
        "The client telemetry subscription id is unknown or outdated."),
    (TelemetryTooLarge, 118, "TELEMETRY_TOO_LARGE", false,
        "The client telemetry payload is larger than allowed."),
    (InvalidRegistration, 119, "INVALID_REGISTRATION", false,
        "The controller rejected a broker registration as invalid."),
    (TransactionAbortable, 120, "TRANSACTION_ABORTABLE", false,
        "The server hit an error the transaction can recover from only by being aborted."),
    (InvalidRecordState, 121, "INVALID_RECORD_STATE", false,
        "The state of a record in a share group does not allow the operation."),
    (ShareSessionNotFound, 122, "SHARE_SESSION_NOT_FOUND", true,
        "The share session was not found."),
    (InvalidShareSessionEpoch, 123, "INVALID_SHARE_SESSION_EPOCH", true,
        "The share session epoch is invalid."),
    (FencedStateEpoch, 124, "FENCED_STATE_EPOCH", false,
        "The share coordinator state epoch is fenced."),
    (InvalidVoterKey, 125, "INVALID_VOTER_KEY", false,
        "The voter key does not match the receiving replica's key."),
    (DuplicateVoter, 126, "DUPLICATE_VOTER", false,
        "The voter is already part of the voter set."),
    (VoterNotFound, 127, "VOTER_NOT_FOUND", false,
        "The voter is not part of the voter set."),
    (InvalidRegularExpression, 128, "INVALID_REGULAR_EXPRESSION", false,
        "The regular expression in the subscription is invalid."),
    (RebootstrapRequired, 129, "REBOOTSTRAP_REQUIRED", false,
        "The client must rebootstrap to refresh its view of the cluster."),
    (StreamsInvalidTopology, 130, "STREAMS_INVALID_TOPOLOGY", false,
        "The streams topology is invalid."),
    (StreamsInvalidTopologyEpoch, 131, "STREAMS_INVALID_TOPOLOGY_EPOCH", false,
        "The streams topology epoch is invalid."),
    (StreamsTopologyFenced, 132, "STREAMS_TOPOLOGY_FENCED", false,
        "The streams topology is fenced by a newer one."),
    (ShareSessionLimitReached, 133, "SHARE_SESSION_LIMIT_REACHED", true,
        "The broker reached its limit of share sessions."),
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ErrorCode::Unknown(code) => write!(f, "UNKNOWN({code})"),
            known => write!(f, "{}({})", known.name(), known.code()),
        }
    }
}

impl std::error::Error for ErrorCode {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_every_known_code() {
        for &e in ErrorCode::ALL {
            assert_eq!(ErrorCode::from_code(e.code()), Some(e), "{e}");
            assert!(!matches!(e, ErrorCode::Unknown(_)));
        }
    }

    #[test]
    fn zero_is_no_error_and_unknown_is_preserved() {
        assert_eq!(ErrorCode::from_code(0), None);
        assert_eq!(ErrorCode::from_code(9999), Some(ErrorCode::Unknown(9999)));
        assert_eq!(ErrorCode::Unknown(9999).code(), 9999);
        assert!(!ErrorCode::Unknown(9999).is_retriable());
    }

    #[test]
    fn every_code_has_a_distinct_description() {
        let mut seen = std::collections::HashSet::new();
        for &e in ErrorCode::ALL {
            let d = e.description();
            assert!(d.len() > 20 && d.ends_with('.'), "{e}: {d}");
            assert!(seen.insert(d), "{e} shares its description");
        }
        assert!(ErrorCode::Unknown(777)
            .description()
            .contains("does not know"));
        assert!(ErrorCode::DuplicateSequenceNumber
            .description()
            .contains("written before"));
    }

    #[test]
    fn names_are_kafkas() {
        assert_eq!(
            ErrorCode::NotLeaderOrFollower.name(),
            "NOT_LEADER_OR_FOLLOWER"
        );
        assert_eq!(ErrorCode::NotLeaderOrFollower.code(), 6);
        assert_eq!(ErrorCode::ProducerFenced.code(), 90);
        assert_eq!(ErrorCode::DuplicateSequenceNumber.code(), 46);
        assert_eq!(ErrorCode::UnknownServerError.code(), -1);
    }
}
