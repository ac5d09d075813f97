//! Cluster-level APIs: ApiVersions (KIP-35, KIP-511, KIP-584 features),
//! SASL (KIP-43, KIP-152, KIP-368), Metadata (KIP-516 topic ids),
//! ListOffsets (KIP-98 isolation level, KIP-320 leader epoch),
//! FindCoordinator (KIP-699 batched keys) and CreateTopics (KIP-525).

use crate::guard::schema::Ty::*;
use crate::guard::schema::{f, message, Message};

pub(super) const API_VERSIONS_REQUEST: Message = message(
    "3+",
    &[
        f("ClientSoftwareName", Str, "3+"),
        f("ClientSoftwareVersion", Str, "3+"),
    ],
);

pub(super) const API_VERSIONS_RESPONSE: Message = message(
    "3+",
    &[
        f("ErrorCode", Int16, "0+"),
        f(
            "ApiKeys",
            Structs(&[
                f("ApiKey", Int16, "0+"),
                f("MinVersion", Int16, "0+"),
                f("MaxVersion", Int16, "0+"),
            ]),
            "0+",
        ),
        f("ThrottleTimeMs", Int32, "1+"),
        f(
            "SupportedFeatures",
            Structs(&[
                f("Name", Str, "3+"),
                f("MinVersion", Int16, "3+"),
                f("MaxVersion", Int16, "3+"),
            ]),
            "3+",
        )
        .tag(0),
        f("FinalizedFeaturesEpoch", Int64, "3+").tag(1),
        f(
            "FinalizedFeatures",
            Structs(&[
                f("Name", Str, "3+"),
                f("MaxVersionLevel", Int16, "3+"),
                f("MinVersionLevel", Int16, "3+"),
            ]),
            "3+",
        )
        .tag(2),
        f("ZkMigrationReady", Bool, "3+").tag(3),
    ],
);

pub(super) const SASL_HANDSHAKE_REQUEST: Message = message("none", &[f("Mechanism", Str, "0+")]);

pub(super) const SASL_HANDSHAKE_RESPONSE: Message = message(
    "none",
    &[
        f("ErrorCode", Int16, "0+"),
        f("Mechanisms", Array(&Str), "0+"),
    ],
);

pub(super) const SASL_AUTHENTICATE_REQUEST: Message = message("2+", &[f("AuthBytes", Bytes, "0+")]);

pub(super) const SASL_AUTHENTICATE_RESPONSE: Message = message(
    "2+",
    &[
        f("ErrorCode", Int16, "0+"),
        f("ErrorMessage", Str, "0+").null("0+"),
        f("AuthBytes", Bytes, "0+"),
        f("SessionLifetimeMs", Int64, "1+"),
    ],
);

pub(super) const METADATA_REQUEST: Message = message(
    "9+",
    &[
        f(
            "Topics",
            Structs(&[f("TopicId", Uuid, "10+"), f("Name", Str, "0+").null("10+")]),
            "0+",
        )
        .null("1+"),
        f("AllowAutoTopicCreation", Bool, "4+"),
        f("IncludeClusterAuthorizedOperations", Bool, "8-10"),
        f("IncludeTopicAuthorizedOperations", Bool, "8+"),
    ],
);

pub(super) const METADATA_RESPONSE: Message = message(
    "9+",
    &[
        f("ThrottleTimeMs", Int32, "3+"),
        f(
            "Brokers",
            Structs(&[
                f("NodeId", Int32, "0+"),
                f("Host", Str, "0+"),
                f("Port", Int32, "0+"),
                f("Rack", Str, "1+").null("1+"),
            ]),
            "0+",
        ),
        f("ClusterId", Str, "2+").null("2+"),
        f("ControllerId", Int32, "1+"),
        f(
            "Topics",
            Structs(&[
                f("ErrorCode", Int16, "0+"),
                f("Name", Str, "0+").null("12+"),
                f("TopicId", Uuid, "10+"),
                f("IsInternal", Bool, "1+"),
                f(
                    "Partitions",
                    Structs(&[
                        f("ErrorCode", Int16, "0+"),
                        f("PartitionIndex", Int32, "0+"),
                        f("LeaderId", Int32, "0+"),
                        f("LeaderEpoch", Int32, "7+"),
                        f("ReplicaNodes", Array(&Int32), "0+"),
                        f("IsrNodes", Array(&Int32), "0+"),
                        f("OfflineReplicas", Array(&Int32), "5+"),
                    ]),
                    "0+",
                ),
                f("TopicAuthorizedOperations", Int32, "8+"),
            ]),
            "0+",
        ),
        f("ClusterAuthorizedOperations", Int32, "8-10"),
        f("ErrorCode", Int16, "13+"),
    ],
);

