//! Header lookups for `%REQ(...)%` / `%RESP(...)%`: a head is indexed once per line (name and
//! value of each header), so a format with several lookups scans it once. Hand-written: the
//! head was already validated by httparse (or built by meshcore), so its lines are
//! `name: value\r\n`, and httparse's parser would redo the validation.

/// Headers indexed inline; a longer head is scanned on each lookup instead. 16 pairs (512
/// bytes, written once per index) cover a forwarded request's head; 32 doubled the index's
/// cost on every logged request for heads that rarely need it.
const INDEXED: usize = 16;

pub struct HeadIndex<'a> {
    head: &'a [u8],
    line: &'a [u8],
    headers: [(&'a [u8], &'a [u8]); INDEXED],
    len: usize,
    overflow: bool,
}

impl<'a> HeadIndex<'a> {
    pub fn new(head: &'a [u8]) -> HeadIndex<'a> {
        let mut idx = HeadIndex {
            head,
            line: &[],
            headers: [(&[], &[]); INDEXED],
            len: 0,
            overflow: false,
        };
        let mut lines = Lines(head);
        idx.line = lines.next().unwrap_or(&[]);
        for line in lines {
            let Some(colon) = memchr::memchr(b':', line) else {
                continue;
            };
            if idx.len == INDEXED {
                idx.overflow = true;
                break;
            }
            idx.headers[idx.len] = (&line[..colon], line[colon + 1..].trim_ascii());
            idx.len += 1;
        }
        idx
    }

    /// The request (or status) line.
    pub fn first_line(&self) -> &'a [u8] {
        self.line
    }

    /// Appends the values of header `name` (lower-case), joined by `,`; false when absent.
    pub fn find(&self, name: &str, out: &mut Vec<u8>) -> bool {
        let name = name.as_bytes();
        let mut found = false;
        let mut push = |v: &[u8]| {
            if found {
                out.push(b',');
            }
            out.extend_from_slice(v);
            found = true;
        };
        if self.overflow {
            for line in Lines(self.head).skip(1) {
                if let Some(colon) = memchr::memchr(b':', line)
                    && line[..colon].eq_ignore_ascii_case(name)
                {
                    push(line[colon + 1..].trim_ascii());
                }
            }
        } else {
            for (n, v) in &self.headers[..self.len] {
                if n.len() == name.len() && n.eq_ignore_ascii_case(name) {
                    push(v);
                }
            }
        }
        found
    }
}

/// The lines of a head up to the blank line, without their line ends.
struct Lines<'a>(&'a [u8]);

impl<'a> Iterator for Lines<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        if self.0.is_empty() {
            return None;
        }
        let end = memchr::memchr(b'\n', self.0).unwrap_or(self.0.len());
        let line = &self.0[..end];
        self.0 = &self.0[(end + 1).min(self.0.len())..];
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            self.0 = &[];
            return None;
        }
        Some(line)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups_and_the_overflow_fallback_agree() {
        let mut head = b"GET / HTTP/1.1\r\nHost: a\r\nX-Dup: 1\r\nx-dup:  2 \r\n".to_vec();
        let small = HeadIndex::new(&head);
        let mut out = Vec::new();
        assert!(small.find("x-dup", &mut out));
        assert_eq!(out, b"1,2");
        assert_eq!(small.first_line(), b"GET / HTTP/1.1");
        for i in 0..40 {
            head.extend_from_slice(format!("h{i}: v{i}\r\n").as_bytes());
        }
        head.extend_from_slice(b"late: yes\r\n\r\nbody: no\r\n");
        let big = HeadIndex::new(&head);
        assert!(big.overflow);
        for (name, want) in [("x-dup", &b"1,2"[..]), ("late", b"yes"), ("host", b"a")] {
            out.clear();
            assert!(big.find(name, &mut out), "{name}");
            assert_eq!(out, want);
        }
        out.clear();
        assert!(!big.find("body", &mut out), "nothing after the blank line");
        assert!(!HeadIndex::new(b"").find("host", &mut out));
    }
}
