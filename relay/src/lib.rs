//! quiver's sync relay: rooms of sites that exchange ops (see [`quiver::sync`]).
//!
//! A site says hello to a room with a token ([`token`]), gets the room's ops it lacks
//! from the room's log ([`log`]), pushes its own, which the relay logs before acking
//! and fans out to the room's other sessions ([`hub`]). [`session`] is that protocol,
//! whatever carries the frames; [`transport`] carries them over WebTransport, or over
//! WebSocket where UDP is blocked, with the certificate of [`cert`].

pub mod cert;
pub mod hub;
pub mod log;
pub mod session;
pub mod token;
pub mod transport;
