//! Who is on the other end of a loopback TCP connection: the user owning the client's socket.
//! Looked up once per connection, when it is accepted; it decides the connection's quota (a
//! stranger cannot take the owner's slots) and, for IMDS, which has no secret of its own, access.
//!
//! On Linux the kernel is asked for exactly that socket (`sock_diag`, one netlink round trip of a
//! few microseconds); where that is unavailable (no `tcp_diag`, a seccomp filter), the
//! `/proc/net/tcp` and `tcp6` tables are read on the blocking pool. Both find a dual-stack client
//! (an IPv6 socket connected to 127.0.0.1, as Java and some Python programs use), which shows up
//! as `::ffff:127.0.0.1`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use super::admission::Owner;

/// The peer of an accepted connection, as every request on it sees it.
#[derive(Debug, Clone, Copy)]
pub struct Peer {
    pub local: SocketAddr,
    pub remote: SocketAddr,
    pub owner: Owner,
    /// The inode of the client's socket, where `sock_diag` told (it leads to the calling
    /// process: [`process_with_socket`]).
    pub socket_inode: Option<u64>,
}

/// Looks up connection owners; one per accept loop (it keeps a netlink socket open).
pub struct OwnerLookup {
    #[cfg(target_os = "linux")]
    diag: Option<diag::DiagSocket>,
}

impl OwnerLookup {
    pub fn new() -> OwnerLookup {
        #[cfg(target_os = "linux")]
        {
            let diag = match diag::DiagSocket::open() {
                Ok(socket) => Some(socket),
                Err(e) => {
                    tracing::warn!(error = %e, "no sock_diag: connection owners are read from /proc/net/tcp, which costs more per connection");
                    None
                }
            };
            OwnerLookup { diag }
        }
        #[cfg(not(target_os = "linux"))]
        OwnerLookup {}
    }

    /// The owner of the client socket of the connection `remote` → `local`, and the socket's
    /// inode where `sock_diag` tells.
    pub async fn owner(&mut self, local: SocketAddr, remote: SocketAddr) -> (Owner, Option<u64>) {
        #[cfg(target_os = "linux")]
        {
            if let Some(diag) = &mut self.diag {
                match diag.client_socket(local, remote) {
                    Ok(found) => {
                        return (Owner::of(found.map(|f| f.0)), found.map(|f| f.1));
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "sock_diag failed; reading /proc/net/tcp from now on");
                        self.diag = None;
                    }
                }
            }
            let uid = tokio::task::spawn_blocking(move || proc_owner_uid(local, remote))
                .await
                .ok()
                .flatten();
            (Owner::of(uid), None)
        }
        #[cfg(not(target_os = "linux"))]
        {
            let _ = (local, remote);
            (Owner::Unverifiable, None)
        }
    }
}

impl Default for OwnerLookup {
    fn default() -> Self {
        OwnerLookup::new()
    }
}

#[cfg(target_os = "linux")]
mod diag {
    use std::io;
    use std::net::SocketAddr;
    use std::time::Duration;

    use netlink_packet_core::{NLM_F_REQUEST, NetlinkHeader, NetlinkMessage, NetlinkPayload};
    use netlink_packet_sock_diag::SockDiagMessage;
    use netlink_packet_sock_diag::constants::{AF_INET, AF_INET6, IPPROTO_TCP};
    use netlink_packet_sock_diag::inet::{ExtensionFlags, InetRequest, SocketId, StateFlags};
    use netlink_sys::{Socket, SocketAddr as NetlinkAddr, protocols::NETLINK_SOCK_DIAG};

    /// The kernel answers at once; this only bounds a kernel that does not.
    const ANSWER_TIMEOUT: Duration = Duration::from_millis(200);
    /// INET_DIAG_NOCOOKIE: match by addresses and ports alone.
    const NO_COOKIE: [u8; 8] = [0xff; 8];

    pub struct DiagSocket {
        socket: Socket,
        sequence: u32,
        buffer: Vec<u8>,
    }

