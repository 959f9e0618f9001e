//! Who is on the other end of a loopback connection, on Linux: the owner uid
//! of the connecting socket, read from `/proc/net/tcp` and `/proc/net/tcp6`
//! (the kernel lists every TCP socket of the network namespace there, with
//! its addresses in hex and its owner's uid, to any reader).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// The socket tables, IPv4 first. A client may connect to 127.0.0.1 from an
/// IPv6 socket (as `::ffff:127.0.0.1`), so both are searched.
const TABLES: [&str; 2] = ["/proc/net/tcp", "/proc/net/tcp6"];

/// One line of a socket table, as far as it matters here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SocketEntry {
    pub local: SocketAddr,
    pub remote: SocketAddr,
    pub uid: u32,
}

/// What the tables say about a connection to our listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerOwner {
    /// The connecting socket belongs to this uid.
    Uid(u32),
    /// Our side of the connection is listed, the connecting side is not: it
    /// closed meanwhile (or lives where we cannot see it). Nobody to serve.
    Gone,
    /// The tables do not list the connection at all (no `/proc`, or a system
    /// that leaves them empty): who connected cannot be told.
    Unknown,
}

/// Parses one line of `/proc/net/tcp` or `/proc/net/tcp6`:
/// `sl local_address rem_address st tx:rx tr:when retrnsmt uid ...`, with
/// addresses as `HEX:PORT`. The header line and anything malformed give `None`.
pub fn parse_line(line: &str) -> Option<SocketEntry> {
    let mut fields = line.split_whitespace();
    let slot = fields.next()?;
    if !slot.ends_with(':') {
        return None;
    }
    let local = parse_address(fields.next()?)?;
    let remote = parse_address(fields.next()?)?;
    // st, tx_queue:rx_queue, tr:tm->when, retrnsmt, then uid.
    let uid = fields.nth(4)?.parse().ok()?;
    Some(SocketEntry { local, remote, uid })
}

