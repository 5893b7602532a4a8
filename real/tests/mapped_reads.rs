//! FsDisk's reads through mappings: lent without a copy, never stale, never past a
//! file's end, and bounded in number whatever the store reads.

use std::borrow::Cow;

use rmq_model::store::{Disk, DiskError};
use rmq_real::fs_disk::{FsDisk, MAX_MAPPED_FILES};

fn disk() -> (tempfile::TempDir, FsDisk) {
    let tmp = tempfile::tempdir().unwrap();
    let fs = FsDisk::open(tmp.path()).unwrap();
    (tmp, fs)
}

/// Distinct bytes for each position and salt, so a stale or shifted read shows.
fn pattern(len: usize, salt: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(salt))
        .collect()
}

fn past_end(r: Result<Cow<'_, [u8]>, DiskError>) -> (u64, u64, u64) {
    match r {
        Err(DiskError::PastEnd {
            offset,
            len,
            file_len,
            ..
        }) => (offset, len, file_len),
        other => panic!("expected PastEnd, got {other:?}"),
    }
}

#[test]
fn reads_are_lent_from_the_mapping_and_see_later_writes() {
    let (_tmp, mut fs) = disk();
    fs.create("f").unwrap();
    fs.write("f", 0, &pattern(4096, 1)).unwrap();
    let bytes = fs.read("f", 100, 20).unwrap();
    assert!(matches!(bytes, Cow::Borrowed(_)));
    assert_eq!(&*bytes, &pattern(4096, 1)[100..120]);
    assert_eq!(fs.mapped_files(), (1, 0));

    // A write inside the mapped range is seen through the same mapping.
    fs.write("f", 110, b"overwritten").unwrap();
    let bytes = fs.read("f", 100, 20).unwrap();
    assert!(matches!(bytes, Cow::Borrowed(_)));
    assert_eq!(&bytes[..10], &pattern(4096, 1)[100..110]);
    assert_eq!(&bytes[10..], b"overwritte");
    assert_eq!(fs.mapped_files(), (1, 0));
}

#[test]
fn a_file_that_grew_is_mapped_again_and_earlier_slices_stay_valid() {
    let (_tmp, mut fs) = disk();
    fs.create("log").unwrap();
    fs.write("log", 0, &pattern(1000, 2)).unwrap();
    assert_eq!(&*fs.read("log", 0, 1000).unwrap(), &pattern(1000, 2)[..]);
    // Grows by a write and by set_len; neither unmaps.
    fs.write("log", 1000, &pattern(1000, 3)).unwrap();
    fs.set_len("log", 3000).unwrap();
    assert_eq!(fs.mapped_files(), (1, 0));

    let early = fs.read("log", 0, 1000).unwrap();
    // Past the first mapping: measured, mapped again, the old mapping retired.
    let grown = fs.read("log", 1000, 2000).unwrap();
    assert!(matches!(grown, Cow::Borrowed(_)));
    assert_eq!(&grown[..1000], &pattern(1000, 3)[..]);
    assert!(grown[1000..].iter().all(|&b| b == 0));
    assert_eq!(fs.mapped_files(), (1, 1));
    // The slice lent from the retired mapping still reads what it did.
    assert_eq!(&*early, &pattern(1000, 2)[..]);
    past_end(fs.read("log", 2999, 2));

    // The next `&mut` call unmaps the retired mapping.
    fs.write("log", 3000, b"x").unwrap();
    assert_eq!(fs.mapped_files(), (1, 0));
    assert_eq!(&*fs.read("log", 2999, 2).unwrap(), b"\0x");
}

#[test]
fn a_shrunk_file_reads_past_its_end_as_before() {
    let (_tmp, mut fs) = disk();
    fs.create("f").unwrap();
    fs.write("f", 0, &pattern(8192, 4)).unwrap();
    assert_eq!(fs.read("f", 8000, 192).unwrap().len(), 192);
    fs.set_len("f", 50).unwrap();
    assert_eq!(fs.mapped_files(), (0, 0));
    assert_eq!(past_end(fs.read("f", 8000, 192)), (8000, 192, 50));
    assert_eq!(past_end(fs.read("f", 40, 20)), (40, 20, 50));
    assert_eq!(&*fs.read("f", 0, 50).unwrap(), &pattern(50, 4)[..]);
    // Grown back with zeros, not with the bytes the cut removed.
    fs.set_len("f", 100).unwrap();
    assert!(fs.read("f", 50, 50).unwrap().iter().all(|&b| b == 0));
}

