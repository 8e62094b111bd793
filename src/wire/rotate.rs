//! Rotating the address records of a response in place (CoreDNS's `loadbalance`
//! plugin, `round_robin`): clients that take the first address spread over all of them.
//!
//! Only a run of A/AAAA records in the answer section moves, as one block of bytes
//! (`rotate_left`, no allocation); the CNAME chain before it stays first, as CoreDNS
//! keeps it. A run moves only when each of its owner names is a bare compression pointer
//! to a name before the run: then no name inside the run can be the target of another
//! pointer, so moving its bytes breaks no compression. Every response we write, and the
//! upstream answers we relay, write owners that way; anything else is left as it is.

use super::answer::skip_name;
use super::query::HEADER_LEN;
use super::rcode::rtype;

/// A record of the answer section that may move: its start and end in the message.
#[derive(Clone, Copy)]
struct Run {
    start: usize,
    end: usize,
    records: usize,
}

/// Rotates each run of two or more A/AAAA records of the answer section of `msg` left by
/// `turn` records (modulo the run's length). Returns whether anything moved. A message
/// that does not parse is left untouched.
pub fn rotate_addresses(msg: &mut [u8], turn: usize) -> bool {
    let Some(runs) = Runs::new(msg) else {
        return false;
    };
    let mut moved = false;
    // Runs are found one at a time so no list of them is kept (no allocation).
    let mut at = runs.first;
    for _ in 0..runs.answers {
        let Some((run, next)) = next_run(msg, at, runs.left(at)) else {
            break;
        };
        if run.records >= 2 {
            let by = turn % run.records;
            if by != 0 {
                // Every record of a run has a 2-byte owner: walk `by` records.
                let mut offset = run.start;
                for _ in 0..by {
                    let rdlen = u16::from_be_bytes([msg[offset + 10], msg[offset + 11]]);
                    offset += 12 + rdlen as usize;
                }
                msg[run.start..run.end].rotate_left(offset - run.start);
                moved = true;
            }
        }
        at = next;
        if at.answer_index >= runs.answers {
            break;
        }
    }
    moved
}

/// Where the answer section starts and how many records it holds.
struct Runs {
    first: Cursor,
    answers: usize,
}

#[derive(Clone, Copy)]
struct Cursor {
    pos: usize,
    answer_index: usize,
}

impl Runs {
    fn new(msg: &[u8]) -> Option<Runs> {
        if msg.len() < HEADER_LEN {
            return None;
        }
        let count = |i: usize| u16::from_be_bytes([msg[i], msg[i + 1]]) as usize;
        let mut pos = HEADER_LEN;
        for _ in 0..count(4) {
            pos = skip_name(msg, pos)? + 4;
        }
        (pos <= msg.len()).then_some(Runs {
            first: Cursor {
                pos,
                answer_index: 0,
            },
            answers: count(6),
        })
    }

    fn left(&self, at: Cursor) -> usize {
        self.answers.saturating_sub(at.answer_index)
    }
}

/// A record's owner end, type and end.
fn record(msg: &[u8], pos: usize) -> Option<(usize, u16, usize)> {
    let owner_end = skip_name(msg, pos)?;
    let fixed = msg.get(owner_end..owner_end + 10)?;
    let rtype = u16::from_be_bytes([fixed[0], fixed[1]]);
    let rdlen = u16::from_be_bytes([fixed[8], fixed[9]]) as usize;
    let end = owner_end + 10 + rdlen;
    (end <= msg.len()).then_some((owner_end, rtype, end))
}

