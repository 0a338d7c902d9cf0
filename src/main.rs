//! keystation: identities on hardware keys.
fn main() {}
