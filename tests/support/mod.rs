//! Helpers shared by integration tests.

pub(crate) mod kube_api;
pub(crate) mod nginx;
pub(crate) mod test_pki;
pub(crate) mod vpcd_card;
