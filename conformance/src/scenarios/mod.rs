//! The scenarios, one async function per guarantee, grouped by concern.
//! Each takes the [`Bus`](crate::Bus) of one test and its
//! [`Features`](crate::Features); [`SCENARIOS`](crate::SCENARIOS) lists
//! them with the claims they need.

pub mod causality;
pub mod delivery;
pub mod failures;
pub mod lifecycle;
pub mod ordering;
pub mod publishing;
pub mod recovery;
