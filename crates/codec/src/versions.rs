//! Version negotiation from an ApiVersions response (KIP-35, KIP-511 for the
//! client software name, KIP-584 for finalized features).
//!
//! For every API the client uses, the version to send is the highest version
//! both sides support. An API the broker does not list, or whose range does
//! not meet ours, is a typed [`CodecError::UnsupportedVersion`] naming the API
//! and both ranges.

use std::collections::HashMap;

use kafka_protocol::messages::{ApiKey, ApiVersionsResponse};
use kafka_protocol::protocol::VersionRange;

use crate::{CodecError, ErrorCode};

/// The finalized feature name that selects the transaction protocol
/// (KIP-890: level 2 enables the v2 flow).
pub const TRANSACTION_VERSION_FEATURE: &str = "transaction.version";

/// What a broker told us in its ApiVersions response.
#[derive(Debug, Clone, Default)]
pub struct VersionTable {
    broker: HashMap<i16, (i16, i16)>,
    finalized: HashMap<String, i16>,
    finalized_epoch: i64,
}

impl VersionTable {
    /// Builds the table from a decoded ApiVersions response. A response with
    /// an error code is an error (the caller may retry at v0 on
    /// UNSUPPORTED_VERSION, as KIP-511 asks).
    pub fn from_response(resp: &ApiVersionsResponse) -> Result<Self, ErrorCode> {
        if let Some(err) = ErrorCode::from_code(resp.error_code) {
            return Err(err);
        }
        let broker = resp
            .api_keys
            .iter()
            .map(|k| (k.api_key, (k.min_version, k.max_version)))
            .collect();
        let finalized = resp
            .finalized_features
            .iter()
            .map(|f| (f.name.to_string(), f.max_version_level))
            .collect();
        Ok(Self {
            broker,
            finalized,
            finalized_epoch: resp.finalized_features_epoch,
        })
    }

    /// The broker's advertised range for `api`, if listed.
    pub fn broker_range(&self, api: ApiKey) -> Option<VersionRange> {
        self.broker
            .get(&(api as i16))
            .map(|&(min, max)| VersionRange { min, max })
    }

    /// The version to use for `api`: the highest common to the broker and
    /// `client` (the range this client implements for that API).
    pub fn pick(&self, api: ApiKey, client: VersionRange) -> Result<i16, CodecError> {
        let unsupported = |(broker_min, broker_max)| CodecError::UnsupportedVersion {
            api,
            broker_min,
            broker_max,
            client_min: client.min,
            client_max: client.max,
        };
        let Some(broker) = self.broker_range(api) else {
            return Err(unsupported((-1, -1)));
        };
        let common = broker.intersect(&client);
        if common.is_empty() {
            return Err(unsupported((broker.min, broker.max)));
        }
        Ok(common.max)
    }

    /// The version to use for `api` given the range this client implements
    /// ([`crate::client_versions`]). An API the client does not implement is
    /// reported as unsupported with a client range of `-1..=-1`.
    pub fn pick_client(&self, api: ApiKey) -> Result<i16, CodecError> {
        let client = crate::client_versions(api).unwrap_or(VersionRange { min: -1, max: -1 });
        self.pick(api, client)
    }

    /// The finalized level of a feature, if the broker reported it.
    pub fn finalized_feature(&self, name: &str) -> Option<i16> {
        self.finalized.get(name).copied()
    }

    /// The epoch of the finalized features (newer wins across brokers).
    pub fn finalized_features_epoch(&self) -> i64 {
        self.finalized_epoch
    }

    /// The finalized `transaction.version` (0 when not reported).
    pub fn transaction_version(&self) -> i16 {
        self.finalized_feature(TRANSACTION_VERSION_FEATURE)
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use kafka_protocol::messages::api_versions_response::{ApiVersion, FinalizedFeatureKey};

    use super::*;

    fn table() -> VersionTable {
        let resp = ApiVersionsResponse::default()
            .with_api_keys(vec![
                ApiVersion::default()
                    .with_api_key(ApiKey::Produce as i16)
                    .with_min_version(3)
                    .with_max_version(13),
                ApiVersion::default()
                    .with_api_key(ApiKey::EndTxn as i16)
                    .with_min_version(0)
                    .with_max_version(5),
            ])
            .with_finalized_features(vec![FinalizedFeatureKey::default()
                .with_name("transaction.version".into())
                .with_max_version_level(2)
                .with_min_version_level(2)]);
        VersionTable::from_response(&resp).unwrap()
    }

    #[test]
    fn picks_max_common() {
        let t = table();
        assert_eq!(
            t.pick(ApiKey::Produce, VersionRange { min: 3, max: 11 })
                .unwrap(),
            11
        );
        assert_eq!(
            t.pick(ApiKey::EndTxn, VersionRange { min: 0, max: 9 })
                .unwrap(),
            5
        );
        assert_eq!(t.transaction_version(), 2);
        assert_eq!(t.pick_client(ApiKey::Produce).unwrap(), 12);
        assert_eq!(t.pick_client(ApiKey::EndTxn).unwrap(), 5);
        assert!(matches!(
            t.pick_client(ApiKey::AlterConfigs),
            Err(CodecError::UnsupportedVersion { client_max: -1, .. })
        ));
    }

    #[test]
    fn unsupported_names_api_and_ranges() {
        let t = table();
        let e = t
            .pick(ApiKey::Produce, VersionRange { min: 14, max: 15 })
            .unwrap_err();
        assert_eq!(
            e,
            CodecError::UnsupportedVersion {
                api: ApiKey::Produce,
                broker_min: 3,
                broker_max: 13,
                client_min: 14,
                client_max: 15
            }
        );
        assert!(e.to_string().contains("Produce"));
        assert!(matches!(
            t.pick(ApiKey::Fetch, VersionRange { min: 0, max: 17 }),
            Err(CodecError::UnsupportedVersion { broker_max: -1, .. })
        ));
    }
}
