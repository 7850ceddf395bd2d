//! Streaming chunked-body decoder: validates framing byte by byte and reports data runs, so
//! the proxy can forward validated bytes as they are (or only the data, for HTTP/1.0).
//! Hand-written: httparse only parses one chunk-size line and keeps no state across reads.
use std::ops::Range;

/// Longest chunk extension list accepted on one size line.
const MAX_EXTENSION: usize = 4096;
/// Largest trailer section accepted.
const MAX_TRAILERS: usize = 64 * 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChunkError {
    BadSize,
    SizeOverflow,
    BadExtension,
    BadLineEnd,
    BadTrailer,
}

/// States of the chunk grammar (RFC 9112 section 7.1), strict: no whitespace anywhere on a
/// size line, extensions as `;name[=token|"quoted"]`, trailers as `name:value` lines. The
/// bytes are forwarded as they are, so anything an upstream could read differently (BWS
/// around `;`, bare CR/LF, controls, a chunk not ended by CRLF) is an error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Start of a size line (no digit yet) or within the digits.
    Size {
        digits: u8,
    },
    /// Right after `;`: the first byte of an extension name.
    ExtNameStart,
    ExtName,
    /// Right after `=`: the first byte of an extension value.
    ExtValueStart,
    ExtToken,
    ExtQuoted,
    ExtQuotedPair,
    /// After a closing quote: `;` or the line end.
    ExtAfterQuoted,
    SizeLf,
    Data(u64),
    DataCr,
    DataLf,
    /// Start of a trailer line (or the final CRLF).
    TrailerStart,
    TrailerName,
    TrailerValue,
    TrailerLf,
    EndLf,
    Done,
}

#[derive(Clone, Debug)]
pub struct ChunkedDecoder {
    state: State,
    size: u64,
    ext_len: usize,
    trailer_len: usize,
}

impl Default for ChunkedDecoder {
    fn default() -> Self {
        Self::new()
    }
}

/// Result of one `decode` call.
#[derive(Debug, PartialEq, Eq)]
pub struct Step {
    /// Bytes of the input consumed (all validated).
    pub consumed: usize,
    /// Chunk data inside the consumed bytes (empty when none).
    pub data: Range<usize>,
    /// The last chunk and trailers are complete; bytes after `consumed` are not body.
    pub done: bool,
}

impl ChunkedDecoder {
    pub fn new() -> ChunkedDecoder {
        ChunkedDecoder {
            state: State::Size { digits: 0 },
            size: 0,
            ext_len: 0,
            trailer_len: 0,
        }
    }

    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Consumes framing bytes until it reaches chunk data (returned as one run), the end of
    /// the body, or the end of `input`.
    pub fn decode(&mut self, input: &[u8]) -> Result<Step, ChunkError> {
        let mut i = 0;
        while i < input.len() {
            if let State::Data(rem) = self.state {
                let take = rem.min((input.len() - i) as u64) as usize;
                let left = rem - take as u64;
                self.state = if left == 0 {
                    State::DataCr
                } else {
                    State::Data(left)
                };
                return Ok(Step {
                    consumed: i + take,
                    data: i..i + take,
                    done: false,
                });
            }
            if self.state == State::Done {
                break;
            }
            self.byte(input[i])?;
            i += 1;
        }
        Ok(Step {
            consumed: i,
            data: i..i,
            done: self.state == State::Done,
        })
    }

    /// Validates as much of `input` as belongs to the body: `(consumed, done)`.
    pub fn validate(&mut self, input: &[u8]) -> Result<(usize, bool), ChunkError> {
        let mut pos = 0;
        loop {
            let step = self.decode(&input[pos..])?;
            pos += step.consumed;
            if step.done || pos == input.len() {
                return Ok((pos, step.done));
            }
        }
    }

