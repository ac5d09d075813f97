//! Produce (KIP-98 transactional id, KIP-467 record errors, KIP-951 leader
//! hints) and Fetch (KIP-227 sessions, KIP-392 rack, KIP-320/595 epochs,
//! KIP-951 node endpoints).

use crate::guard::schema::Ty::*;
use crate::guard::schema::{f, message, Field, Message};

/// A leader hint (KIP-951), used by both Produce and Fetch responses.
const LEADER_ID_AND_EPOCH: &[Field] = &[f("LeaderId", Int32, "0+"), f("LeaderEpoch", Int32, "0+")];

/// A node endpoint (KIP-951), the element of both responses' `NodeEndpoints`.
const NODE_ENDPOINT: &[Field] = &[
    f("NodeId", Int32, "0+"),
    f("Host", Str, "0+"),
    f("Port", Int32, "0+"),
    f("Rack", Str, "0+").null("0+"),
];

pub(super) const PRODUCE_REQUEST: Message = message(
    "9+",
    &[
        f("TransactionalId", Str, "3+").null("3+"),
        f("Acks", Int16, "0+"),
        f("TimeoutMs", Int32, "0+"),
        f(
            "TopicData",
            Structs(&[
                f("Name", Str, "0-12"),
                f("TopicId", Uuid, "13+"),
                f(
                    "PartitionData",
                    Structs(&[
                        f("Index", Int32, "0+"),
                        f("Records", Records, "0+").null("0+"),
                    ]),
                    "0+",
                ),
            ]),
            "0+",
        ),
    ],
);

pub(super) const PRODUCE_RESPONSE: Message = message(
    "9+",
    &[
        f(
            "Responses",
            Structs(&[
                f("Name", Str, "0-12"),
                f("TopicId", Uuid, "13+"),
                f(
                    "PartitionResponses",
                    Structs(&[
                        f("Index", Int32, "0+"),
                        f("ErrorCode", Int16, "0+"),
                        f("BaseOffset", Int64, "0+"),
                        f("LogAppendTimeMs", Int64, "2+"),
                        f("LogStartOffset", Int64, "5+"),
                        f(
                            "RecordErrors",
                            Structs(&[
                                f("BatchIndex", Int32, "8+"),
                                f("BatchIndexErrorMessage", Str, "8+").null("8+"),
                            ]),
                            "8+",
                        ),
                        f("ErrorMessage", Str, "8+").null("8+"),
                        f("CurrentLeader", Struct(LEADER_ID_AND_EPOCH), "10+").tag(0),
                    ]),
                    "0+",
                ),
            ]),
            "0+",
        ),
        f("ThrottleTimeMs", Int32, "1+"),
        f("NodeEndpoints", Structs(NODE_ENDPOINT), "10+").tag(0),
    ],
);

pub(super) const FETCH_REQUEST: Message = message(
    "12+",
    &[
        f("ClusterId", Str, "12+").null("12+").tag(0),
        f("ReplicaId", Int32, "0-14"),
        f(
            "ReplicaState",
            Struct(&[
                f("ReplicaId", Int32, "15+"),
                f("ReplicaEpoch", Int64, "15+"),
            ]),
            "15+",
        )
        .tag(1),
        f("MaxWaitMs", Int32, "0+"),
        f("MinBytes", Int32, "0+"),
        f("MaxBytes", Int32, "3+"),
        f("IsolationLevel", Int8, "4+"),
        f("SessionId", Int32, "7+"),
        f("SessionEpoch", Int32, "7+"),
        f(
            "Topics",
            Structs(&[
                f("Topic", Str, "0-12"),
                f("TopicId", Uuid, "13+"),
                f(
                    "Partitions",
                    Structs(&[
                        f("Partition", Int32, "0+"),
                        f("CurrentLeaderEpoch", Int32, "9+"),
                        f("FetchOffset", Int64, "0+"),
                        f("LastFetchedEpoch", Int32, "12+"),
                        f("LogStartOffset", Int64, "5+"),
                        f("PartitionMaxBytes", Int32, "0+"),
                        f("ReplicaDirectoryId", Uuid, "17+").tag(0),
                        f("HighWatermark", Int64, "18+").tag(1),
                    ]),
                    "0+",
                ),
            ]),
            "0+",
        ),
        f(
            "ForgottenTopicsData",
            Structs(&[
                f("Topic", Str, "7-12"),
                f("TopicId", Uuid, "13+"),
                f("Partitions", Array(&Int32), "7+"),
            ]),
            "7+",
        ),
        f("RackId", Str, "11+"),
    ],
);

pub(super) const FETCH_RESPONSE: Message = message(
    "12+",
    &[
        f("ThrottleTimeMs", Int32, "1+"),
        f("ErrorCode", Int16, "7+"),
        f("SessionId", Int32, "7+"),
        f(
            "Responses",
            Structs(&[
                f("Topic", Str, "0-12"),
                f("TopicId", Uuid, "13+"),
                f(
                    "Partitions",
                    Structs(&[
                        f("PartitionIndex", Int32, "0+"),
                        f("ErrorCode", Int16, "0+"),
                        f("HighWatermark", Int64, "0+"),
                        f("LastStableOffset", Int64, "4+"),
                        f("LogStartOffset", Int64, "5+"),
                        f(
                            "DivergingEpoch",
                            Struct(&[f("Epoch", Int32, "12+"), f("EndOffset", Int64, "12+")]),
                            "12+",
                        )
                        .tag(0),
                        f("CurrentLeader", Struct(LEADER_ID_AND_EPOCH), "12+").tag(1),
                        f(
                            "SnapshotId",
                            Struct(&[f("EndOffset", Int64, "0+"), f("Epoch", Int32, "0+")]),
                            "12+",
                        )
                        .tag(2),
                        f(
                            "AbortedTransactions",
                            Structs(&[f("ProducerId", Int64, "4+"), f("FirstOffset", Int64, "4+")]),
                            "4+",
                        )
                        .null("4+"),
                        f("PreferredReadReplica", Int32, "11+"),
                        f("Records", Records, "0+").null("0+"),
                    ]),
                    "0+",
                ),
            ]),
            "0+",
        ),
        f("NodeEndpoints", Structs(NODE_ENDPOINT), "16+").tag(0),
    ],
);
