//! Transaction APIs (KIP-98; KIP-360 epoch bumps, KIP-447 group metadata in
//! TxnOffsetCommit, KIP-664 DescribeProducers and DescribeTransactions,
//! KIP-890 producer id and epoch in EndTxn responses and batched
//! AddPartitionsToTxn).

use crate::guard::schema::Ty::*;
use crate::guard::schema::{f, message, Field, Message};

pub(super) const INIT_PRODUCER_ID_REQUEST: Message = message(
    "2+",
    &[
        f("TransactionalId", Str, "0+").null("0+"),
        f("TransactionTimeoutMs", Int32, "0+"),
        f("ProducerId", Int64, "3+"),
        f("ProducerEpoch", Int16, "3+"),
    ],
);

pub(super) const INIT_PRODUCER_ID_RESPONSE: Message = message(
    "2+",
    &[
        f("ThrottleTimeMs", Int32, "0+"),
        f("ErrorCode", Int16, "0+"),
        f("ProducerId", Int64, "0+"),
        f("ProducerEpoch", Int16, "0+"),
        f("OngoingTxnProducerId", Int64, "6+"),
        f("OngoingTxnProducerEpoch", Int16, "6+"),
    ],
);

/// A topic and its partitions, as AddPartitionsToTxn requests name them.
const ADD_PARTITIONS_TOPIC: &[Field] =
    &[f("Name", Str, "0+"), f("Partitions", Array(&Int32), "0+")];

pub(super) const ADD_PARTITIONS_TO_TXN_REQUEST: Message = message(
    "3+",
    &[
        f(
            "Transactions",
            Structs(&[
                f("TransactionalId", Str, "4+"),
                f("ProducerId", Int64, "4+"),
                f("ProducerEpoch", Int16, "4+"),
                f("VerifyOnly", Bool, "4+"),
                f("Topics", Structs(ADD_PARTITIONS_TOPIC), "4+"),
            ]),
            "4+",
        ),
        f("V3AndBelowTransactionalId", Str, "0-3"),
        f("V3AndBelowProducerId", Int64, "0-3"),
        f("V3AndBelowProducerEpoch", Int16, "0-3"),
        f("V3AndBelowTopics", Structs(ADD_PARTITIONS_TOPIC), "0-3"),
    ],
);

/// A topic's per-partition results in AddPartitionsToTxn responses.
const ADD_PARTITIONS_TOPIC_RESULT: &[Field] = &[
    f("Name", Str, "0+"),
    f(
        "ResultsByPartition",
        Structs(&[
            f("PartitionIndex", Int32, "0+"),
            f("PartitionErrorCode", Int16, "0+"),
        ]),
        "0+",
    ),
];

pub(super) const ADD_PARTITIONS_TO_TXN_RESPONSE: Message = message(
    "3+",
    &[
        f("ThrottleTimeMs", Int32, "0+"),
        f("ErrorCode", Int16, "4+"),
        f(
            "ResultsByTransaction",
            Structs(&[
                f("TransactionalId", Str, "4+"),
                f("TopicResults", Structs(ADD_PARTITIONS_TOPIC_RESULT), "4+"),
            ]),
            "4+",
        ),
        f(
            "ResultsByTopicV3AndBelow",
            Structs(ADD_PARTITIONS_TOPIC_RESULT),
            "0-3",
        ),
    ],
);

pub(super) const ADD_OFFSETS_TO_TXN_REQUEST: Message = message(
    "3+",
    &[
        f("TransactionalId", Str, "0+"),
        f("ProducerId", Int64, "0+"),
        f("ProducerEpoch", Int16, "0+"),
        f("GroupId", Str, "0+"),
    ],
);

pub(super) const ADD_OFFSETS_TO_TXN_RESPONSE: Message = message(
    "3+",
    &[
        f("ThrottleTimeMs", Int32, "0+"),
        f("ErrorCode", Int16, "0+"),
    ],
);

pub(super) const END_TXN_REQUEST: Message = message(
    "3+",
    &[
        f("TransactionalId", Str, "0+"),
        f("ProducerId", Int64, "0+"),
        f("ProducerEpoch", Int16, "0+"),
        f("Committed", Bool, "0+"),
    ],
);

pub(super) const END_TXN_RESPONSE: Message = message(
    "3+",
    &[
        f("ThrottleTimeMs", Int32, "0+"),
        f("ErrorCode", Int16, "0+"),
        f("ProducerId", Int64, "5+"),
        f("ProducerEpoch", Int16, "5+"),
    ],
);

pub(super) const TXN_OFFSET_COMMIT_REQUEST: Message = message(
    "3+",
    &[
        f("TransactionalId", Str, "0+"),
        f("GroupId", Str, "0+"),
        f("ProducerId", Int64, "0+"),
        f("ProducerEpoch", Int16, "0+"),
        f("GenerationId", Int32, "3+"),
        f("MemberId", Str, "3+"),
        f("GroupInstanceId", Str, "3+").null("3+"),
        f(
            "Topics",
            Structs(&[
                f("Name", Str, "0+"),
                f(
                    "Partitions",
                    Structs(&[
                        f("PartitionIndex", Int32, "0+"),
                        f("CommittedOffset", Int64, "0+"),
                        f("CommittedLeaderEpoch", Int32, "2+"),
                        f("CommittedMetadata", Str, "0+").null("0+"),
                    ]),
                    "0+",
                ),
            ]),
            "0+",
        ),
    ],
);

pub(super) const TXN_OFFSET_COMMIT_RESPONSE: Message = message(
    "3+",
    &[
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

pub(super) const DESCRIBE_PRODUCERS_REQUEST: Message = message(
    "0+",
    &[f(
        "Topics",
        Structs(&[
            f("Name", Str, "0+"),
            f("PartitionIndexes", Array(&Int32), "0+"),
        ]),
        "0+",
    )],
);

pub(super) const DESCRIBE_PRODUCERS_RESPONSE: Message = message(
    "0+",
    &[
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
                        f("ErrorMessage", Str, "0+").null("0+"),
                        f(
                            "ActiveProducers",
                            Structs(&[
                                f("ProducerId", Int64, "0+"),
                                f("ProducerEpoch", Int32, "0+"),
                                f("LastSequence", Int32, "0+"),
                                f("LastTimestamp", Int64, "0+"),
                                f("CoordinatorEpoch", Int32, "0+"),
                                f("CurrentTxnStartOffset", Int64, "0+"),
                            ]),
                            "0+",
                        ),
                    ]),
                    "0+",
                ),
            ]),
            "0+",
        ),
    ],
);

pub(super) const DESCRIBE_TRANSACTIONS_REQUEST: Message =
    message("0+", &[f("TransactionalIds", Array(&Str), "0+")]);

pub(super) const DESCRIBE_TRANSACTIONS_RESPONSE: Message = message(
    "0+",
    &[
        f("ThrottleTimeMs", Int32, "0+"),
        f(
            "TransactionStates",
            Structs(&[
                f("ErrorCode", Int16, "0+"),
                f("TransactionalId", Str, "0+"),
                f("TransactionState", Str, "0+"),
                f("TransactionTimeoutMs", Int32, "0+"),
                f("TransactionStartTimeMs", Int64, "0+"),
                f("ProducerId", Int64, "0+"),
                f("ProducerEpoch", Int16, "0+"),
                f(
                    "Topics",
                    Structs(&[f("Topic", Str, "0+"), f("Partitions", Array(&Int32), "0+")]),
                    "0+",
                ),
            ]),
            "0+",
        ),
    ],
);
