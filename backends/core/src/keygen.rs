//! placeholder
/// placeholder
pub trait KeyGen {}
