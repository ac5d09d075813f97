//! Administration APIs the `exactly-admin` crate sends: topics (DeleteTopics
//! with KIP-516 topic ids, CreatePartitions, KIP-195), configs
//! (DescribeConfigs, KIP-226 synonyms), the cluster (DescribeCluster,
//! KIP-700), groups (ListGroups with KIP-518 state filters, DescribeGroups,
//! OffsetDelete, KIP-496) and transactions (ListTransactions, KIP-664;
//! WriteTxnMarkers, the marker write `kafka-transactions.sh abort` sends).

use crate::guard::schema::Ty::*;
use crate::guard::schema::{f, message, Message};

pub(super) const DELETE_TOPICS_REQUEST: Message = message(
    "4+",
    &[
        f(
            "Topics",
            Structs(&[f("Name", Str, "6+").null("6+"), f("TopicId", Uuid, "6+")]),
            "6+",
        ),
        f("TopicNames", Array(&Str), "0-5"),
        f("TimeoutMs", Int32, "0+"),
    ],
);

pub(super) const DELETE_TOPICS_RESPONSE: Message = message(
    "4+",
    &[
        f("ThrottleTimeMs", Int32, "1+"),
        f(
            "Responses",
            Structs(&[
                f("Name", Str, "0+").null("6+"),
                f("TopicId", Uuid, "6+"),
                f("ErrorCode", Int16, "0+"),
                f("ErrorMessage", Str, "5+").null("5+"),
            ]),
            "0+",
        ),
    ],
);

pub(super) const CREATE_PARTITIONS_REQUEST: Message = message(
    "2+",
    &[
        f(
            "Topics",
            Structs(&[
                f("Name", Str, "0+"),
                f("Count", Int32, "0+"),
                f(
                    "Assignments",
                    Structs(&[f("BrokerIds", Array(&Int32), "0+")]),
                    "0+",
                )
                .null("0+"),
            ]),
            "0+",
        ),
        f("TimeoutMs", Int32, "0+"),
        f("ValidateOnly", Bool, "0+"),
    ],
);

pub(super) const CREATE_PARTITIONS_RESPONSE: Message = message(
    "2+",
    &[
        f("ThrottleTimeMs", Int32, "0+"),
        f(
            "Results",
            Structs(&[
                f("Name", Str, "0+"),
                f("ErrorCode", Int16, "0+"),
                f("ErrorMessage", Str, "0+").null("0+"),
            ]),
            "0+",
        ),
    ],
);

pub(super) const DESCRIBE_CONFIGS_REQUEST: Message = message(
    "4+",
    &[
        f(
            "Resources",
            Structs(&[
                f("ResourceType", Int8, "0+"),
                f("ResourceName", Str, "0+"),
                f("ConfigurationKeys", Array(&Str), "0+").null("0+"),
            ]),
            "0+",
        ),
        f("IncludeSynonyms", Bool, "1+"),
        f("IncludeDocumentation", Bool, "3+"),
    ],
);

pub(super) const DESCRIBE_CONFIGS_RESPONSE: Message = message(
    "4+",
    &[
        f("ThrottleTimeMs", Int32, "0+"),
        f(
            "Results",
            Structs(&[
                f("ErrorCode", Int16, "0+"),
                f("ErrorMessage", Str, "0+").null("0+"),
                f("ResourceType", Int8, "0+"),
                f("ResourceName", Str, "0+"),
                f(
                    "Configs",
                    Structs(&[
                        f("Name", Str, "0+"),
                        f("Value", Str, "0+").null("0+"),
                        f("ReadOnly", Bool, "0+"),
                        f("ConfigSource", Int8, "1+"),
                        f("IsSensitive", Bool, "0+"),
                        f(
                            "Synonyms",
                            Structs(&[
                                f("Name", Str, "1+"),
                                f("Value", Str, "1+").null("0+"),
                                f("Source", Int8, "1+"),
                            ]),
                            "1+",
                        ),
                        f("ConfigType", Int8, "3+"),
                        f("Documentation", Str, "3+").null("0+"),
                    ]),
                    "0+",
                ),
            ]),
            "0+",
        ),
    ],
);

pub(super) const DESCRIBE_CLUSTER_REQUEST: Message = message(
    "0+",
    &[
        f("IncludeClusterAuthorizedOperations", Bool, "0+"),
        f("EndpointType", Int8, "1+"),
        f("IncludeFencedBrokers", Bool, "2+"),
    ],
);

pub(super) const DESCRIBE_CLUSTER_RESPONSE: Message = message(
    "0+",
    &[
        f("ThrottleTimeMs", Int32, "0+"),
        f("ErrorCode", Int16, "0+"),
        f("ErrorMessage", Str, "0+").null("0+"),
        f("EndpointType", Int8, "1+"),
        f("ClusterId", Str, "0+"),
        f("ControllerId", Int32, "0+"),
        f(
            "Brokers",
            Structs(&[
                f("BrokerId", Int32, "0+"),
                f("Host", Str, "0+"),
                f("Port", Int32, "0+"),
                f("Rack", Str, "0+").null("0+"),
                f("IsFenced", Bool, "2+"),
            ]),
            "0+",
        ),
        f("ClusterAuthorizedOperations", Int32, "0+"),
    ],
);

