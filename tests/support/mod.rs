//! Helpers shared by integration tests.

pub(crate) mod vpcd_card;
