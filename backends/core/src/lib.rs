//! keystation-core: the parts every keystation backend shares.
//!
//! This crate does no I/O and starts no runtime. It defines
//!
//! * the [`Card`] transport trait that PC/SC, the software card and test doubles implement,
//!   with [`Transaction`] as its RAII guard;
//! * the ISO/IEC 7816-4 APDU layer: [`Command`] encoding (short and extended length),
//!   [`Response`] decoding, [`StatusWord`]s with names and PIN-retry decoding, and
//!   [`Channel`], which does command chaining, the GET RESPONSE loop (`61xx`) and the
//!   wrong-Le re-send (`6Cxx`) once for every applet client;
//! * BER-TLV reading and writing ([`tlv`]);
//! * key and algorithm types with their public encodings ([`key`]) and zeroizing secret
//!   containers ([`secret`]);
//! * the [`KeyGen`] and [`Provisioner`] traits that backends implement.
//!
//! Every fallible function returns this crate's single [`Error`] enum.

pub mod apdu;
pub mod base64;
mod card;
mod channel;
mod error;
pub mod key;
pub mod keygen;
pub mod provisioner;
pub mod secret;
mod status;
pub mod tlv;

pub use apdu::{Command, Le, Response};
pub use card::{Card, CountingCard, Transaction};
pub use channel::{Channel, ChannelOptions};
pub use error::{Error, KeyFault, TlvFault, TransportFailure, describe_chain};
pub use keygen::KeyGen;
pub use provisioner::Provisioner;
pub use secret::{SecretBytes, SecretKey};
pub use status::StatusWord;
