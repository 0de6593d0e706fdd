//! One UDP socket: binding (IPv4, IPv6-only or dual-stack), batched receive (`recvmmsg` and GRO
//! through `quinn-udp` on Linux, one datagram per call elsewhere), batched send (GSO where the
//! kernel has it), and the address normalisation every address crossing into the core gets.
//!
//! Invariant: every address handed to the core is canonical ([`canonical`]): an IPv4 peer of
//! a dual-stack socket is `a.b.c.d:port`, never `[::ffff:a.b.c.d]:port`. The socket maps it
//! back when sending ([`UdpSock::send`]).

use std::io::{self, IoSliceMut};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV6};
use std::sync::Mutex;

use quinn_udp::{RecvMeta, Transmit, UdpSocketState};
use socket2::{Domain, Protocol, Socket, Type};

/// Kernel socket buffers we ask for. At 4 MiB a receive queue absorbs ~3,000 full packets
/// (about 30 ms at 100 MB/s), enough to ride out an IO thread that was descheduled for a
/// time slice. Linux caps the request at `net.core.rmem_max` / `wmem_max` (silently).
const SOCKET_BUFFER: usize = 4 << 20;

/// Largest datagram a peer may send us that we read whole; anything longer is junk (the core
/// never sends more than [`lanewire_core::MAX_DATAGRAM`]) and is read truncated, then refused
/// by the core's decoders.
const MAX_RECV_DATAGRAM: usize = 2048;

/// The largest GSO send, in bytes: a UDP datagram (which is what the kernel builds before
/// segmenting) carries at most 65,507 bytes of payload over IPv4; stay a little under.
pub(crate) const MAX_GSO_BYTES: usize = 65_000;

/// The address the core should see for `addr`: IPv4-mapped IPv6 addresses become IPv4.
pub(crate) fn canonical(addr: SocketAddr) -> SocketAddr {
    match addr {
        SocketAddr::V6(a) => match a.ip().to_ipv4_mapped() {
            Some(v4) => SocketAddr::new(IpAddr::V4(v4), a.port()),
            None => addr,
        },
        SocketAddr::V4(_) => addr,
    }
}

/// A bound UDP socket with its batching state.
#[derive(Debug)]
pub(crate) struct UdpSock {
    io: std::net::UdpSocket,
    /// A second handle on the same socket, for readiness registration. Interest changes
    /// (writability only while a send is blocked) need `&mut`, which the shared `io` cannot
    /// give; the duplicate lets the IO thread change interest while others send.
    watch: Mutex<mio::net::UdpSocket>,
    state: UdpSocketState,
    local: SocketAddr,
    /// IPv6 socket: IPv4 destinations must be written as IPv4-mapped addresses.
    v6: bool,
    /// Dual-stack (IPv6 socket that also takes IPv4).
    dual_stack: bool,
}

impl UdpSock {
    /// Binds `addr`. `[::]` is dual-stack; `[::ffff:0.0.0.0]` means "any IPv4 address" (as in
    /// the reference) and binds `0.0.0.0`; any other IPv6 address is IPv6 only. Port 0 picks a
    /// free port ([`UdpSock::local_addr`] reports it).
    pub(crate) fn bind(addr: SocketAddr) -> io::Result<UdpSock> {
        Self::bind_inner(addr, false)
    }

    /// Binds an IPv6 address without dual-stack, even for `[::]`.
    pub(crate) fn bind_v6_only(addr: SocketAddr) -> io::Result<UdpSock> {
        Self::bind_inner(addr, true)
    }