    impl DiagSocket {
        pub fn open() -> io::Result<DiagSocket> {
            let mut socket = Socket::new(NETLINK_SOCK_DIAG)?;
            socket.bind_auto()?;
            socket.connect(&NetlinkAddr::new(0, 0))?;
            socket2::SockRef::from(&socket).set_read_timeout(Some(ANSWER_TIMEOUT))?;
            Ok(DiagSocket {
                socket,
                sequence: 0,
                buffer: vec![0; 8192],
            })
        }

        /// The owner's uid and the inode of the client socket; `Ok(None)`: no such socket (the
        /// client is gone already).
        pub fn client_socket(
            &mut self,
            local: SocketAddr,
            remote: SocketAddr,
        ) -> io::Result<Option<(u32, u64)>> {
            self.sequence = self.sequence.wrapping_add(1);
            let mut header = NetlinkHeader::default();
            // Not NLM_F_DUMP: the kernel looks up exactly this socket.
            header.flags = NLM_F_REQUEST;
            header.sequence_number = self.sequence;
            let mut packet = NetlinkMessage::new(
                header,
                SockDiagMessage::InetRequest(InetRequest {
                    family: if remote.is_ipv4() { AF_INET } else { AF_INET6 },
                    protocol: IPPROTO_TCP,
                    extensions: ExtensionFlags::empty(),
                    states: StateFlags::all(),
                    // The client's socket: its local end is our remote one.
                    socket_id: SocketId {
                        source_port: remote.port(),
                        destination_port: local.port(),
                        source_address: remote.ip(),
                        destination_address: local.ip(),
                        interface_id: 0,
                        cookie: NO_COOKIE,
                    },
                })
                .into(),
            );
            packet.finalize();
            // One buffer for the question and the answer: no allocation per connection.
            let len = packet.buffer_len();
            packet.serialize(&mut self.buffer[..len]);
            self.socket.send(&self.buffer[..len], 0)?;
            loop {
                let len = self.socket.recv(&mut &mut self.buffer[..], 0)?;
                let message = NetlinkMessage::<SockDiagMessage>::deserialize(&self.buffer[..len])
                    .map_err(|e| io::Error::other(format!("sock_diag answer: {e}")))?;
                // An answer to an earlier question that timed out: skip it.
                if message.header.sequence_number != self.sequence {
                    continue;
                }
                return match message.payload {
                    NetlinkPayload::InnerMessage(SockDiagMessage::InetResponse(r)) => {
                        Ok(Some((r.header.uid, u64::from(r.header.inode))))
                    }
                    NetlinkPayload::Error(e) => match e.code {
                        // ENOENT: no such socket any more.
                        Some(code) if code.get() == -libc::ENOENT => Ok(None),
                        _ => Err(e.to_io()),
                    },
                    other => Err(io::Error::other(format!(
                        "unexpected sock_diag answer {:?}",
                        other.message_type()
                    ))),
                };
            }
        }
    }
}

/// The slow way: scan both tables (a dual-stack client is in `tcp6`).
#[cfg(target_os = "linux")]
fn proc_owner_uid(local: SocketAddr, remote: SocketAddr) -> Option<u32> {
    ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .find_map(|table| {
            let text = std::fs::read_to_string(table).ok()?;
            find_owner(&text, local, remote)
        })
}

/// Who listens on a port credd could not bind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortHolder {
    pub uid: u32,
    /// Its pid and program name, when the OS shows them (a process of ours; any, to root).
    pub process: Option<(u32, String)>,
}

impl PortHolder {
    /// `uid 65534 (nobody)`, `uid 65534 (nobody) with python3 (pid 4242)`, or for one of ours
    /// `python3 (pid 4242)`.
    pub fn describe(&self) -> String {
        let process = self
            .process
            .as_ref()
            .map(|(pid, name)| format!("{name} (pid {pid})"));
        if self.uid == credd_proto::paths::current_uid() {
            return process.unwrap_or_else(|| "a program".to_owned());
        }
        let user = credd_proto::paths::user(self.uid);
        match process {
            Some(p) => format!("{user} with {p}"),
            None => user,
        }
    }
}

