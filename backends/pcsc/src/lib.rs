//! PC/SC transport.
