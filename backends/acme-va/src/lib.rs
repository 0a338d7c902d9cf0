//! keystation-acme-va: ACME's validation authority.
