//! Frame decoding: `FrameReader` over an arbitrary (decrypted) packet payload.
//!
//! Every frame that parses is emitted again, alone and with and without its length, and must
//! parse back to the same frame (ack frames compare by value: largest, delay and ranges, since
//! a varint may be spelled in more than one way). Emitting into a buffer one byte short of
//! `buffer_len` must be refused. The whole run of frames, re-emitted in sequence, must parse
//! back to the same sequence.
#![no_main]

use lanewire_core::wire::{Frame, FrameReader, Writer};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut frames = Vec::new();
    for f in FrameReader::new(data) {
        match f {
            Ok(f) => frames.push(f),
            Err(_) => break,
        }
    }
    assert!(frames.len() <= data.len(), "a frame consumed no bytes");
    // One scratch buffer per input: every frame's emission fits in what it was parsed from,
    // plus a little for a varint spelled shorter on the wire than canonical (never longer).
    let mut scratch = vec![0u8; data.len() + 16];
    let mut all = Vec::with_capacity(data.len() + frames.len());
    for f in &frames {
        all.extend_from_slice(check_frame(f, &mut scratch));
    }
    let mut back = FrameReader::new(&all);
    for f in &frames {
        let b = back.next().expect("as many frames").expect("re-emitted frames parse");
        assert!(same(f, &b), "{f:?} != {b:?}");
    }
    assert!(back.next().is_none(), "more frames re-parsed than emitted");
});

/// Emits `f` every way and checks each parses back; returns its emission with length.
fn check_frame<'s>(f: &Frame<'_>, scratch: &'s mut [u8]) -> &'s [u8] {
    if let Frame::Ack(a) = f {
        let mut count = 0;
        let mut prev_low: Option<u64> = None;
        for (low, high) in a.ranges() {
            assert!(low <= high);
            match prev_low {
                None => assert_eq!(high, a.largest),
                Some(p) => assert!(high + 2 <= p, "ack ranges overlap or touch"),
            }
            prev_low = Some(low);
            count += 1;
        }
        assert_eq!(count, a.range_count());
    }
    let n = f.buffer_len();
    assert!(n <= scratch.len(), "buffer_len {n} exceeds the bytes the frame came from");
    {
        let mut w = Writer::new(&mut scratch[..n]);
        f.emit_last(&mut w).expect("the last frame needs no more room than buffer_len");
        let m = w.len();
        parses_to(&scratch[..m], f);
    }
    if n > 0 {
        let mut w = Writer::new(&mut scratch[..n - 1]);
        assert!(f.emit(&mut w).is_none(), "emit into a short buffer");
    }
    let mut w = Writer::new(&mut scratch[..n]);
    f.emit(&mut w).expect("buffer_len is enough");
    assert_eq!(w.len(), n, "buffer_len is exact");
    parses_to(&scratch[..n], f);
    &scratch[..n]
}

fn parses_to(bytes: &[u8], f: &Frame<'_>) {
    let mut r = FrameReader::new(bytes);
    let back = r.next().expect("one frame").expect("re-emitted frame parses");
    assert!(same(&back, f), "{back:?} != {f:?}");
    assert!(r.next().is_none(), "one frame re-emitted, more parsed");
}

fn same(a: &Frame<'_>, b: &Frame<'_>) -> bool {
    match (a, b) {
        (Frame::Ack(x), Frame::Ack(y)) => {
            x.largest == y.largest && x.delay_us == y.delay_us && x.ranges().eq(y.ranges())
        }
        _ => a == b,
    }
}
