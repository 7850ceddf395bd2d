//! The connection manager's path normalization, as Envoy 1.40 does it before routing and the
//! filters (and for the upstream's request line): `path_with_escaped_slashes_action`
//! (`%2F`/`%5C`), `normalize_path` (RFC 3986 dot segments, through Chromium's canonicalizer
//! in Envoy), then `merge_slashes`. The query is never touched.
//!
//! Hand-written: Envoy's canonical form is Chromium's (unreserved escapes decoded, `\` as
//! `/`, `%2e` as a dot, `"{}|^` and backquote escaped), which neither the `url` crate
//! (WHATWG: no unreserved decoding, `|`/`^` kept) nor `percent-encoding` reproduces; the
//! expected outputs in the tests were read from Envoy 1.40 on the same inputs.
use std::borrow::Cow;

use crate::config::snapshot::{EscapedSlashesAction, RequestNormalization};

/// What the escaped-slashes step decided.
#[derive(Debug, PartialEq, Eq)]
pub enum Normalized {
    /// Route and forward this path (borrowed: unchanged).
    Path(String),
    Unchanged,
    /// `REJECT_REQUEST`: 400.
    Reject,
    /// `UNESCAPE_AND_REDIRECT`: 307 to this (unescaped, not otherwise normalized) path.
    Redirect(String),
}

/// The normalization options of one connection manager; `active()` is false for Envoy's
/// defaults, so the request path pays one branch.
#[derive(Debug, Clone, Copy, Default)]
pub struct PathOptions {
    pub normalize: bool,
    pub merge_slashes: bool,
    pub escaped_slashes: EscapedSlashesAction,
}

impl PathOptions {
    pub fn of(cfg: &RequestNormalization) -> PathOptions {
        PathOptions {
            normalize: cfg.normalize_path,
            merge_slashes: cfg.merge_slashes,
            escaped_slashes: cfg.path_with_escaped_slashes_action,
        }
    }

    #[inline]
    pub fn active(&self) -> bool {
        self.normalize
            || self.merge_slashes
            || self.escaped_slashes != EscapedSlashesAction::KeepUnchanged
    }

    /// Applies the options to an origin-form `target` (path and query).
    pub fn apply(&self, target: &str) -> Normalized {
        let (path, query) = match target.find('?') {
            Some(i) => target.split_at(i),
            None => (target, ""),
        };
        let mut p = Cow::Borrowed(path);
        if self.escaped_slashes != EscapedSlashesAction::KeepUnchanged && has_escaped_slash(&p) {
            match self.escaped_slashes {
                EscapedSlashesAction::RejectRequest => return Normalized::Reject,
                EscapedSlashesAction::UnescapeAndRedirect => {
                    return Normalized::Redirect(format!("{}{query}", unescape_slashes(&p)));
                }
                _ => p = Cow::Owned(unescape_slashes(&p)),
            }
        }
        if self.normalize {
            p = Cow::Owned(canonical_path(&p));
        }
        if self.merge_slashes && p.contains("//") {
            p = Cow::Owned(merge_slashes(&p));
        }
        match p {
            Cow::Borrowed(_) => Normalized::Unchanged,
            Cow::Owned(s) if s == path => Normalized::Unchanged,
            Cow::Owned(s) => Normalized::Path(s + query),
        }
    }
}

fn escaped_slash_at(b: &[u8], i: usize) -> bool {
    b[i] == b'%'
        && i + 2 < b.len()
        && matches!(
            (b[i + 1], b[i + 2].to_ascii_uppercase()),
            (b'2', b'F') | (b'5', b'C')
        )
}

fn has_escaped_slash(path: &str) -> bool {
    let b = path.as_bytes();
    (0..b.len().saturating_sub(2)).any(|i| escaped_slash_at(b, i))
}