pub(super) const LIST_GROUPS_REQUEST: Message = message(
    "3+",
    &[
        f("StatesFilter", Array(&Str), "4+"),
        f("TypesFilter", Array(&Str), "5+"),
    ],
);

pub(super) const LIST_GROUPS_RESPONSE: Message = message(
    "3+",
    &[
        f("ThrottleTimeMs", Int32, "1+"),
        f("ErrorCode", Int16, "0+"),
        f(
            "Groups",
            Structs(&[
                f("GroupId", Str, "0+"),
                f("ProtocolType", Str, "0+"),
                f("GroupState", Str, "4+"),
                f("GroupType", Str, "5+"),
            ]),
            "0+",
        ),
    ],
);

pub(super) const DESCRIBE_GROUPS_REQUEST: Message = message(
    "5+",
    &[
        f("Groups", Array(&Str), "0+"),
        f("IncludeAuthorizedOperations", Bool, "3+"),
    ],
);

pub(super) const DESCRIBE_GROUPS_RESPONSE: Message = message(
    "5+",
    &[
        f("ThrottleTimeMs", Int32, "1+"),
        f(
            "Groups",
            Structs(&[
                f("ErrorCode", Int16, "0+"),
                f("ErrorMessage", Str, "6+").null("6+"),
                f("GroupId", Str, "0+"),
                f("GroupState", Str, "0+"),
                f("ProtocolType", Str, "0+"),
                f("ProtocolData", Str, "0+"),
                f(
                    "Members",
                    Structs(&[
                        f("MemberId", Str, "0+"),
                        f("GroupInstanceId", Str, "4+").null("4+"),
                        f("ClientId", Str, "0+"),
                        f("ClientHost", Str, "0+"),
                        f("MemberMetadata", Bytes, "0+"),
                        f("MemberAssignment", Bytes, "0+"),
                    ]),
                    "0+",
                ),
                f("AuthorizedOperations", Int32, "3+"),
            ]),
            "0+",
        ),
    ],
);

pub(super) const OFFSET_DELETE_REQUEST: Message = message(
    "none",
    &[
        f("GroupId", Str, "0+"),
        f(
            "Topics",
            Structs(&[
                f("Name", Str, "0+"),
                f(
                    "Partitions",
                    Structs(&[f("PartitionIndex", Int32, "0+")]),
                    "0+",
                ),
            ]),
            "0+",
        ),
    ],
);

pub(super) const OFFSET_DELETE_RESPONSE: Message = message(
    "none",
    &[
        f("ErrorCode", Int16, "0+"),
        f("ThrottleTimeMs", Int32, "0+"),
        f(
            "Topics",
            Structs(&[
                f("Name", Str, "0+"),
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

pub(super) const LIST_TRANSACTIONS_REQUEST: Message = message(
    "0+",
    &[
        f("StateFilters", Array(&Str), "0+"),
        f("ProducerIdFilters", Array(&Int64), "0+"),
        f("DurationFilter", Int64, "1+"),
        f("TransactionalIdPattern", Str, "2+").null("2+"),
    ],
);

pub(super) const LIST_TRANSACTIONS_RESPONSE: Message = message(
    "0+",
    &[
        f("ThrottleTimeMs", Int32, "0+"),
        f("ErrorCode", Int16, "0+"),
        f("UnknownStateFilters", Array(&Str), "0+"),
        f(
            "TransactionStates",
            Structs(&[
                f("TransactionalId", Str, "0+"),
                f("ProducerId", Int64, "0+"),
                f("TransactionState", Str, "0+"),
            ]),
            "0+",
        ),
    ],
);

pub(super) const WRITE_TXN_MARKERS_REQUEST: Message = message(
    "1+",
    &[f(
        "Markers",
        Structs(&[
            f("ProducerId", Int64, "0+"),
            f("ProducerEpoch", Int16, "0+"),
            f("TransactionResult", Bool, "0+"),
            f(
                "Topics",
                Structs(&[
                    f("Name", Str, "0+"),
                    f("PartitionIndexes", Array(&Int32), "0+"),
                ]),
                "0+",
            ),
            f("CoordinatorEpoch", Int32, "0+"),
            f("TransactionVersion", Int8, "2+"),
        ]),
        "0+",
    )],
);

pub(super) const WRITE_TXN_MARKERS_RESPONSE: Message = message(
    "1+",
    &[f(
        "Markers",
        Structs(&[
            f("ProducerId", Int64, "0+"),
            f(
                "Topics",
                Structs(&[
                    f("Name", Str, "0+"),
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
        ]),
        "0+",
    )],
);
