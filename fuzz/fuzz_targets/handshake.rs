//! The crypto blobs of the handshake, on both sides.
//!
//! Input: `selector (1 B) | id (4 B, LE) | crypto blob`. Bit 0 of the selector picks the side,
//! the other bits the [`Variant`] (certificates, trust, encryption policy) of both sides.
//!
//! - Server side: a fresh listening server, asked for a challenge first so the cookie is valid,
//!   receives a connect request from client id `id` whose crypto offer is the blob; it accepts
//!   whatever connection that creates, sees the request retransmitted, and runs its timers.
//! - Client side: a client of the variant runs to the point where it waits for the connect OK
//!   (the challenge reply is played by hand), then receives a connect OK from server id `id`
//!   whose crypto answer is the blob, twice.
//!
//! The handshake functions are crate-private in the core, so everything goes through
//! `Endpoint`'s public API. The seed corpus holds real offers and answers of every variant
//! (made by `gen_corpus` with this harness), so mutations start from blobs whose signatures,
//! certificates and key shares verify.
#![no_main]

use lanewire_fuzz::{Input, Variant, WaitingClient, server_receives_offer};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    let selector = input.u8();
    let (_, variant) = Variant::pick(selector >> 1);
    let id = input.u32().max(1);
    let blob = input.rest();
    if selector & 1 == 0 {
        server_receives_offer(variant, id, blob);
    } else {
        WaitingClient::new(variant).receive_answer(id, blob);
    }
});