/// Skips records up to the next run of A/AAAA records (among the `left` answers from
/// `at`), and returns it with where the records after it start. A run whose owners are
/// not all pointers to before it counts zero records (it may not move).
fn next_run(msg: &[u8], mut at: Cursor, left: usize) -> Option<(Run, Cursor)> {
    let mut seen = 0;
    // Skip what is not an address.
    loop {
        if seen == left {
            return None;
        }
        let (_, t, end) = record(msg, at.pos)?;
        if t == rtype::A || t == rtype::AAAA {
            break;
        }
        at.pos = end;
        at.answer_index += 1;
        seen += 1;
    }
    let start = at.pos;
    let mut records = 0;
    let mut movable = true;
    while seen < left {
        let Some((owner_end, t, end)) = record(msg, at.pos) else {
            break;
        };
        if t != rtype::A && t != rtype::AAAA {
            break;
        }
        let pointer = owner_end == at.pos + 2
            && msg[at.pos] & 0xc0 == 0xc0
            && (usize::from(u16::from_be_bytes([msg[at.pos], msg[at.pos + 1]]) & 0x3fff)) < start;
        movable &= pointer;
        records += 1;
        at.pos = end;
        at.answer_index += 1;
        seen += 1;
    }
    let run = Run {
        start,
        end: at.pos,
        records: if movable { records } else { 0 },
    };
    Some((run, at))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A response to `a.example. A` with a CNAME `a.example. → b.example.` (when
    /// `cname`), then one A record per address, owners pointing at the CNAME target or the
    /// question.
    fn response(cname: bool, addrs: &[[u8; 4]]) -> Vec<u8> {
        let mut m = vec![0x12, 0x34, 0x81, 0x80, 0, 1, 0, 0, 0, 0, 0, 0];
        m.extend_from_slice(b"\x01a\x07example\x00\x00\x01\x00\x01");
        let mut owner = 12u16;
        let mut count = addrs.len() as u16;
        if cname {
            m.extend_from_slice(&[0xc0, 12, 0, 5, 0, 1, 0, 0, 0, 30, 0, 4]);
            owner = m.len() as u16;
            m.extend_from_slice(b"\x01b\xc0\x0e");
            count += 1;
        }
        for a in addrs {
            m.extend_from_slice(&(0xc000 | owner).to_be_bytes());
            m.extend_from_slice(&[0, 1, 0, 1, 0, 0, 0, 30, 0, 4]);
            m.extend_from_slice(a);
        }
        m[6..8].copy_from_slice(&count.to_be_bytes());
        m
    }

    fn addresses(m: &[u8]) -> Vec<u8> {
        let runs = Runs::new(m).unwrap();
        let mut pos = runs.first.pos;
        let mut out = Vec::new();
        for _ in 0..runs.answers {
            let (_, t, end) = record(m, pos).unwrap();
            if t == rtype::A {
                out.push(m[end - 1]);
            }
            pos = end;
        }
        out
    }

    #[test]
    fn every_turn_is_a_rotation_and_the_cname_stays_first() {
        let addrs = [[10, 0, 0, 1], [10, 0, 0, 2], [10, 0, 0, 3]];
        for cname in [false, true] {
            let original = response(cname, &addrs);
            for turn in 0..6 {
                let mut m = original.clone();
                assert_eq!(rotate_addresses(&mut m, turn), turn % 3 != 0);
                let want: Vec<u8> = (0..3).map(|i| (((turn + i) % 3) + 1) as u8).collect();
                assert_eq!(addresses(&m), want, "turn {turn}");
                assert_eq!(m.len(), original.len());
                if cname {
                    // The CNAME record is where it was, byte for byte.
                    assert_eq!(m[..45], original[..45]);
                }
            }
        }
    }

    #[test]
    fn a_run_whose_names_could_be_pointed_at_stays_put() {
        // The first A record's owner is written out in full: the others may point at it.
        let mut m = vec![0, 0, 0x81, 0x80, 0, 1, 0, 2, 0, 0, 0, 0];
        m.extend_from_slice(b"\x01a\x00\x00\x01\x00\x01");
        m.extend_from_slice(b"\x01a\x00\x00\x01\x00\x01\x00\x00\x00\x1e\x00\x04\x0a\x00\x00\x01");
        m.extend_from_slice(&[0xc0, 19, 0, 1, 0, 1, 0, 0, 0, 30, 0, 4, 10, 0, 0, 2]);
        let before = m.clone();
        assert!(!rotate_addresses(&mut m, 1));
        assert_eq!(m, before);
    }

    #[test]
    fn broken_messages_are_left_alone() {
        let mut m = response(true, &[[10, 0, 0, 1], [10, 0, 0, 2]]);
        let cut = m.len() - 3;
        let mut short = m[..cut].to_vec();
        let before = short.clone();
        rotate_addresses(&mut short, 1);
        assert_eq!(short, before);
        assert!(!rotate_addresses(&mut m[..5], 1));
        assert!(!rotate_addresses(&mut [], 1));
    }
}
