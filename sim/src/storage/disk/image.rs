//! One side of an inode's bytes — the page cache or the media — kept as the bytes
//! written so far and a zero tail that costs no memory.
//!
//! The store preallocates every commit-log and consume-queue file at full size and
//! fills it front to back, so most of a young file is zeros. Holding those zeros for
//! real cost a fill of the whole file at creation and a copy of every zero page at its
//! first sync; here they are only a length. An [`Image`] behaves exactly as a
//! `Vec<u8>` of `len()` bytes would: reads past the written prefix see zeros.

use std::borrow::Cow;
use std::ops::Range;

use rmq_model::store::mem_disk::write_into;

#[derive(Clone, Debug, Default)]
pub(super) struct Image {
    /// The first bytes of the file; never longer than `len`.
    written: Vec<u8>,
    /// The file's length: bytes from `written.len()` up to here are zeros.
    len: usize,
}

impl Image {
    pub(super) fn len(&self) -> usize {
        self.len
    }

    pub(super) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The written prefix (up to [`Image::written_len`]), borrowed as it is.
    pub(super) fn written(&self) -> &[u8] {
        &self.written
    }

    /// The bytes of `range`, which must lie within `len()`: borrowed where they are
    /// held, zeros made up for the tail.
    pub(super) fn get(&self, range: Range<usize>) -> Cow<'_, [u8]> {
        debug_assert!(range.start <= range.end && range.end <= self.len);
        let held = self.written.len();
        if range.end <= held {
            return Cow::Borrowed(&self.written[range]);
        }
        let mut out = vec![0; range.len()];
        if range.start < held {
            out[..held - range.start].copy_from_slice(&self.written[range.start..]);
        }
        Cow::Owned(out)
    }

    /// The whole file.
    pub(super) fn bytes(&self) -> Cow<'_, [u8]> {
        self.get(0..self.len)
    }

    /// Cuts the file or grows it with zeros (`Vec::resize(len, 0)`). Grown, it keeps
    /// room to be written up to its end without reallocating (the zeros are not
    /// filled in: untouched room costs nothing).
    pub(super) fn set_len(&mut self, len: usize) {
        self.written.truncate(len);
        self.reserve(len);
        self.len = len;
    }

    /// Room to hold the first `len` bytes without reallocating: a file written page
    /// by page would otherwise be copied at every growth.
    pub(super) fn reserve(&mut self, len: usize) {
        self.written
            .reserve_exact(len.saturating_sub(self.written.len()));
    }

    /// Writes `data` at `offset`, growing the file if it reaches past the end (a gap
    /// reads as zeros), as [`write_into`] does on a plain vector.
    pub(super) fn write(&mut self, offset: usize, data: &[u8]) {
        if !data.is_empty() {
            write_into(&mut self.written, offset as u64, data);
        }
        self.len = self.len.max(offset + data.len());
    }

    /// Writes `len` bytes at `offset`: `head`, then zeros up to `len` (a write of
    /// `head` padded with zeros, without holding zeros that land in the tail).
    pub(super) fn write_padded(&mut self, offset: usize, head: &[u8], len: usize) {
        debug_assert!(head.len() <= len);
        self.write(offset, head);
        let (start, end) = (offset + head.len(), offset + len);
        let held = self.written.len();
        if start < held {
            self.written[start..end.min(held)].fill(0);
        }
        self.len = self.len.max(end);
    }

    /// Writes `src`'s bytes of `range` at `offset` (a write of `&src[range]`), without
    /// holding for real the part that is `src`'s zero tail where this image's own tail
    /// already reads as zeros.
    pub(super) fn copy_from(&mut self, offset: usize, src: &Image, range: Range<usize>) {
        debug_assert!(range.start <= range.end && range.end <= src.len);
        let held = src.written.len();
        let head = if range.start < held {
            &src.written[range.start..range.end.min(held)]
        } else {
            &[]
        };
        self.write_padded(offset, head, range.len());
    }

    /// Whether `self[a]` and `other[b]` hold the same bytes (without making up the
    /// zeros of either tail).
    pub(super) fn same_bytes(&self, a: Range<usize>, other: &Image, b: Range<usize>) -> bool {
        debug_assert!(a.end <= self.len && b.end <= other.len);
        let len = a.len();
        if len != b.len() {
            return false;
        }
        // How many bytes from the start of each range are held; the rest are zeros.
        let (a_at, b_at) = (
            a.start.min(self.written.len()),
            b.start.min(other.written.len()),
        );
        let held_a = (self.written.len() - a_at).min(len);
        let held_b = (other.written.len() - b_at).min(len);
        let both = held_a.min(held_b);
        let is_zero = |bytes: &[u8]| bytes.iter().all(|&byte| byte == 0);
        self.written[a_at..a_at + both] == other.written[b_at..b_at + both]
            && is_zero(&self.written[a_at + both..a_at + held_a])
            && is_zero(&other.written[b_at + both..b_at + held_b])
    }

    /// Flips one bit of the byte at `offset`, which must lie within `len()`.
    pub(super) fn flip_bit(&mut self, offset: usize, bit: u8) {
        debug_assert!(offset < self.len);
        if offset >= self.written.len() {
            self.written.resize(offset + 1, 0);
        }
        self.written[offset] ^= 1 << bit;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Applies the same steps to an image and to a plain vector; they must agree.
    fn agree(image: &Image, plain: &[u8]) {
        assert_eq!(image.len(), plain.len());
        assert!(image.written().len() <= image.len());
        assert_eq!(&*image.bytes(), plain);
    }

    #[test]
    fn an_image_reads_as_the_plain_vector_it_stands_for() {
        let mut image = Image::default();
        let mut plain: Vec<u8> = Vec::new();
        image.set_len(10_000);
        plain.resize(10_000, 0);
        agree(&image, &plain);
        assert_eq!(image.written().len(), 0, "preallocation holds nothing");
        image.write(100, b"abc");
        write_into(&mut plain, 100, b"abc");
        agree(&image, &plain);
        assert_eq!(&*image.get(99..104), b"\0abc\0");
        image.write(12_000, b"");
        write_into(&mut plain, 12_000, b"");
        agree(&image, &plain);
        image.flip_bit(5_000, 3);
        plain[5_000] ^= 1 << 3;
        agree(&image, &plain);
        image.set_len(101);
        plain.truncate(101);
        agree(&image, &plain);
        image.set_len(4_096);
        plain.resize(4_096, 0);
        agree(&image, &plain);
    }

    #[test]
    fn copies_carry_zeros_over_held_bytes_and_grow_the_target() {
        let mut src = Image::default();
        src.set_len(8_192);
        src.write(0, &[7; 100]);
        let mut dst = Image::default();
        dst.write(0, &[9; 300]);
        let mut plain = vec![9u8; 300];
        let src_plain = src.bytes().into_owned();
        dst.copy_from(50, &src, 60..4_096);
        write_into(&mut plain, 50, &src_plain[60..4_096]);
        agree(&dst, &plain);
        assert_eq!(dst.written().len(), 300, "the zero tail stayed a length");
        dst.copy_from(9_000, &src, 8_192..8_192);
        write_into(&mut plain, 9_000, &[]);
        agree(&dst, &plain);
        dst.copy_from(100, &src, 200..300);
        write_into(&mut plain, 100, &src_plain[200..300]);
        agree(&dst, &plain);
        assert!(dst.same_bytes(
            0..50,
            &Image {
                written: vec![9; 50],
                len: 50
            },
            0..50
        ));
        assert!(!dst.same_bytes(
            0..51,
            &Image {
                written: vec![9; 51],
                len: 51
            },
            0..51
        ));
        // Held zeros on one side against the tail of the other.
        let mut zeros_held = Image::default();
        zeros_held.write(0, &[0; 5_000]);
        let mut tail = Image::default();
        tail.set_len(6_000);
        tail.write(0, &[0; 10]);
        assert!(zeros_held.same_bytes(4_000..5_000, &tail, 4_000..5_000));
        assert!(tail.same_bytes(0..4_096, &zeros_held, 0..4_096));
        assert!(!tail.same_bytes(0..4_096, &zeros_held, 0..4_095));
        zeros_held.flip_bit(4_500, 0);
        assert!(!zeros_held.same_bytes(4_000..5_000, &tail, 4_000..5_000));
        assert!(!tail.same_bytes(4_000..5_000, &zeros_held, 4_000..5_000));
        // Both ranges wholly in the tails.
        assert!(tail.same_bytes(
            5_000..6_000,
            &Image {
                written: vec![],
                len: 7_000
            },
            6_000..7_000
        ));
    }
}
