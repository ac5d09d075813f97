//! Consumer group APIs: JoinGroup, SyncGroup, Heartbeat, LeaveGroup
//! (KIP-345 static membership, KIP-800 reasons, KIP-559 protocol type and
//! name), OffsetCommit and OffsetFetch (KIP-320 leader epochs, KIP-447
//! require-stable, KIP-709 batched groups, KIP-848 member epochs), and
//! KIP-848's ConsumerGroupHeartbeat.

use crate::guard::schema::Ty::*;
use crate::guard::schema::{f, message, Message};

pub(super) const OFFSET_COMMIT_REQUEST: Message = message(
    "8+",
    &[
        f("GroupId", Str, "0+"),
        f("GenerationIdOrMemberEpoch", Int32, "1+"),
        f("MemberId", Str, "1+"),
        f("GroupInstanceId", Str, "7+").null("7+"),
        f("RetentionTimeMs", Int64, "2-4"),
        f(
            "Topics",
            Structs(&[
                f("Name", Str, "0+"),
                f(
                    "Partitions",
                    Structs(&[
                        f("PartitionIndex", Int32, "0+"),
                        f("CommittedOffset", Int64, "0+"),
                        f("CommittedLeaderEpoch", Int32, "6+"),
                        f("CommitTimestamp", Int64, "1"),
                        f("CommittedMetadata", Str, "0+").null("0+"),
                    ]),
                    "0+",
                ),
            ]),
            "0+",
        ),
    ],
);

pub(super) const OFFSET_COMMIT_RESPONSE: Message = message(
    "8+",
    &[
        f("ThrottleTimeMs", Int32, "3+"),
        f(
            "Topics",
            Structs(&[
                f("Name", Str, "0-9"),
                f("TopicId", Uuid, "10+"),
                f(
                    "Partitions",
                    Structs(&[
                        f("PartitionIndex", Int32, "0+"),
                        f("ErrorCode", Int16, "0+"),
                    ]),
                    "0+",
                ),
            ]),
            "0+",
        ),
    ],
);

pub(super) const OFFSET_FETCH_REQUEST: Message = message(
    "6+",
    &[
        f("GroupId", Str, "0-7"),
        f(
            "Topics",
            Structs(&[
                f("Name", Str, "0-7"),
                f("PartitionIndexes", Array(&Int32), "0-7"),
            ]),
            "0-7",
        )
        .null("2-7"),
        f(
            "Groups",
            Structs(&[
                f("GroupId", Str, "8+"),
                f("MemberId", Str, "9+").null("9+"),
                f("MemberEpoch", Int32, "9+"),
                f(
                    "Topics",
                    Structs(&[
                        f("Name", Str, "8+"),
                        f("PartitionIndexes", Array(&Int32), "8+"),
                    ]),
                    "8+",
                )
                .null("8+"),
            ]),
            "8+",
        ),
        f("RequireStable", Bool, "7+"),
    ],
);

pub(super) const OFFSET_FETCH_RESPONSE: Message = message(
    "6+",
    &[
        f("ThrottleTimeMs", Int32, "3+"),
        f(
            "Topics",
            Structs(&[
                f("Name", Str, "0-7"),
                f(
                    "Partitions",
                    Structs(&[
                        f("PartitionIndex", Int32, "0-7"),
                        f("CommittedOffset", Int64, "0-7"),
                        f("CommittedLeaderEpoch", Int32, "5-7"),
                        f("Metadata", Str, "0-7").null("0-7"),
                        f("ErrorCode", Int16, "0-7"),
                    ]),
                    "0-7",
                ),
            ]),
            "0-7",
        ),
        f("ErrorCode", Int16, "2-7"),
        f(
            "Groups",
            Structs(&[
                f("GroupId", Str, "8+"),
                f(
                    "Topics",
                    Structs(&[
                        f("Name", Str, "8-9"),
                        f("TopicId", Uuid, "10+"),
                        f(
                            "Partitions",
                            Structs(&[
                                f("PartitionIndex", Int32, "8+"),
                                f("CommittedOffset", Int64, "8+"),
                                f("CommittedLeaderEpoch", Int32, "8+"),
                                f("Metadata", Str, "8+").null("8+"),
                                f("ErrorCode", Int16, "8+"),
                            ]),
                            "8+",
                        ),
                    ]),
                    "8+",
                ),
                f("ErrorCode", Int16, "8+"),
            ]),
            "8+",
        ),
    ],
);

pub(super) const JOIN_GROUP_REQUEST: Message = message(
    "6+",
    &[
        f("GroupId", Str, "0+"),
        f("SessionTimeoutMs", Int32, "0+"),
        f("RebalanceTimeoutMs", Int32, "1+"),
        f("MemberId", Str, "0+"),
        f("GroupInstanceId", Str, "5+").null("5+"),
        f("ProtocolType", Str, "0+"),
        f(
            "Protocols",
            Structs(&[f("Name", Str, "0+"), f("Metadata", Bytes, "0+")]),
            "0+",
        ),
        f("Reason", Str, "8+").null("8+"),
    ],
);

