//! Property: every schedule the public strategy draws (any seed, any fault
//! knobs in its ranges) keeps exactly-once on the simulated broker.

#![cfg(feature = "proptest")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use exactly_testkit::sim::Sim;
use exactly_testkit::strategies::schedule;
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn any_drawn_schedule_keeps_exactly_once((seed, faults) in schedule()) {
        let mut sim = Sim::with_faults(seed, faults);
        let r = sim.run();
        prop_assert!(r.is_ok(), "seed {seed} {faults:?}: {r:?}");
    }
}