    fn bind_inner(addr: SocketAddr, v6_only: bool) -> io::Result<UdpSock> {
        let addr = match addr {
            SocketAddr::V6(a) if *a.ip() == Ipv4Addr::UNSPECIFIED.to_ipv6_mapped() => {
                SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), a.port())
            }
            a => canonical(a),
        };
        let v6 = addr.is_ipv6();
        let dual_stack = v6 && !v6_only && addr.ip().is_unspecified();
        let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
        if v6 {
            socket.set_only_v6(!dual_stack)?;
        }
        socket.set_nonblocking(true)?;
        // Best effort: a smaller buffer only costs throughput under bursts.
        let _ = socket.set_recv_buffer_size(SOCKET_BUFFER);
        let _ = socket.set_send_buffer_size(SOCKET_BUFFER);
        socket.bind(&addr.into())?;
        let std_socket: std::net::UdpSocket = socket.into();
        let state = UdpSocketState::new((&std_socket).into())?;
        let local = std_socket.local_addr()?;
        let watch = Mutex::new(mio::net::UdpSocket::from_std(std_socket.try_clone()?));
        Ok(UdpSock { io: std_socket, watch, state, local, v6, dual_stack })
    }

    /// The bound address (with the port the OS picked for port 0).
    pub(crate) fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// True for a dual-stack socket.
    pub(crate) fn is_dual_stack(&self) -> bool {
        self.dual_stack
    }

    /// Registers for readability with `token`, or re-registers (`writable`: also writability,
    /// wanted only while a send is blocked: loopback reports it after every send otherwise).
    pub(crate) fn register(
        &self,
        registry: &mio::Registry,
        token: mio::Token,
        writable: bool,
        first: bool,
    ) -> io::Result<()> {
        let mut w = self.watch.lock().unwrap_or_else(|p| p.into_inner());
        let interest = if writable {
            mio::Interest::READABLE | mio::Interest::WRITABLE
        } else {
            mio::Interest::READABLE
        };
        if first {
            registry.register(&mut *w, token, interest)
        } else {
            registry.reregister(&mut *w, token, interest)
        }
    }

    /// Stops readiness events for this socket.
    pub(crate) fn deregister(&self, registry: &mio::Registry) {
        let mut w = self.watch.lock().unwrap_or_else(|p| p.into_inner());
        let _ = registry.deregister(&mut *w);
    }

    /// How many equal-sized datagrams one [`UdpSock::send`] may carry (1 without GSO).
    pub(crate) fn max_segments(&self) -> usize {
        self.state.max_gso_segments().max(1)
    }

    /// Sends `contents` to `to`: one datagram, or with `segment` several of that size (the
    /// last may be shorter) in one system call.
    pub(crate) fn send(
        &self,
        to: SocketAddr,
        contents: &[u8],
        segment: Option<usize>,
    ) -> io::Result<()> {
        let destination = match to {
            SocketAddr::V4(a) if self.v6 => {
                SocketAddr::V6(SocketAddrV6::new(a.ip().to_ipv6_mapped(), a.port(), 0, 0))
            }
            a => a,
        };
        let t = Transmit { destination, ecn: None, contents, segment_size: segment, src_ip: None };
        self.state.try_send((&self.io).into(), &t)
    }

    /// Receives one batch into `bufs`; returns how many buffers were filled (see
    /// [`RecvBuffers::for_each`]), or `WouldBlock` when nothing waits.
    pub(crate) fn recv_batch(&self, bufs: &mut RecvBuffers) -> io::Result<usize> {
        let mut slices: Vec<IoSliceMut<'_>> =
            bufs.data.chunks_mut(bufs.slot_len).map(IoSliceMut::new).collect();
        self.state.recv((&self.io).into(), &mut slices, &mut bufs.meta)
    }

    /// The receive buffer shape this socket needs: (slots, bytes per slot).
    pub(crate) fn recv_shape(&self) -> (usize, usize) {
        let gro = self.state.gro_segments().max(1);
        // With GRO each slot must hold a whole coalesced run (the kernel coalesces up to 64
        // datagrams); 8 such slots take up to 512 datagrams in one system call. Without GRO,
        // one slot per datagram up to quinn-udp's batch.
        if gro > 1 {
            (8, gro * MAX_RECV_DATAGRAM.min(1500))
        } else {
            (quinn_udp::BATCH_SIZE, MAX_RECV_DATAGRAM)
        }
    }
}

/// Buffers one receive batch fills.
#[derive(Debug)]
pub(crate) struct RecvBuffers {
    data: Vec<u8>,
    meta: Vec<RecvMeta>,
    slot_len: usize,
}

impl RecvBuffers {
    /// Buffers of `shape` (see [`UdpSock::recv_shape`]).
    pub(crate) fn new((slots, slot_len): (usize, usize)) -> RecvBuffers {
        RecvBuffers {
            data: vec![0; slots * slot_len],
            meta: vec![RecvMeta::default(); slots],
            slot_len,
        }
    }

    /// How many buffers (datagrams, or GRO runs) one batch can fill.
    pub(crate) fn slots(&self) -> usize {
        self.meta.len()
    }

    /// True if these buffers are at least of `shape`.
    pub(crate) fn fits(&self, (slots, slot_len): (usize, usize)) -> bool {
        self.slot_len >= slot_len && self.meta.len() >= slots
    }

    /// Calls `f(from, datagram)` for each datagram of the first `n` buffers of the last
    /// [`UdpSock::recv_batch`], splitting GRO runs, with `from` canonical. Returns the count.
    pub(crate) fn for_each(&mut self, n: usize, mut f: impl FnMut(SocketAddr, &mut [u8])) -> usize {
        let slot = self.slot_len;
        let mut count = 0;
        for (i, meta) in self.meta[..n].iter().enumerate() {
            let from = canonical(meta.addr);
            let buf = &mut self.data[i * slot..i * slot + meta.len.min(slot)];
            let stride = if meta.stride == 0 { buf.len().max(1) } else { meta.stride };
            for dgram in buf.chunks_mut(stride) {
                f(from, dgram);
                count += 1;
            }
        }
        count
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_maps_v4_mapped_only() {
        let mapped: SocketAddr = "[::ffff:127.0.0.1]:9".parse().unwrap();
        assert_eq!(canonical(mapped), "127.0.0.1:9".parse::<SocketAddr>().unwrap());
        let v6: SocketAddr = "[::1]:9".parse().unwrap();
        assert_eq!(canonical(v6), v6);
    }

    #[test]
    fn any_v4_in_v6_notation_binds_v4() {
        let s = UdpSock::bind("[::ffff:0.0.0.0]:0".parse().unwrap()).unwrap();
        assert!(s.local_addr().is_ipv4());
    }
}
