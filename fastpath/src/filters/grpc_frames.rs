//! Counting gRPC's length-prefixed messages in a body as it streams by (`grpc_stats`'
//! `request_message_count` / `response_message_count`), as Envoy's `Grpc::FrameInspector`
//! does: a message counts when its first prefix byte (the flag) is seen, so a message split
//! across DATA frames counts once, in the frame that starts it. Hand-written: a five-state
//! scanner that skips message payloads without copying them (no library frames a body it
//! does not own).

/// Where the scanner is within the stream of `flag (1) | length (4, big-endian) | payload`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// At a message's flag byte.
    Flag,
    /// At length byte `0..4`.
    Length(u8),
    /// Within a payload.
    Payload,
}

/// The message counter of one direction of one call.
#[derive(Debug, Clone)]
pub struct MessageCounter {
    state: State,
    /// The length read so far (`Length`) or the payload bytes left (`Payload`).
    length: u32,
}

impl Default for MessageCounter {
    fn default() -> Self {
        MessageCounter {
            state: State::Flag,
            length: 0,
        }
    }
}

impl MessageCounter {
    /// Scans the next bytes of the body; returns how many messages started in them.
    pub fn inspect(&mut self, mut data: &[u8]) -> u64 {
        let mut started = 0;
        while !data.is_empty() {
            match self.state {
                State::Flag => {
                    started += 1;
                    self.length = 0;
                    self.state = State::Length(0);
                    data = &data[1..];
                }
                State::Length(i) => {
                    self.length = (self.length << 8) | u32::from(data[0]);
                    data = &data[1..];
                    self.state = if i < 3 {
                        State::Length(i + 1)
                    } else if self.length == 0 {
                        State::Flag
                    } else {
                        State::Payload
                    };
                }
                State::Payload => {
                    let skip = data.len().min(self.length as usize);
                    self.length -= skip as u32;
                    data = &data[skip..];
                    if self.length == 0 {
                        self.state = State::Flag;
                    }
                }
            }
        }
        started
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(payload: &[u8]) -> Vec<u8> {
        let mut m = vec![0];
        m.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        m.extend_from_slice(payload);
        m
    }

    #[test]
    fn several_messages_in_one_frame_count_each() {
        let mut body = message(b"abc");
        body.extend(message(b"defgh"));
        body.extend(message(b"i"));
        let mut c = MessageCounter::default();
        assert_eq!(c.inspect(&body), 3);
        assert_eq!(c.inspect(&message(b"next")), 1);
    }

    #[test]
    fn a_message_split_across_frames_counts_once_where_it_starts() {
        let mut body = message(&[7; 300]);
        body.extend(message(b"xy"));
        let mut c = MessageCounter::default();
        // Split inside the payload, then inside the second prefix, byte by byte at the end.
        assert_eq!(c.inspect(&body[..100]), 1);
        assert_eq!(c.inspect(&body[100..305]), 0);
        assert_eq!(c.inspect(&body[305..307]), 1);
        let counts: Vec<u64> = body[307..].iter().map(|b| c.inspect(&[*b])).collect();
        assert_eq!(counts.iter().sum::<u64>(), 0);
        assert_eq!(c.inspect(&message(b"")), 1);
    }

    #[test]
    fn a_prefix_split_byte_by_byte_counts_at_its_flag() {
        let body = message(b"hello");
        let mut c = MessageCounter::default();
        let counts: Vec<u64> = body.iter().map(|b| c.inspect(&[*b])).collect();
        assert_eq!(counts[0], 1);
        assert_eq!(counts[1..].iter().sum::<u64>(), 0);
    }

    #[test]
    fn zero_length_messages_count_and_end_at_their_prefix() {
        let mut body = message(b"");
        body.extend(message(b""));
        body.extend(message(b"z"));
        body.extend(message(b""));
        let mut c = MessageCounter::default();
        assert_eq!(c.inspect(&body), 4);
        assert_eq!(c.state, State::Flag);
    }

    #[test]
    fn compressed_flag_and_empty_input() {
        let mut body = message(b"abc");
        body[0] = 1;
        let mut c = MessageCounter::default();
        assert_eq!(c.inspect(&[]), 0);
        assert_eq!(c.inspect(&body), 1);
        assert_eq!(c.inspect(&[]), 0);
    }
}
