//! Counters a user can read: requests, responses, errors by code, reconnects,
//! bytes in and out. Shared by every connection of a client; reading is a
//! relaxed snapshot (each counter is exact, the set is not a transaction).

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use exactly_codec::ErrorCode;

/// Error codes -1..=MAX_TRACKED_CODE get a counter each; others share one.
const MAX_TRACKED_CODE: i16 = 159;
const CODE_SLOTS: usize = (MAX_TRACKED_CODE as usize) + 2;

/// Live counters, updated by connections.
#[derive(Debug)]
pub struct Metrics {
    requests: AtomicU64,
    responses: AtomicU64,
    bytes_out: AtomicU64,
    bytes_in: AtomicU64,
    connects: AtomicU64,
    reconnects: AtomicU64,
    connect_failures: AtomicU64,
    disconnects: AtomicU64,
    timeouts: AtomicU64,
    discarded_responses: AtomicU64,
    throttled: AtomicU64,
    error_codes: [AtomicU64; CODE_SLOTS],
    other_error_codes: AtomicU64,
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            requests: AtomicU64::new(0),
            responses: AtomicU64::new(0),
            bytes_out: AtomicU64::new(0),
            bytes_in: AtomicU64::new(0),
            connects: AtomicU64::new(0),
            reconnects: AtomicU64::new(0),
            connect_failures: AtomicU64::new(0),
            disconnects: AtomicU64::new(0),
            timeouts: AtomicU64::new(0),
            discarded_responses: AtomicU64::new(0),
            throttled: AtomicU64::new(0),
            error_codes: std::array::from_fn(|_| AtomicU64::new(0)),
            other_error_codes: AtomicU64::new(0),
        }
    }
}

/// A point-in-time copy of [`Metrics`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MetricsSnapshot {
    /// Requests written to a socket.
    pub requests: u64,
    /// Responses read from a socket.
    pub responses: u64,
    /// Bytes written, TLS excluded (Kafka frames).
    pub bytes_out: u64,
    /// Bytes read, TLS excluded (Kafka frames).
    pub bytes_in: u64,
    /// Successful connections (handshake done).
    pub connects: u64,
    /// Connections opened to a broker after an earlier one to it was lost.
    pub reconnects: u64,
    /// Connection attempts that failed (TCP, TLS or SASL).
    pub connect_failures: u64,
    /// Connections that ended with requests possibly lost or by error.
    pub disconnects: u64,
    /// Requests that hit `request.timeout.ms`.
    pub timeouts: u64,
    /// Responses whose caller had given up (dropped its future).
    pub discarded_responses: u64,
    /// Responses that asked the client to hold back (KIP-219).
    pub throttled: u64,
    /// Kafka error codes seen, by code (only non-zero counts).
    pub errors_by_code: Vec<(ErrorCode, u64)>,
}

impl Metrics {
    pub(crate) fn request(&self, bytes: usize) {
        self.requests.fetch_add(1, Relaxed);
        self.bytes_out.fetch_add(bytes as u64, Relaxed);
    }
    pub(crate) fn response(&self, bytes: usize) {
        self.responses.fetch_add(1, Relaxed);
        self.bytes_in.fetch_add(bytes as u64, Relaxed);
    }
    pub(crate) fn connected(&self) {
        self.connects.fetch_add(1, Relaxed);
    }
    pub(crate) fn reconnected(&self) {
        self.reconnects.fetch_add(1, Relaxed);
    }
    pub(crate) fn connect_failed(&self) {
        self.connect_failures.fetch_add(1, Relaxed);
    }
    pub(crate) fn disconnected(&self) {
        self.disconnects.fetch_add(1, Relaxed);
    }
    pub(crate) fn timed_out(&self) {
        self.timeouts.fetch_add(1, Relaxed);
    }
    pub(crate) fn discarded(&self) {
        self.discarded_responses.fetch_add(1, Relaxed);
    }
    pub(crate) fn throttle(&self) {
        self.throttled.fetch_add(1, Relaxed);
    }

    /// Counts one Kafka error code. The net layer counts the codes of the
    /// requests it interprets itself (ApiVersions, SASL, Metadata,
    /// FindCoordinator, CreateTopics); the producer and consumer count theirs
    /// through this method so one place holds them all.
    pub fn record_error(&self, code: ErrorCode) {
        let c = code.code();
        if (-1..=MAX_TRACKED_CODE).contains(&c) {
            self.error_codes[(c + 1) as usize].fetch_add(1, Relaxed);
        } else {
            self.other_error_codes.fetch_add(1, Relaxed);
        }
    }

    /// A snapshot of every counter.
    pub fn snapshot(&self) -> MetricsSnapshot {
        let mut errors_by_code: Vec<(ErrorCode, u64)> = self
            .error_codes
            .iter()
            .enumerate()
            .filter_map(|(i, n)| {
                let n = n.load(Relaxed);
                let code = ErrorCode::from_code(i as i16 - 1)?;
                (n > 0).then_some((code, n))
            })
            .collect();
        let other = self.other_error_codes.load(Relaxed);
        if other > 0 {
            errors_by_code.push((ErrorCode::Unknown(i16::MAX), other));
        }
        MetricsSnapshot {
            requests: self.requests.load(Relaxed),
            responses: self.responses.load(Relaxed),
            bytes_out: self.bytes_out.load(Relaxed),
            bytes_in: self.bytes_in.load(Relaxed),
            connects: self.connects.load(Relaxed),
            reconnects: self.reconnects.load(Relaxed),
            connect_failures: self.connect_failures.load(Relaxed),
            disconnects: self.disconnects.load(Relaxed),
            timeouts: self.timeouts.load(Relaxed),
            discarded_responses: self.discarded_responses.load(Relaxed),
            throttled: self.throttled.load(Relaxed),
            errors_by_code,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_codes() {
        let m = Metrics::default();
        m.record_error(ErrorCode::NotLeaderOrFollower);
        m.record_error(ErrorCode::NotLeaderOrFollower);
        m.record_error(ErrorCode::UnknownServerError);
        m.record_error(ErrorCode::Unknown(9000));
        m.request(10);
        m.response(7);
        let s = m.snapshot();
        assert_eq!(
            s.errors_by_code,
            vec![
                (ErrorCode::UnknownServerError, 1),
                (ErrorCode::NotLeaderOrFollower, 2),
                (ErrorCode::Unknown(i16::MAX), 1)
            ]
        );
        assert_eq!(
            (s.requests, s.bytes_out, s.responses, s.bytes_in),
            (1, 10, 1, 7)
        );
    }
}
