//! placeholder
/// placeholder
pub trait Provisioner {}