/// Who listens on `addr` (or on the wildcard address of its port), where the OS tells.
pub fn port_holder(addr: SocketAddr) -> Option<PortHolder> {
    #[cfg(target_os = "linux")]
    {
        let (uid, inode) = ["/proc/net/tcp", "/proc/net/tcp6"]
            .iter()
            .find_map(|table| {
                let text = std::fs::read_to_string(table).ok()?;
                find_listener(&text, addr)
            })?;
        Some(PortHolder {
            uid,
            process: process_with_socket(inode),
        })
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = addr;
        None
    }
}

/// The `(uid, inode)` of the listening socket (state `0A`) that holds `addr`'s port: bound to
/// that address, or to the wildcard of either family (a dual-stack `::` takes v4 ports too).
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
fn find_listener(table: &str, addr: SocketAddr) -> Option<(u32, u64)> {
    table.lines().skip(1).find_map(|line| {
        let cols: Vec<&str> = line.split_whitespace().collect();
        let (local, state, uid, inode) = (cols.get(1)?, cols.get(3)?, cols.get(7)?, cols.get(9)?);
        let local = parse_addr(local)?;
        let holds = *state == "0A"
            && local.port() == addr.port()
            && (local.ip() == addr.ip() || local.ip().is_unspecified());
        holds
            .then(|| Some((uid.parse().ok()?, inode.parse().ok()?)))
            .flatten()
    })
}

/// The process that has socket `inode` open, and its name: [`pid_with_socket`].
#[cfg(target_os = "linux")]
pub fn process_with_socket(inode: u64) -> Option<(u32, String)> {
    let pid = pid_with_socket(inode, None)?;
    let name = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
    Some((pid, name.trim().to_owned()))
}

/// How many of the newest pids are tried before all of `/proc` is listed.
#[cfg(target_os = "linux")]
const RECENT_PIDS: u32 = 32;

/// The process that has socket `inode` open: `/proc/PID/fd/*` links to `socket:[INODE]` (only
/// our own processes' are readable, unless we are root). `try_first` (e.g. the process that
/// held the last socket asked about), then the newest processes: a client that has just
/// connected is among the first looked at, and may exit soon after its answer.
#[cfg(target_os = "linux")]
pub fn pid_with_socket(inode: u64, try_first: Option<u32>) -> Option<u32> {
    let wanted = format!("socket:[{inode}]");
    let holds = |pid: u32| {
        std::fs::read_dir(format!("/proc/{pid}/fd")).is_ok_and(|fds| {
            fds.flatten().any(|fd| {
                std::fs::read_link(fd.path()).is_ok_and(|l| l.as_os_str() == wanted.as_str())
            })
        })
    };
    if let Some(pid) = try_first.filter(|p| holds(*p)) {
        return Some(pid);
    }
    // The 5th field of /proc/loadavg is the pid the kernel gave last: a client that just
    // connected is at most a few below it. Those are tried straight away (a pid no process
    // has fails at once), before the whole of /proc is listed.
    let last: Option<u32> = std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().nth(4)?.parse().ok());
    if let Some(last) = last {
        let recent = (0..RECENT_PIDS).filter_map(|back| last.checked_sub(back));
        if let Some(id) = recent.filter(|p| *p > 0).find(|pid| holds(*pid)) {
            // The id may be a thread's (its /proc entry is there, unlisted): its process.
            return Some(thread_group(id).unwrap_or(id));
        }
    }
    let pids: Vec<u32> = std::fs::read_dir("/proc")
        .ok()?
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .collect();
    newest_first(pids, last).into_iter().find(|pid| holds(*pid))
}

#[cfg(not(target_os = "linux"))]
pub fn pid_with_socket(_inode: u64, _try_first: Option<u32>) -> Option<u32> {
    None
}

/// `pids` from the newest: the kernel hands them out upwards from the last one given (`last`)
/// and wraps around at `pid_max`, so the newest are those up to `last`, downwards, then the
/// ones above it, downwards. A client that has just connected is among the first looked at.
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
fn newest_first(mut pids: Vec<u32>, last: Option<u32>) -> Vec<u32> {
    pids.sort_unstable_by(|a, b| b.cmp(a));
    if let Some(last) = last {
        let wrapped = pids.partition_point(|p| *p > last);
        pids.rotate_left(wrapped);
    }
    pids
}

