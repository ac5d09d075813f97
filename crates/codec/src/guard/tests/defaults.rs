//! Default-valued messages as `kafka-protocol` encodes them pass the guard.

use super::{check, every_message, frame, kp_encode, Kind};
use crate::guard::Direction;
use crate::{default_request, default_response};

#[test]
fn default_messages_encoded_by_kafka_protocol_pass() {
    for (api, version, direction) in every_message() {
        let kind = match direction {
            Direction::Request => Kind::Request(default_request(api).unwrap()),
            Direction::Response => Kind::Response(default_response(api).unwrap()),
        };
        let body = kp_encode(&kind, version);
        let whole = frame(api, version, direction, &body);
        if let Err(e) = check(api, version, direction, &whole) {
            panic!("{api:?} v{version} {direction:?}: {e}");
        }
    }
}