#[test]
fn empty_files_are_read_without_a_mapping() {
    let (_tmp, mut fs) = disk();
    fs.create("empty").unwrap();
    assert_eq!(fs.read("empty", 0, 0).unwrap().len(), 0);
    assert_eq!(past_end(fs.read("empty", 0, 1)), (0, 1, 0));
    assert_eq!(past_end(fs.read("empty", 1, 0)), (1, 0, 0));
    assert_eq!(past_end(fs.read("empty", u64::MAX, 2)), (u64::MAX, 2, 0));
    assert_eq!(fs.mapped_files(), (0, 0));
    // Read through the mapping's fast path too: past the end is the same answer.
    fs.write("empty", 0, b"abc").unwrap();
    assert_eq!(&*fs.read("empty", 0, 3).unwrap(), b"abc");
    assert_eq!(fs.read("empty", 3, 0).unwrap().len(), 0);
    assert_eq!(past_end(fs.read("empty", 2, 2)), (2, 2, 3));
    assert_eq!(past_end(fs.read("empty", u64::MAX, 2)), (u64::MAX, 2, 3));
}

#[test]
fn deleted_and_renamed_files_are_not_read_through_old_mappings() {
    let (_tmp, mut fs) = disk();
    fs.create("dir/a").unwrap();
    fs.write("dir/a", 0, &pattern(512, 5)).unwrap();
    fs.create("dir/b").unwrap();
    fs.write("dir/b", 0, &pattern(512, 6)).unwrap();
    assert_eq!(&*fs.read("dir/a", 0, 512).unwrap(), &pattern(512, 5)[..]);
    assert_eq!(&*fs.read("dir/b", 0, 512).unwrap(), &pattern(512, 6)[..]);
    assert_eq!(fs.mapped_files(), (2, 0));

    // `b` is replaced by `a`: reading `b` gives `a`'s bytes, `a` is gone.
    fs.rename("dir/a", "dir/b").unwrap();
    assert_eq!(fs.mapped_files(), (0, 0));
    assert_eq!(&*fs.read("dir/b", 0, 512).unwrap(), &pattern(512, 5)[..]);
    assert!(matches!(
        fs.read("dir/a", 0, 1),
        Err(DiskError::NotFound { .. })
    ));

    fs.delete("dir/b").unwrap();
    assert_eq!(fs.mapped_files(), (0, 0));
    assert!(matches!(
        fs.read("dir/b", 0, 1),
        Err(DiskError::NotFound { .. })
    ));
    // A new file under the old name is read, not the deleted one.
    fs.create("dir/b").unwrap();
    fs.write("dir/b", 0, &pattern(100, 7)).unwrap();
    assert_eq!(&*fs.read("dir/b", 0, 100).unwrap(), &pattern(100, 7)[..]);
    assert_eq!(past_end(fs.read("dir/b", 0, 512)), (0, 512, 100));
}

#[test]
fn mappings_stay_bounded_and_reads_beyond_the_bound_still_work() {
    let (_tmp, mut fs) = disk();
    let n = 2 * MAX_MAPPED_FILES + 44;
    let path = |i: usize| format!("many/{i:05}");
    for i in 0..n {
        fs.create(&path(i)).unwrap();
        fs.write(&path(i), 0, &pattern(64, i as u8)).unwrap();
    }
    // Every slice held at once: evicted mappings must stay mapped while lent, and once
    // both bounds are reached the reads are copies.
    let held: Vec<Cow<'_, [u8]>> = (0..n).map(|i| fs.read(&path(i), 0, 64).unwrap()).collect();
    let (live, retired) = fs.mapped_files();
    assert_eq!(live, MAX_MAPPED_FILES);
    assert_eq!(retired, MAX_MAPPED_FILES);
    let copies = held.iter().filter(|b| matches!(b, Cow::Owned(_))).count();
    assert_eq!(copies, n - 2 * MAX_MAPPED_FILES);
    for (i, bytes) in held.iter().enumerate() {
        assert_eq!(&bytes[..], &pattern(64, i as u8)[..], "file {i}");
    }
    drop(held);

    // A `&mut` call unmaps the retired ones; reading everything again stays bounded.
    fs.write(&path(0), 64, b"+").unwrap();
    assert_eq!(fs.mapped_files(), (MAX_MAPPED_FILES, 0));
    for i in 0..n {
        let bytes = fs.read(&path(i), 0, 64).unwrap();
        assert_eq!(&bytes[..], &pattern(64, i as u8)[..], "file {i}");
        drop(bytes);
        let (live, retired) = fs.mapped_files();
        assert!(live <= MAX_MAPPED_FILES, "{live} live mappings");
        assert!(retired <= MAX_MAPPED_FILES, "{retired} retired mappings");
    }
}
