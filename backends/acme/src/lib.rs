//! keystation-acme: ACME (RFC 8555) without I/O.
