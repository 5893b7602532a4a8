//! Planted bugs: deliberate faults in the consumer's in-memory logic, which no tamper
//! at the node boundary can reach, for the simulator's mutant campaign to prove that
//! its checker catches them. Compiled only with the `planted-bugs` feature (enabled by
//! rmq-sim, never by rmq-real); a consumer runs one only when `plant` is called, so
//! even a build with the feature behaves as the reference until then. Without the
//! feature, the hook below is the identity and costs nothing.

use super::{ConsumeOrderlyStatus, PushConsumer};

/// A bug a consumer can be built with.
#[cfg(feature = "planted-bugs")]
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum PlantedBug {
    /// The orderly consume service takes SUSPEND_CURRENT_QUEUE_A_MOMENT for SUCCESS: it
    /// commits past a failed message instead of retrying it (issue: "orderly consumer
    /// skips a failed message").
    OrderlySkipsFailedMessage,
}

#[cfg(feature = "planted-bugs")]
impl PushConsumer {
    /// Runs this consumer with `bug` from now on.
    pub fn plant(&mut self, bug: PlantedBug) {
        self.planted = Some(bug);
    }

    /// The orderly listener's answer as the consume service (with its bug) takes it.
    pub(super) fn planted_orderly_status(
        &self,
        status: ConsumeOrderlyStatus,
    ) -> ConsumeOrderlyStatus {
        match self.planted {
            Some(PlantedBug::OrderlySkipsFailedMessage) => ConsumeOrderlyStatus::Success,
            None => status,
        }
    }
}

#[cfg(not(feature = "planted-bugs"))]
impl PushConsumer {
    /// The orderly listener's answer, as given: no bug can be planted.
    #[inline(always)]
    pub(super) fn planted_orderly_status(
        &self,
        status: ConsumeOrderlyStatus,
    ) -> ConsumeOrderlyStatus {
        status
    }
}
