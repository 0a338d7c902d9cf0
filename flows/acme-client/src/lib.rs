//! keystation-acme-client: an ACME (RFC 8555) client.