/// The process a thread id belongs to (`Tgid:` of `/proc/ID/status`).
#[cfg(target_os = "linux")]
fn thread_group(id: u32) -> Option<u32> {
    let status = std::fs::read_to_string(format!("/proc/{id}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("Tgid:"))?
        .trim()
        .parse()
        .ok()
}

/// Lines: `sl local_address rem_address st ... uid ...`; the client's socket has the client's
/// address as local and ours as remote.
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
fn find_owner(table: &str, local: SocketAddr, remote: SocketAddr) -> Option<u32> {
    table.lines().skip(1).find_map(|line| {
        let cols: Vec<&str> = line.split_whitespace().collect();
        let (client, server, uid) = (cols.get(1)?, cols.get(2)?, cols.get(7)?);
        (parse_addr(client)? == remote && parse_addr(server)? == local)
            .then(|| uid.parse().ok())
            .flatten()
    })
}

/// `0100007F:1F90` → 127.0.0.1:8080. The kernel prints each 32-bit word of the address in host
/// byte order, the port in network order.
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
fn parse_addr(s: &str) -> Option<SocketAddr> {
    let (ip_hex, port_hex) = s.split_once(':')?;
    let port = u16::from_str_radix(port_hex, 16).ok()?;
    let word = |i: usize| -> Option<[u8; 4]> {
        Some(
            u32::from_str_radix(ip_hex.get(i * 8..i * 8 + 8)?, 16)
                .ok()?
                .to_ne_bytes(),
        )
    };
    let ip = match ip_hex.len() {
        8 => IpAddr::V4(Ipv4Addr::from(word(0)?)),
        32 => {
            let mut bytes = [0u8; 16];
            for i in 0..4 {
                bytes[i * 4..i * 4 + 4].copy_from_slice(&word(i)?);
            }
            let v6 = Ipv6Addr::from(bytes);
            // A v4 client on a dual-stack socket shows up as ::ffff:a.b.c.d.
            v6.to_ipv4_mapped()
                .map(IpAddr::V4)
                .unwrap_or(IpAddr::V6(v6))
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn processes_are_looked_at_newest_first_also_after_pids_wrapped_around() {
        let pids = vec![1, 30_000, 2_680, 31_000, 2_700, 900];
        assert_eq!(
            newest_first(pids.clone(), Some(2_700)),
            [2_700, 2_680, 900, 1, 31_000, 30_000]
        );
        assert_eq!(
            newest_first(pids.clone(), Some(40_000)),
            [31_000, 30_000, 2_700, 2_680, 900, 1]
        );
        assert_eq!(
            newest_first(pids, None),
            [31_000, 30_000, 2_700, 2_680, 900, 1]
        );
    }

    const SERVER: &str = "127.0.0.1:9911";
    const CLIENT: &str = "127.0.0.1:54321";

    #[test]
    #[cfg(target_endian = "little")]
    fn finds_the_client_socket_owner_in_either_table() {
        let tcp = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n\
   0: 0100007F:26B7 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 1 1 0000000000000000 100 0 0 10 0\n\
   1: 0100007F:D431 0100007F:26B7 01 00000000:00000000 00:00000000 00000000  1001        0 2 1 0000000000000000 20 4 30 10 -1\n";
        let (server, client) = (SERVER.parse().unwrap(), CLIENT.parse().unwrap());
        assert_eq!(find_owner(tcp, server, client), Some(1001));
        assert_eq!(
            find_owner(tcp, server, "127.0.0.1:1".parse().unwrap()),
            None
        );
        // A Java client: an IPv6 socket connected to 127.0.0.1, listed in tcp6 as v4-mapped.
        let tcp6 = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n\
   0: 0000000000000000FFFF00000100007F:D431 0000000000000000FFFF00000100007F:26B7 01 00000000:00000000 00:00000000 00000000  1002        0 3 1 0000000000000000 20 4 30 10 -1\n";
        assert_eq!(find_owner(tcp6, server, client), Some(1002));
    }

    #[test]
    #[cfg(target_endian = "little")]
    fn finds_who_listens_on_a_port_or_its_wildcard() {
        let tcp = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n\
   0: 0100007F:D431 0100007F:26B7 01 00000000:00000000 00:00000000 00000000  1001        0 2 1 0000000000000000 20 4 30 10 -1\n\
   1: 0100007F:26B7 00000000:0000 0A 00000000:00000000 00:00000000 00000000 65534        0 4242 1 0000000000000000 100 0 0 10 0\n";
        let server: SocketAddr = SERVER.parse().unwrap();
        assert_eq!(find_listener(tcp, server), Some((65534, 4242)));
        assert_eq!(find_listener(tcp, "127.0.0.2:9911".parse().unwrap()), None);
        assert_eq!(find_listener(tcp, "127.0.0.1:9912".parse().unwrap()), None);
        let wildcard = "  sl  local_address rem_address   st\n\
   0: 00000000:26B7 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1002        0 77 1\n";
        assert_eq!(find_listener(wildcard, server), Some((1002, 77)));
    }

    /// The real kernel: a listener of ours, found with its process.
    #[test]
    #[cfg(target_os = "linux")]
    fn a_held_port_names_its_holder() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let holder = port_holder(listener.local_addr().unwrap()).expect("found");
        assert_eq!(holder.uid, credd_proto::paths::current_uid());
        assert_eq!(
            holder.process.as_ref().map(|p| p.0),
            Some(std::process::id())
        );
        assert!(
            holder
                .describe()
                .ends_with(&format!("(pid {})", std::process::id()))
        );
        assert_eq!(
            PortHolder {
                uid: 65534,
                process: None
            }
            .describe(),
            credd_proto::paths::user(65534)
        );
    }

    #[test]
    #[cfg(target_endian = "little")]
    fn parses_v6_loopback() {
        let a = parse_addr("00000000000000000000000001000000:26B7").unwrap();
        assert_eq!(a, "[::1]:9911".parse().unwrap());
    }

    /// The real kernel, both ways a client can reach a v4 listener.
    #[tokio::test]
    #[cfg(target_os = "linux")]
    async fn the_kernel_names_our_own_user_for_v4_and_dual_stack_clients() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let server = listener.local_addr().unwrap();
        let mut lookup = OwnerLookup::new();
        let v4 = std::net::TcpStream::connect(server).unwrap();
        let (_a, remote) = listener.accept().unwrap();
        assert_eq!(v4.local_addr().unwrap(), remote);
        let (owner, inode) = lookup.owner(server, remote).await;
        assert_eq!(owner, Owner::Me);
        let inode = inode.expect("sock_diag names the client's socket");
        assert_eq!(
            process_with_socket(inode).map(|(pid, _)| pid),
            Some(std::process::id()),
            "the client socket's inode leads to its process"
        );

        let dual =
            socket2::Socket::new(socket2::Domain::IPV6, socket2::Type::STREAM, None).unwrap();
        dual.set_only_v6(false).unwrap();
        let mapped: SocketAddr = format!("[::ffff:127.0.0.1]:{}", server.port())
            .parse()
            .unwrap();
        dual.connect(&mapped.into()).unwrap();
        let (_b, remote) = listener.accept().unwrap();
        assert!(remote.is_ipv4(), "the server sees a v4 peer: {remote}");
        assert_eq!(lookup.owner(server, remote).await.0, Owner::Me);
        assert_eq!(
            proc_owner_uid(server, remote),
            Some(credd_proto::paths::current_uid())
        );

        let gone: SocketAddr = "127.0.0.1:1".parse().unwrap();
        assert_eq!(lookup.owner(server, gone).await, (Owner::Unknown, None));
        assert!(
            lookup.diag.is_some(),
            "sock_diag answered (the /proc fallback costs milliseconds per connection)"
        );
    }
}
