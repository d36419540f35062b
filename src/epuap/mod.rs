//! ePUAP's SOAP services: message types ([`soap`]), WS-Security ([`wssec`]) and the HTTP
//! client ([`client`]). The emulator reuses `soap` and `wssec`, so both sides of the
//! contract are one implementation.

pub mod client;
pub mod delivery;
pub mod soap;
pub mod wssec;

pub use client::{ClientSettings, EpuapClient, EpuapError};