/// `0100007F:1F90` (IPv4) or 32 hex digits and a port (IPv6). The kernel
/// prints each 32-bit word of the address as a native-endian number, and the
/// port in host order.
fn parse_address(text: &str) -> Option<SocketAddr> {
    let (address, port) = text.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let word = |hex: &str| u32::from_str_radix(hex, 16).ok().map(u32::to_ne_bytes);
    let ip = match address.len() {
        8 => IpAddr::V4(Ipv4Addr::from(word(address)?)),
        32 => {
            let mut octets = [0u8; 16];
            for (index, chunk) in octets.chunks_mut(4).enumerate() {
                chunk.copy_from_slice(&word(address.get(index * 8..index * 8 + 8)?)?);
            }
            IpAddr::V6(Ipv6Addr::from(octets))
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

/// An IPv4-mapped IPv6 address as the IPv4 address it stands for.
fn canonical(address: SocketAddr) -> SocketAddr {
    match address.ip() {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => SocketAddr::new(IpAddr::V4(v4), address.port()),
            None => address,
        },
        IpAddr::V4(_) => address,
    }
}

/// Finds the owner of the socket that connected from `client` to our
/// `server` address in the given table texts.
pub fn find_owner<'a>(tables: impl IntoIterator<Item = &'a str>, client: SocketAddr, server: SocketAddr) -> PeerOwner {
    let (client, server) = (canonical(client), canonical(server));
    let mut ours_listed = false;
    for entry in tables.into_iter().flat_map(str::lines).filter_map(parse_line) {
        let (local, remote) = (canonical(entry.local), canonical(entry.remote));
        if local == client && remote == server {
            return PeerOwner::Uid(entry.uid);
        }
        ours_listed |= local == server && remote == client;
    }
    if ours_listed { PeerOwner::Gone } else { PeerOwner::Unknown }
}

/// The owner of the socket that connected from `client` to our `server`
/// address, from the live tables. Blocking file reads.
pub fn owner_of(client: SocketAddr, server: SocketAddr) -> PeerOwner {
    let texts: Vec<String> = TABLES.iter().filter_map(|path| std::fs::read_to_string(path).ok()).collect();
    find_owner(texts.iter().map(String::as_str), client, server)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Lines as a little-endian kernel prints them (the addresses' words are
    /// re-encoded below for other byte orders).
    const TCP: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:20D0 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 81234 1 0000000000000000 100 0 0 10 0
   1: 0100007F:20D0 0100007F:D431 01 00000000:00000000 00:00000000 00000000     0        0 81240 1 0000000000000000 20 4 30 10 -1
   2: 0100007F:D431 0100007F:20D0 01 00000000:00000000 00:00000000 00000000 65534        0 81239 1 0000000000000000 20 4 30 10 -1
";
    const TCP6: &str = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0000000000000000FFFF00000100007F:D5AA 0000000000000000FFFF00000100007F:20D0 01 00000000:00000000 00:00000000 00000000  1000        0 91 1 0000000000000000 20 4 0 10 -1
   1: 00000000000000000000000001000000:0016 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 92 1 0000000000000000 100 0 0 10 0
";

    /// Rewrites the hex words of a little-endian sample for this machine.
    fn native(sample: &str) -> String {
        sample
            .split_inclusive(['\n', ' ', ':'])
            .map(|piece| {
                let hex = piece.trim_end_matches(['\n', ' ', ':']);
                let is_address = (hex.len() == 8 || hex.len() == 32) && piece.ends_with(':');
                if !is_address || !hex.bytes().all(|byte| byte.is_ascii_hexdigit()) {
                    return piece.to_string();
                }
                let words: String = (0..hex.len() / 8)
                    .map(|index| {
                        let little = u32::from_str_radix(&hex[index * 8..index * 8 + 8], 16).unwrap();
                        format!("{:08X}", u32::from_ne_bytes(little.to_le_bytes()))
                    })
                    .collect();
                format!("{words}{}", &piece[hex.len()..])
            })
            .collect()
    }

    fn at(text: &str) -> SocketAddr {
        text.parse().unwrap()
    }

    #[test]
    fn ipv4_and_ipv6_lines_are_parsed() {
        let tcp = native(TCP);
        let entries: Vec<SocketEntry> = tcp.lines().filter_map(parse_line).collect();
        assert_eq!(entries.len(), 3, "the header line is skipped");
        assert_eq!(entries[2], SocketEntry { local: at("127.0.0.1:54321"), remote: at("127.0.0.1:8400"), uid: 65534 });
        assert_eq!(entries[0].remote, at("0.0.0.0:0"));
        let tcp6 = native(TCP6);
        let entries: Vec<SocketEntry> = tcp6.lines().filter_map(parse_line).collect();
        assert_eq!(entries[0].local, at("[::ffff:127.0.0.1]:54698"));
        assert_eq!(entries[0].uid, 1000);
        assert_eq!(entries[1].local, at("[::1]:22"));
    }

    #[test]
    fn malformed_lines_are_skipped() {
        for line in [
            "",
            "garbage",
            "   0: 0100007F:20D0",
            "   0: 0100007F:20D0 0100007F:D431 01 00000000:00000000 00:00000000 00000000",
            "   0: 0100007G:20D0 0100007F:D431 01 00000000:00000000 00:00000000 00000000 0 0 1",
            "   0: 0100007F:20D0 0100007F:D431 01 00000000:00000000 00:00000000 00000000 -1 0 1",
            "   0: 00007F:20D0 0100007F:D431 01 00000000:00000000 00:00000000 00000000 0 0 1",
            "   0: 0100007F:120D0 0100007F:D431 01 00000000:00000000 00:00000000 00000000 0 0 1",
            "   0  0100007F:20D0 0100007F:D431 01 00000000:00000000 00:00000000 00000000 0 0 1",
        ] {
            assert_eq!(parse_line(line), None, "{line:?}");
        }
    }

    #[test]
    fn the_connecting_side_gives_the_owner() {
        let (tcp, tcp6) = (native(TCP), native(TCP6));
        let tables = [tcp.as_str(), tcp6.as_str()];
        let server = at("127.0.0.1:8400");
        // The client's socket (owner 65534), not our accepted one (owner 0).
        assert_eq!(find_owner(tables, at("127.0.0.1:54321"), server), PeerOwner::Uid(65534));
        // An IPv6 socket connected to 127.0.0.1, as the kernel lists it.
        assert_eq!(find_owner(tables, at("127.0.0.1:54698"), server), PeerOwner::Uid(1000));
        assert_eq!(find_owner(tables, at("[::ffff:127.0.0.1]:54698"), server), PeerOwner::Uid(1000));
        // The same client port towards another server is someone else's socket.
        assert_eq!(find_owner(tables, at("127.0.0.1:54321"), at("127.0.0.1:8401")), PeerOwner::Unknown);
        assert_eq!(find_owner([""], at("127.0.0.1:54321"), server), PeerOwner::Unknown);
    }

    #[test]
    fn a_closed_client_with_our_side_still_listed_is_gone() {
        let ours_only = native(TCP).lines().filter(|line| !line.contains("65534")).collect::<Vec<_>>().join("\n");
        assert_eq!(find_owner([ours_only.as_str()], at("127.0.0.1:54321"), at("127.0.0.1:8400")), PeerOwner::Gone);
    }

    #[test]
    fn a_live_connection_is_found_with_our_own_uid() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (accepted, peer) = listener.accept().unwrap();
        assert_eq!(peer, client.local_addr().unwrap());
        let uid = crate::platform::process::effective_uid();
        assert_eq!(owner_of(peer, accepted.local_addr().unwrap()), PeerOwner::Uid(uid));
        drop(client);
        drop(accepted);
    }
}