    fn byte(&mut self, b: u8) -> Result<(), ChunkError> {
        use super::headers::is_token;
        if matches!(
            self.state,
            State::ExtNameStart
                | State::ExtName
                | State::ExtValueStart
                | State::ExtToken
                | State::ExtQuoted
                | State::ExtQuotedPair
                | State::ExtAfterQuoted
        ) {
            self.ext_len += 1;
            if self.ext_len > MAX_EXTENSION {
                return Err(ChunkError::BadExtension);
            }
        }
        let ext_end = |b: u8| match b {
            b';' => Ok(State::ExtNameStart),
            b'\r' => Ok(State::SizeLf),
            _ => Err(ChunkError::BadExtension),
        };
        self.state = match self.state {
            State::Size { digits } => match b {
                b'0'..=b'9' | b'a'..=b'f' | b'A'..=b'F' => {
                    if digits >= 16 {
                        return Err(ChunkError::SizeOverflow);
                    }
                    let v = (b as char).to_digit(16).unwrap_or(0) as u64;
                    self.size = (self.size << 4) | v;
                    State::Size { digits: digits + 1 }
                }
                // No digit, or whitespace/sign/`x` where a digit or the line end belongs.
                _ if digits == 0 => return Err(ChunkError::BadSize),
                b';' => State::ExtNameStart,
                b'\r' => State::SizeLf,
                _ => return Err(ChunkError::BadSize),
            },
            State::ExtNameStart if is_token(b) => State::ExtName,
            State::ExtNameStart => return Err(ChunkError::BadExtension),
            State::ExtName if is_token(b) => State::ExtName,
            State::ExtName if b == b'=' => State::ExtValueStart,
            State::ExtName => ext_end(b)?,
            State::ExtValueStart if is_token(b) => State::ExtToken,
            State::ExtValueStart if b == b'"' => State::ExtQuoted,
            State::ExtValueStart => return Err(ChunkError::BadExtension),
            State::ExtToken if is_token(b) => State::ExtToken,
            State::ExtToken => ext_end(b)?,
            State::ExtQuoted => match b {
                b'"' => State::ExtAfterQuoted,
                b'\\' => State::ExtQuotedPair,
                b'\t' | b' ' | 0x21..=0x7e | 0x80..=0xff => State::ExtQuoted,
                _ => return Err(ChunkError::BadExtension),
            },
            State::ExtQuotedPair => match b {
                b'\t' | b' ' | 0x21..=0x7e | 0x80..=0xff => State::ExtQuoted,
                _ => return Err(ChunkError::BadExtension),
            },
            State::ExtAfterQuoted => ext_end(b)?,
            State::SizeLf => {
                if b != b'\n' {
                    return Err(ChunkError::BadLineEnd);
                }
                self.ext_len = 0;
                let size = std::mem::take(&mut self.size);
                if size == 0 {
                    State::TrailerStart
                } else {
                    State::Data(size)
                }
            }
            State::Data(_) => unreachable!("data is consumed in runs"),
            State::DataCr => match b {
                b'\r' => State::DataLf,
                _ => return Err(ChunkError::BadLineEnd),
            },
            State::DataLf => match b {
                b'\n' => State::Size { digits: 0 },
                _ => return Err(ChunkError::BadLineEnd),
            },
            State::TrailerStart => match b {
                b'\r' => State::EndLf,
                _ if is_token(b) => self.trailer(State::TrailerName)?,
                _ => return Err(ChunkError::BadTrailer),
            },
            State::TrailerName => match b {
                b':' => self.trailer(State::TrailerValue)?,
                _ if is_token(b) => self.trailer(State::TrailerName)?,
                _ => return Err(ChunkError::BadTrailer),
            },
            State::TrailerValue => match b {
                b'\r' => State::TrailerLf,
                b'\t' | b' ' | 0x21..=0x7e | 0x80..=0xff => self.trailer(State::TrailerValue)?,
                _ => return Err(ChunkError::BadTrailer),
            },
            State::TrailerLf => match b {
                b'\n' => State::TrailerStart,
                _ => return Err(ChunkError::BadLineEnd),
            },
            State::EndLf => match b {
                b'\n' => State::Done,
                _ => return Err(ChunkError::BadLineEnd),
            },
            State::Done => State::Done,
        };
        Ok(())
    }

    fn trailer(&mut self, next: State) -> Result<State, ChunkError> {
        self.trailer_len += 1;
        if self.trailer_len > MAX_TRAILERS {
            return Err(ChunkError::BadTrailer);
        }
        Ok(next)
    }
}
