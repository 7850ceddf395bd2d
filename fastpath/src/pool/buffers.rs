//! Per-worker pool of I/O buffers: connections hold a buffer only while bytes are in flight.
use std::cell::RefCell;

/// Size of a fresh buffer; buffers grow past it only for large heads.
pub const BUF_SIZE: usize = 8 * 1024;
/// Buffers that grew beyond this are freed instead of pooled.
const MAX_POOLED_CAPACITY: usize = 64 * 1024;
/// Most buffers kept free per worker (512 KiB): a burst beyond it frees the rest, so a
/// proxy that once had thousands of requests in flight does not keep their buffers.
const MAX_FREE: usize = 64;

#[derive(Default)]
pub struct BufferPool {
    free: RefCell<Vec<Vec<u8>>>,
}

impl BufferPool {
    /// An empty buffer with at least `BUF_SIZE` capacity.
    pub fn get(&self) -> Vec<u8> {
        self.free
            .borrow_mut()
            .pop()
            .unwrap_or_else(|| Vec::with_capacity(BUF_SIZE))
    }

    pub fn put(&self, mut buf: Vec<u8>) {
        if buf.capacity() < BUF_SIZE || buf.capacity() > MAX_POOLED_CAPACITY {
            return;
        }
        let mut free = self.free.borrow_mut();
        if free.len() < MAX_FREE {
            buf.clear();
            free.push(buf);
        }
    }

    pub fn free_count(&self) -> usize {
        self.free.borrow().len()
    }
}