/// `%2F` → `/`, `%5C` → `\` (either hex case).
fn unescape_slashes(path: &str) -> String {
    let b = path.as_bytes();
    let mut out = String::with_capacity(path.len());
    let mut i = 0;
    while i < b.len() {
        if escaped_slash_at(b, i) {
            out.push(if b[i + 1] == b'2' { '/' } else { '\\' });
            i += 3;
        } else {
            out.push(b[i] as char);
            i += 1;
        }
    }
    out
}

fn hex(c: u8) -> Option<u8> {
    (c as char).to_digit(16).map(|d| d as u8)
}

fn unreserved(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_' | b'~')
}

/// Bytes Chromium escapes in a path (besides controls, space and non-ASCII).
fn escaped_in_path(c: u8) -> bool {
    matches!(c, b'"' | b'<' | b'>' | b'`' | b'{' | b'}' | b'|' | b'^')
}

/// Chromium's path canonicalization as Envoy uses it: each segment is canonicalized
/// (unreserved escapes decoded, other valid escapes kept as sent, unsafe bytes escaped), `\`
/// separates segments like `/`, and `.` / `..` segments (also spelled with `%2e`) are
/// resolved; `..` above the root stays at the root.
pub fn canonical_path(path: &str) -> String {
    let b = path.as_bytes();
    let mut out: Vec<u8> = Vec::with_capacity(b.len() + 8);
    // Start offsets in `out` of the segments written so far (each begins after a '/').
    let mut segments: Vec<usize> = Vec::new();
    let mut seg = Vec::with_capacity(32);
    let mut i = 0;
    let mut at_start = true;
    loop {
        let end = i >= b.len();
        let c = if end { b'/' } else { b[i] };
        if c == b'/' || c == b'\\' {
            if at_start {
                // The leading separator.
                at_start = false;
                out.push(b'/');
                if end {
                    break;
                }
                i += 1;
                continue;
            }
            match seg.as_slice() {
                b"." => {
                    // Drop it; a trailing "." leaves the directory ("/a/." → "/a/").
                }
                b".." => {
                    if let Some(start) = segments.pop() {
                        out.truncate(start);
                    }
                }
                _ => {
                    segments.push(out.len());
                    out.extend_from_slice(&seg);
                    if !end {
                        out.push(b'/');
                    }
                }
            }
            seg.clear();
            if end {
                break;
            }
            i += 1;
            continue;
        }
        if at_start {
            // No leading separator (not origin-form): canonical paths start with one.
            at_start = false;
            out.push(b'/');
        }
        if c == b'%'
            && i + 2 < b.len()
            && let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2]))
        {
            let v = h * 16 + l;
            if unreserved(v) {
                seg.push(v);
            } else {
                seg.extend_from_slice(&b[i..i + 3]);
            }
            i += 3;
            continue;
        }
        if c <= 0x20 || c >= 0x7f || escaped_in_path(c) {
            seg.extend_from_slice(format!("%{c:02X}").as_bytes());
        } else {
            seg.push(c);
        }
        i += 1;
    }
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// Adjacent slashes become one.
pub fn merge_slashes(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    let mut prev = '\0';
    for c in path.chars() {
        if !(c == '/' && prev == '/') {
            out.push(c);
        }
        prev = c;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(normalize: bool, merge: bool, esc: EscapedSlashesAction) -> PathOptions {
        PathOptions {
            normalize,
            merge_slashes: merge,
            escaped_slashes: esc,
        }
    }

    fn out(o: &PathOptions, p: &str) -> String {
        match o.apply(p) {
            Normalized::Path(s) => s,
            Normalized::Unchanged => p.to_string(),
            other => format!("{other:?}"),
        }
    }

    /// Envoy 1.40 with `normalize_path: true` (read from its upstream's request lines).
    #[test]
    fn normalize_path_matches_envoy() {
        let o = opts(true, false, EscapedSlashesAction::KeepUnchanged);
        for (input, envoy) in [
            ("/a/./b", "/a/b"),
            ("/a/../b", "/b"),
            ("/..", "/"),
            ("/a/b/..", "/a/"),
            ("/a/b/../", "/a/"),
            ("/a/%2e/b", "/a/b"),
            ("/a/%2E%2E/b", "/b"),
            ("/a//b", "/a//b"),
            ("//a///b?x=//y", "//a///b?x=//y"),
            ("/a%2Fb", "/a%2Fb"),
            ("/a%5cb", "/a%5cb"),
            ("/%41%7e%7E", "/A~~"),
            ("/a%20b", "/a%20b"),
            ("/a%zzb", "/a%zzb"),
            ("/a%2", "/a%2"),
            ("/a\\b", "/a/b"),
            ("/a/b?q=/../", "/a/b?q=/../"),
            ("/a/./b/../c?x", "/a/c?x"),
            ("/a/%2e%2e%2fb", "/a/..%2fb"),
            ("/A%3Ab", "/A%3Ab"),
            ("/a;b/../c", "/c"),
            ("/a/b/%2e%2e", "/a/"),
            ("/%61", "/a"),
            ("/a%25b", "/a%25b"),
            ("/a%252Fb", "/a%252Fb"),
            ("/a\"b", "/a%22b"),
            ("/a{b}", "/a%7Bb%7D"),
            ("/a`b", "/a%60b"),
            ("/a|b", "/a%7Cb"),
            ("/a^b", "/a%5Eb"),
            ("/", "/"),
            ("/a/", "/a/"),
            ("/a/.", "/a/"),
        ] {
            assert_eq!(out(&o, input), envoy, "{input}");
        }
    }

    #[test]
    fn merge_slashes_matches_envoy() {
        let o = opts(false, true, EscapedSlashesAction::KeepUnchanged);
        assert_eq!(out(&o, "//a///b?x=//y"), "/a/b?x=//y");
        assert_eq!(out(&o, "/a/./b"), "/a/./b");
        assert!(matches!(o.apply("/a/b"), Normalized::Unchanged));
    }

    #[test]
    fn escaped_slashes_actions_match_envoy() {
        let fwd = opts(false, false, EscapedSlashesAction::UnescapeAndForward);
        assert_eq!(out(&fwd, "/a%2fb"), "/a/b");
        assert_eq!(out(&fwd, "/a%5cb"), "/a\\b");
        assert_eq!(out(&fwd, "/%2F%2Fa"), "///a");
        assert_eq!(out(&fwd, "/a%252Fb"), "/a%252Fb");
        let rej = opts(false, false, EscapedSlashesAction::RejectRequest);
        assert_eq!(rej.apply("/a%2Fb"), Normalized::Reject);
        assert_eq!(rej.apply("/a%20b"), Normalized::Unchanged);
        let redir = opts(true, true, EscapedSlashesAction::UnescapeAndRedirect);
        assert_eq!(
            redir.apply("/a/%2e%2e%2fb?q"),
            Normalized::Redirect("/a/%2e%2e/b?q".into())
        );
        // All three, in Envoy's order: unescape, normalize, merge.
        let all = opts(true, true, EscapedSlashesAction::UnescapeAndForward);
        assert_eq!(out(&all, "/a/%2e%2e%2fb"), "/b");
        assert_eq!(out(&all, "/%2F%2Fa"), "/a");
        assert_eq!(out(&all, "/a%5Cb"), "/a/b");
        assert_eq!(out(&all, "//a///b?x=//y"), "/a/b?x=//y");
    }

    #[test]
    fn hostile_paths_never_panic() {
        let o = opts(true, true, EscapedSlashesAction::UnescapeAndForward);
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let alphabet = b"/.%2e5cfF\\a?%";
        for _ in 0..20_000 {
            let n = (seed % 12) as usize;
            let mut p = String::from("/");
            for _ in 0..n {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                p.push(alphabet[(seed % alphabet.len() as u64) as usize] as char);
            }
            let r = o.apply(&p);
            if let Normalized::Path(s) = r {
                assert!(s.starts_with('/'), "{p:?} -> {s:?}");
            }
        }
    }
}
