//! Who is on the other end of a loopback TCP connection: the owner of the peer's socket, read
//! from /proc/net/tcp{,6} on Linux. IMDS has no secret of its own, so this is its access check.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use super::Peer;

/// The uid owning the socket at `peer.remote` connected to `peer.local`, if it can be found.
#[cfg(target_os = "linux")]
pub fn owner_uid(peer: &Peer) -> Option<u32> {
    let table = if peer.remote.is_ipv4() {
        "/proc/net/tcp"
    } else {
        "/proc/net/tcp6"
    };
    let text = std::fs::read_to_string(table).ok()?;
    find_owner(&text, peer)
}

#[cfg(not(target_os = "linux"))]
pub fn owner_uid(_peer: &Peer) -> Option<u32> {
    None
}

/// Lines: `sl local_address rem_address st ... uid ...`; the client's socket has the client's
/// address as local and ours as remote.
fn find_owner(table: &str, peer: &Peer) -> Option<u32> {
    table.lines().skip(1).find_map(|line| {
        let cols: Vec<&str> = line.split_whitespace().collect();
        let (local, remote, uid) = (cols.get(1)?, cols.get(2)?, cols.get(7)?);
        (parse_addr(local)? == peer.remote && parse_addr(remote)? == peer.local)
            .then(|| uid.parse().ok())
            .flatten()
    })
}

/// `0100007F:1F90` → 127.0.0.1:8080. The kernel prints each 32-bit word of the address in host
/// byte order, the port in network order.
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
    #[cfg(target_endian = "little")]
    fn finds_the_client_socket_owner() {
        let table = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n\
   0: 0100007F:26B7 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 1 1 0000000000000000 100 0 0 10 0\n\
   1: 0100007F:D431 0100007F:26B7 01 00000000:00000000 00:00000000 00000000  1001        0 2 1 0000000000000000 20 4 30 10 -1\n";
        let peer = Peer {
            local: "127.0.0.1:9911".parse().unwrap(),
            remote: "127.0.0.1:54321".parse().unwrap(),
        };
        assert_eq!(find_owner(table, &peer), Some(1001));
        let other = Peer {
            remote: "127.0.0.1:1".parse().unwrap(),
            ..peer
        };
        assert_eq!(find_owner(table, &other), None);
    }

    #[test]
    #[cfg(target_endian = "little")]
    fn parses_v6_loopback() {
        let a = parse_addr("00000000000000000000000001000000:26B7").unwrap();
        assert_eq!(a, "[::1]:9911".parse().unwrap());
    }
}