pub(super) const JOIN_GROUP_RESPONSE: Message = message(
    "6+",
    &[
        f("ThrottleTimeMs", Int32, "2+"),
        f("ErrorCode", Int16, "0+"),
        f("GenerationId", Int32, "0+"),
        f("ProtocolType", Str, "7+").null("7+"),
        f("ProtocolName", Str, "0+").null("7+"),
        f("Leader", Str, "0+"),
        f("SkipAssignment", Bool, "9+"),
        f("MemberId", Str, "0+"),
        f(
            "Members",
            Structs(&[
                f("MemberId", Str, "0+"),
                f("GroupInstanceId", Str, "5+").null("5+"),
                f("Metadata", Bytes, "0+"),
            ]),
            "0+",
        ),
    ],
);

pub(super) const HEARTBEAT_REQUEST: Message = message(
    "4+",
    &[
        f("GroupId", Str, "0+"),
        f("GenerationId", Int32, "0+"),
        f("MemberId", Str, "0+"),
        f("GroupInstanceId", Str, "3+").null("3+"),
    ],
);

pub(super) const HEARTBEAT_RESPONSE: Message = message(
    "4+",
    &[
        f("ThrottleTimeMs", Int32, "1+"),
        f("ErrorCode", Int16, "0+"),
    ],
);

pub(super) const LEAVE_GROUP_REQUEST: Message = message(
    "4+",
    &[
        f("GroupId", Str, "0+"),
        f("MemberId", Str, "0-2"),
        f(
            "Members",
            Structs(&[
                f("MemberId", Str, "3+"),
                f("GroupInstanceId", Str, "3+").null("3+"),
                f("Reason", Str, "5+").null("5+"),
            ]),
            "3+",
        ),
    ],
);

pub(super) const LEAVE_GROUP_RESPONSE: Message = message(
    "4+",
    &[
        f("ThrottleTimeMs", Int32, "1+"),
        f("ErrorCode", Int16, "0+"),
        f(
            "Members",
            Structs(&[
                f("MemberId", Str, "3+"),
                f("GroupInstanceId", Str, "3+").null("3+"),
                f("ErrorCode", Int16, "3+"),
            ]),
            "3+",
        ),
    ],
);

pub(super) const SYNC_GROUP_REQUEST: Message = message(
    "4+",
    &[
        f("GroupId", Str, "0+"),
        f("GenerationId", Int32, "0+"),
        f("MemberId", Str, "0+"),
        f("GroupInstanceId", Str, "3+").null("3+"),
        f("ProtocolType", Str, "5+").null("5+"),
        f("ProtocolName", Str, "5+").null("5+"),
        f(
            "Assignments",
            Structs(&[f("MemberId", Str, "0+"), f("Assignment", Bytes, "0+")]),
            "0+",
        ),
    ],
);

pub(super) const SYNC_GROUP_RESPONSE: Message = message(
    "4+",
    &[
        f("ThrottleTimeMs", Int32, "1+"),
        f("ErrorCode", Int16, "0+"),
        f("ProtocolType", Str, "5+").null("5+"),
        f("ProtocolName", Str, "5+").null("5+"),
        f("Assignment", Bytes, "0+"),
    ],
);

/// KIP-848 (v1: KIP-1082 client-generated member ids, SubscribedTopicRegex).
pub(super) const CONSUMER_GROUP_HEARTBEAT_REQUEST: Message = message(
    "0+",
    &[
        f("GroupId", Str, "0+"),
        f("MemberId", Str, "0+"),
        f("MemberEpoch", Int32, "0+"),
        f("InstanceId", Str, "0+").null("0+"),
        f("RackId", Str, "0+").null("0+"),
        f("RebalanceTimeoutMs", Int32, "0+"),
        f("SubscribedTopicNames", Array(&Str), "0+").null("0+"),
        f("SubscribedTopicRegex", Str, "1+").null("1+"),
        f("ServerAssignor", Str, "0+").null("0+"),
        f("TopicPartitions", Structs(HEARTBEAT_TOPIC_PARTITIONS), "0+").null("0+"),
    ],
);

const HEARTBEAT_TOPIC_PARTITIONS: &[crate::guard::schema::Field] = &[
    f("TopicId", Uuid, "0+"),
    f("Partitions", Array(&Int32), "0+"),
];

pub(super) const CONSUMER_GROUP_HEARTBEAT_RESPONSE: Message = message(
    "0+",
    &[
        f("ThrottleTimeMs", Int32, "0+"),
        f("ErrorCode", Int16, "0+"),
        f("ErrorMessage", Str, "0+").null("0+"),
        f("MemberId", Str, "0+").null("0+"),
        f("MemberEpoch", Int32, "0+"),
        f("HeartbeatIntervalMs", Int32, "0+"),
        f(
            "Assignment",
            Struct(&[f(
                "TopicPartitions",
                Structs(HEARTBEAT_TOPIC_PARTITIONS),
                "0+",
            )]),
            "0+",
        )
        .null("0+"),
    ],
);
