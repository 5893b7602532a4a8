//! Planted bugs no rule catches yet: runnable (`sim run --broker NAME`), kept out of the
//! campaign's [`registry`](super::registry) until the rule that should catch each one
//! exists. Moving one into the registry is one [`Mutant`] entry
//! with its rule, in its component's file.
//!
//! [`Mutant`]: super::Mutant

use super::Component;
use crate::cluster::runner::Nodes;

/// A planted bug every current rule lets through.
#[derive(Clone, Copy)]
pub struct BlindSpot {
    pub name: &'static str,
    pub component: Component,
    pub description: &'static str,
    /// Where it was tried: every seed of this scenario passed (see the module doc).
    pub scenario: &'static str,
    /// The rule of issue 8 that should catch it.
    pub awaits: &'static str,
    pub nodes: fn() -> Nodes,
}

/// None known today: every planted bug tried so far is caught, and has moved into the
/// registry. A bug found to pass every rule is listed here until its rule exists.
pub fn blind_spots() -> Vec<BlindSpot> {
    Vec::new()
}
