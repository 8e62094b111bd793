//! A small DNS client for the tests: builds queries by hand (so tests can also send
//! broken ones) and reads answers with hickory-proto, an implementation independent of
//! the one under test.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::time::Duration;

use hickory_proto::op::Message;
use hickory_proto::rr::RecordType;

pub const TIMEOUT: Duration = Duration::from_secs(3);

/// A query's wire form: `name` as given (case kept), optional EDNS with `udp_size`.
pub fn query_bytes(id: u16, name: &str, qtype: RecordType, edns: Option<u16>) -> Vec<u8> {
    let mut p = Vec::new();
    p.extend_from_slice(&id.to_be_bytes());
    p.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, u8::from(edns.is_some())]);
    for l in name
        .trim_end_matches('.')
        .split('.')
        .filter(|l| !l.is_empty())
    {
        p.push(l.len() as u8);
        p.extend_from_slice(l.as_bytes());
    }
    p.push(0);
    p.extend_from_slice(&u16::from(qtype).to_be_bytes());
    p.extend_from_slice(&1u16.to_be_bytes());
    if let Some(size) = edns {
        p.extend_from_slice(&[0, 0, 41]);
        p.extend_from_slice(&size.to_be_bytes());
        p.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
    }
    p
}

pub fn udp_exchange(addr: SocketAddr, packet: &[u8]) -> Option<Vec<u8>> {
    let s = UdpSocket::bind(if addr.is_ipv6() {
        "[::1]:0"
    } else {
        "127.0.0.1:0"
    })
    .unwrap();
    s.set_read_timeout(Some(TIMEOUT)).unwrap();
    s.send_to(packet, addr).unwrap();
    let mut buf = vec![0u8; 65535];
    let n = s.recv(&mut buf).ok()?;
    buf.truncate(n);
    Some(buf)
}

pub fn tcp_connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect_timeout(&addr, TIMEOUT).unwrap();
    s.set_read_timeout(Some(TIMEOUT)).unwrap();
    s
}

pub fn tcp_send(s: &mut TcpStream, packet: &[u8]) {
    let mut framed = (packet.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(packet);
    s.write_all(&framed).unwrap();
}

pub fn tcp_read(s: &mut TcpStream) -> Option<Vec<u8>> {
    let mut len = [0u8; 2];
    s.read_exact(&mut len).ok()?;
    let mut buf = vec![0u8; u16::from_be_bytes(len) as usize];
    s.read_exact(&mut buf).ok()?;
    Some(buf)
}

pub fn tcp_exchange(addr: SocketAddr, packet: &[u8]) -> Option<Vec<u8>> {
    let mut s = tcp_connect(addr);
    tcp_send(&mut s, packet);
    tcp_read(&mut s)
}

/// An answer, with each section rendered as zone-file lines (`name ttl IN type rdata`).
#[derive(Debug)]
pub struct Answer {
    pub msg: Message,
    pub raw: Vec<u8>,
}

impl Answer {
    pub fn parse(raw: Vec<u8>) -> Answer {
        let msg =
            Message::from_vec(&raw).unwrap_or_else(|e| panic!("unparseable answer {raw:?}: {e}"));
        Answer { msg, raw }
    }

    pub fn rcode(&self) -> String {
        format!("{:?}", self.msg.metadata.response_code).to_uppercase()
    }

    pub fn aa(&self) -> bool {
        self.msg.metadata.authoritative
    }

    pub fn tc(&self) -> bool {
        self.msg.metadata.truncation
    }

    pub fn answers(&self) -> Vec<String> {
        self.msg.answers.iter().map(|r| r.to_string()).collect()
    }

    pub fn authority(&self) -> Vec<String> {
        self.msg.authorities.iter().map(|r| r.to_string()).collect()
    }

    pub fn additional(&self) -> Vec<String> {
        self.msg.additionals.iter().map(|r| r.to_string()).collect()
    }

    /// Just the RDATA of each answer record, sorted: for comparing sets.
    pub fn rdata(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .msg
            .answers
            .iter()
            .map(|r| r.data.to_string())
            .collect();
        v.sort();
        v
    }
}

/// Asks over UDP with EDNS (1232), as dig does.
pub fn ask(addr: SocketAddr, name: &str, qtype: RecordType) -> Answer {
    let raw = udp_exchange(addr, &query_bytes(0x4242, name, qtype, Some(1232)))
        .unwrap_or_else(|| panic!("no answer for {name} {qtype}"));
    let a = Answer::parse(raw);
    assert_eq!(a.msg.metadata.id, 0x4242);
    a
}

pub fn ask_tcp(addr: SocketAddr, name: &str, qtype: RecordType) -> Answer {
    let raw = tcp_exchange(addr, &query_bytes(0x4343, name, qtype, None))
        .unwrap_or_else(|| panic!("no TCP answer for {name} {qtype}"));
    Answer::parse(raw)
}