pub(super) const LIST_OFFSETS_REQUEST: Message = message(
    "6+",
    &[
        f("ReplicaId", Int32, "0+"),
        f("IsolationLevel", Int8, "2+"),
        f(
            "Topics",
            Structs(&[
                f("Name", Str, "0+"),
                f(
                    "Partitions",
                    Structs(&[
                        f("PartitionIndex", Int32, "0+"),
                        f("CurrentLeaderEpoch", Int32, "4+"),
                        f("Timestamp", Int64, "0+"),
                        f("MaxNumOffsets", Int32, "0"),
                    ]),
                    "0+",
                ),
            ]),
            "0+",
        ),
        f("TimeoutMs", Int32, "10+"),
    ],
);

pub(super) const LIST_OFFSETS_RESPONSE: Message = message(
    "6+",
    &[
        f("ThrottleTimeMs", Int32, "2+"),
        f(
            "Topics",
            Structs(&[
                f("Name", Str, "0+"),
                f(
                    "Partitions",
                    Structs(&[
                        f("PartitionIndex", Int32, "0+"),
                        f("ErrorCode", Int16, "0+"),
                        f("OldStyleOffsets", Array(&Int64), "0"),
                        f("Timestamp", Int64, "1+"),
                        f("Offset", Int64, "1+"),
                        f("LeaderEpoch", Int32, "4+"),
                    ]),
                    "0+",
                ),
            ]),
            "0+",
        ),
    ],
);

pub(super) const FIND_COORDINATOR_REQUEST: Message = message(
    "3+",
    &[
        f("Key", Str, "0-3"),
        f("KeyType", Int8, "1+"),
        f("CoordinatorKeys", Array(&Str), "4+"),
    ],
);

pub(super) const FIND_COORDINATOR_RESPONSE: Message = message(
    "3+",
    &[
        f("ThrottleTimeMs", Int32, "1+"),
        f("ErrorCode", Int16, "0-3"),
        f("ErrorMessage", Str, "1-3").null("1-3"),
        f("NodeId", Int32, "0-3"),
        f("Host", Str, "0-3"),
        f("Port", Int32, "0-3"),
        f(
            "Coordinators",
            Structs(&[
                f("Key", Str, "4+"),
                f("NodeId", Int32, "4+"),
                f("Host", Str, "4+"),
                f("Port", Int32, "4+"),
                f("ErrorCode", Int16, "4+"),
                f("ErrorMessage", Str, "4+").null("4+"),
            ]),
            "4+",
        ),
    ],
);

pub(super) const CREATE_TOPICS_REQUEST: Message = message(
    "5+",
    &[
        f(
            "Topics",
            Structs(&[
                f("Name", Str, "0+"),
                f("NumPartitions", Int32, "0+"),
                f("ReplicationFactor", Int16, "0+"),
                f(
                    "Assignments",
                    Structs(&[
                        f("PartitionIndex", Int32, "0+"),
                        f("BrokerIds", Array(&Int32), "0+"),
                    ]),
                    "0+",
                ),
                f(
                    "Configs",
                    Structs(&[f("Name", Str, "0+"), f("Value", Str, "0+").null("0+")]),
                    "0+",
                ),
            ]),
            "0+",
        ),
        // The spec spells these two in lower camel case (error paths use
        // the spec's names).
        f("timeoutMs", Int32, "0+"),
        f("validateOnly", Bool, "1+"),
    ],
);

pub(super) const CREATE_TOPICS_RESPONSE: Message = message(
    "5+",
    &[
        f("ThrottleTimeMs", Int32, "2+"),
        f(
            "Topics",
            Structs(&[
                f("Name", Str, "0+"),
                f("TopicId", Uuid, "7+"),
                f("ErrorCode", Int16, "0+"),
                f("ErrorMessage", Str, "1+").null("0+"),
                f("TopicConfigErrorCode", Int16, "5+").tag(0),
                f("NumPartitions", Int32, "5+"),
                f("ReplicationFactor", Int16, "5+"),
                f(
                    "Configs",
                    Structs(&[
                        f("Name", Str, "5+"),
                        f("Value", Str, "5+").null("5+"),
                        f("ReadOnly", Bool, "5+"),
                        f("ConfigSource", Int8, "5+"),
                        f("IsSensitive", Bool, "5+"),
                    ]),
                    "5+",
                )
                .null("5+"),
            ]),
            "0+",
        ),
    ],
);
