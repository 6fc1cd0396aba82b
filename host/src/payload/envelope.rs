//! The bytes of an envelope as they arrive. A small envelope grows in a
//! heap buffer. One past [`MAP_ABOVE`] moves into an anonymous mapping as
//! large as the envelope may get: it is never copied again as it grows,
//! and when the last [`Bytes`] sliced from it (the guest's request body is
//! one) is dropped, it is unmapped, so the memory goes back to the OS at once.
//! Why: the allocator keeps freed memory for reuse, and an envelope can be
//! 14 MB; a few of them would otherwise stay resident long after.

use bytes::Bytes;
use memmap2::MmapMut;

/// Envelopes up to this size stay on the heap.
const MAP_ABOVE: usize = 256 << 10;

/// An envelope's bytes, at most `limit` of them.
pub(crate) struct EnvelopeBuffer {
    bytes: Held,
    limit: usize,
}

enum Held {
    Heap(Vec<u8>),
    Mapped { map: MmapMut, len: usize },
}

/// The envelope is over its limit.
#[derive(Debug)]
pub(crate) struct OverLimit;

impl EnvelopeBuffer {
    /// An empty buffer for at most `limit` bytes.
    pub(crate) fn new(limit: usize) -> Self {
        Self {
            bytes: Held::Heap(Vec::new()),
            limit,
        }
    }

    /// Appends `data`, or fails when the envelope would pass its limit.
    pub(crate) fn extend(&mut self, data: &[u8]) -> Result<(), OverLimit> {
        let len = self.len() + data.len();
        if len > self.limit {
            return Err(OverLimit);
        }
        if let Held::Heap(heap) = &self.bytes
            && len > MAP_ABOVE
        {
            // If no mapping can be had, the heap serves.
            if let Ok(mut map) = MmapMut::map_anon(self.limit) {
                map[..heap.len()].copy_from_slice(heap);
                self.bytes = Held::Mapped {
                    len: heap.len(),
                    map,
                };
            }
        }
        match &mut self.bytes {
            Held::Heap(heap) => heap.extend_from_slice(data),
            Held::Mapped { map, len: used } => {
                map[*used..len].copy_from_slice(data);
                *used = len;
            }
        }
        Ok(())
    }

    /// The bytes, shared: slices of them keep the buffer alive.
    pub(crate) fn into_bytes(self) -> Bytes {
        match self.bytes {
            Held::Heap(heap) => Bytes::from(heap),
            Held::Mapped { .. } => Bytes::from_owner(self),
        }
    }

    /// How many bytes it holds.
    pub(crate) fn len(&self) -> usize {
        match &self.bytes {
            Held::Heap(heap) => heap.len(),
            Held::Mapped { len, .. } => *len,
        }
    }
}

impl AsRef<[u8]> for EnvelopeBuffer {
    fn as_ref(&self) -> &[u8] {
        match &self.bytes {
            Held::Heap(heap) => heap,
            Held::Mapped { map, len } => &map[..*len],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_are_kept_in_order_across_the_move_to_a_mapping() {
        let mut buffer = EnvelopeBuffer::new(4 * MAP_ABOVE);
        let mut expected = Vec::new();
        for n in 0..3 * MAP_ABOVE / 1000 {
            let chunk: Vec<u8> = (0..1000).map(|i| (n + i) as u8).collect();
            buffer.extend(&chunk).expect("within the limit");
            expected.extend_from_slice(&chunk);
        }
        assert!(matches!(buffer.bytes, Held::Mapped { .. }));
        assert_eq!(buffer.as_ref(), expected.as_slice());
        let bytes = buffer.into_bytes();
        assert_eq!(bytes, expected);
    }

    #[test]
    fn the_limit_holds_on_the_heap_and_in_a_mapping() {
        let mut small = EnvelopeBuffer::new(10);
        small.extend(b"0123456789").expect("exactly the limit");
        assert!(small.extend(b"x").is_err());
        assert_eq!(small.len(), 10);

        let mut large = EnvelopeBuffer::new(MAP_ABOVE + 10);
        large
            .extend(&vec![1; MAP_ABOVE + 10])
            .expect("exactly the limit");
        assert!(large.extend(b"x").is_err());
    }
}
