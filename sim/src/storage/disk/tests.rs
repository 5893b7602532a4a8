//! SimDisk's own tests: durability, crashes and damage, seed for seed.

use rand::Rng;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rmq_model::store::disk::{Disk, SyncTarget};

use super::*;

const SEEDS: u64 = 64;

fn rng(seed: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed)
}

fn complete_all(d: &mut SimDisk) {
    while let Some((ticket, result)) = d.complete_next() {
        result.unwrap_or_else(|e| panic!("{ticket}: {e}"));
    }
}

/// A file whose name and bytes are both durable.
fn durable_file(d: &mut SimDisk, path: &str, bytes: &[u8]) {
    d.create(path).unwrap();
    d.write(path, 0, bytes).unwrap();
    d.request_sync(SyncTarget::File(path)).unwrap();
    d.request_sync(SyncTarget::Dir(parent_dir(path))).unwrap();
    complete_all(d);
}

fn pattern(len: usize, salt: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31) ^ salt)
        .collect()
}

fn durable_state(d: &SimDisk) -> BTreeMap<String, Vec<u8>> {
    d.durable_paths()
        .map(|p| (p.to_string(), d.durable_bytes(p).unwrap().to_vec()))
        .collect()
}

#[test]
fn synced_data_survives_power_cut_byte_for_byte() {
    let synced = pattern(3 * PAGE_SIZE_BYTES as usize + 100, 7);
    for seed in 0..SEEDS {
        let mut d = SimDisk::new();
        durable_file(&mut d, "log/0", &synced);
        // Unsynced appends may or may not land, but never touch what was synced.
        d.write("log/0", synced.len() as u64, &pattern(5000, 9))
            .unwrap();
        d.power_cut(&mut rng(seed));
        let after = d.read("log/0", 0, synced.len()).unwrap();
        assert_eq!(&*after, &synced[..], "seed {seed}");
        d.check_invariants();
    }
    let mut d = SimDisk::new();
    durable_file(&mut d, "f", &synced);
    d.power_cut(&mut rng(1));
    assert_eq!(d.cache_bytes("f").unwrap(), &synced[..]);
    assert_eq!(d.durable_bytes("f").unwrap(), &synced[..]);
}

#[test]
fn write_after_the_sync_request_is_not_covered_by_it() {
    let old = vec![0xAA; PAGE_SIZE_BYTES as usize];
    let new = vec![0xBB; PAGE_SIZE_BYTES as usize];
    let mut d = SimDisk::new();
    durable_file(&mut d, "f", &[]);
    d.write("f", 0, &old).unwrap();
    let ticket = d.request_sync(SyncTarget::File("f")).unwrap();
    d.write("f", 0, &new).unwrap();
    d.complete_sync(ticket).unwrap();
    assert_eq!(d.durable_bytes("f").unwrap(), &old[..]);
    assert_eq!(d.cache_bytes("f").unwrap(), &new[..]);
    d.check_invariants();
    // The page stays dirty: an OS crash leaves either whole version, nothing else.
    let mut seen = BTreeSet::new();
    for seed in 0..SEEDS {
        let mut crashed = d.clone();
        crashed.crash_os(&mut rng(seed));
        let bytes = crashed.read("f", 0, old.len()).unwrap().to_vec();
        assert!(bytes == old || bytes == new, "seed {seed}");
        seen.insert(bytes[0]);
    }
    assert_eq!(
        seen.len(),
        2,
        "both outcomes should occur over {SEEDS} seeds"
    );
    let ticket = d.request_sync(SyncTarget::File("f")).unwrap();
    d.complete_sync(ticket).unwrap();
    assert_eq!(d.durable_bytes("f").unwrap(), &new[..]);
}

#[test]
fn create_is_durable_only_after_a_dir_sync() {
    let mut lost_for_some_seed = false;
    for seed in 0..SEEDS {
        let mut d = SimDisk::new();
        d.create("q/a").unwrap();
        d.write("q/a", 0, b"data").unwrap();
        let ticket = d.request_sync(SyncTarget::File("q/a")).unwrap();
        d.complete_sync(ticket).unwrap();
        assert_eq!(d.durable_bytes("q/a"), None, "no durable name yet");
        let mut without = d.clone();
        without.crash_os(&mut rng(seed));
        lost_for_some_seed |= !without.exists("q/a");

        let ticket = d.request_sync(SyncTarget::Dir("q")).unwrap();
        d.complete_sync(ticket).unwrap();
        d.crash_os(&mut rng(seed));
        assert_eq!(&*d.read("q/a", 0, 4).unwrap(), b"data", "seed {seed}");
    }
    assert!(lost_for_some_seed);
}

#[test]
fn dir_sync_covers_only_ops_journaled_before_the_request() {
    let mut d = SimDisk::new();
    d.create("q/a").unwrap();
    let ticket = d.request_sync(SyncTarget::Dir("q")).unwrap();
    d.create("q/b").unwrap();
    d.complete_sync(ticket).unwrap();
    assert!(d.durable_bytes("q/a").is_some());
    assert!(d.durable_bytes("q/b").is_none());
    assert!(d.exists("q/b"));
}

#[test]
fn rename_over_a_durable_file_is_atomic_across_crashes() {
    let (old, new) = (pattern(6000, 1), pattern(7000, 2));
    let mut outcomes = BTreeSet::new();
    for seed in 0..SEEDS {
        let mut d = SimDisk::new();
        durable_file(&mut d, "cfg/offsets.json", &old);
        d.create("cfg/offsets.json.tmp").unwrap();
        d.write("cfg/offsets.json.tmp", 0, &new).unwrap();
        let ticket = d
            .request_sync(SyncTarget::File("cfg/offsets.json.tmp"))
            .unwrap();
        d.complete_sync(ticket).unwrap();
        d.rename("cfg/offsets.json.tmp", "cfg/offsets.json")
            .unwrap();
        assert_eq!(d.cache_bytes("cfg/offsets.json").unwrap(), &new[..]);
        d.power_cut(&mut rng(seed));
        let bytes = d
            .cache_bytes("cfg/offsets.json")
            .expect("target never missing");
        assert!(bytes == old || bytes == new, "seed {seed}: mixed content");
        outcomes.insert(bytes == new);
        d.check_invariants();
    }
    assert_eq!(outcomes.len(), 2, "both old and new should occur");
}

#[test]
fn a_crash_keeps_a_prefix_of_each_dir_journal() {
    // Creation order differs from name order, so a set that is a prefix in name
    // order but not in journal order would be caught.
    let order = ["d/3", "d/1", "d/4", "d/2"];
    let mut prefix_lens = BTreeSet::new();
    for seed in 0..SEEDS {
        let mut d = SimDisk::new();
        for path in order {
            d.create(path).unwrap();
        }
        d.crash_os(&mut rng(seed));
        let kept = order.iter().take_while(|p| d.exists(p)).count();
        for path in &order[kept..] {
            assert!(!d.exists(path), "seed {seed}: {path} kept after a gap");
        }
        prefix_lens.insert(kept);
    }
    assert_eq!(
        prefix_lens.len(),
        order.len() + 1,
        "every prefix length occurs"
    );
}

#[test]
fn power_cut_tears_pages_only_at_sector_seams() {
    let old = vec![0xAA; 2 * PAGE_SIZE_BYTES as usize];
    let new = vec![0xBB; old.len()];
    let mut torn = 0;
    for seed in 0..SEEDS {
        let mut d = SimDisk::new();
        durable_file(&mut d, "f", &old);
        d.write("f", 0, &new).unwrap();
        let mut os = d.clone();
        d.power_cut(&mut rng(seed));
        os.crash_os(&mut rng(seed));
        let bytes = d.cache_bytes("f").unwrap();
        for sector in bytes.chunks(SECTOR_SIZE_BYTES as usize) {
            assert!(
                sector.iter().all(|&b| b == sector[0]),
                "seed {seed}: torn sector"
            );
        }
        for page in os
            .cache_bytes("f")
            .unwrap()
            .chunks(PAGE_SIZE_BYTES as usize)
        {
            assert!(
                page.iter().all(|&b| b == page[0]),
                "seed {seed}: OS crash tore"
            );
        }
        torn += d.stats().pages_torn;
    }
    assert!(torn > 0, "power cuts should tear some page");
}

#[test]
fn same_seed_same_durable_state() {
    let build = || {
        let mut d = SimDisk::new();
        durable_file(&mut d, "a/x", &pattern(9000, 3));
        d.write("a/x", 100, &pattern(10_000, 4)).unwrap();
        d.create("a/y").unwrap();
        d.write("a/y", 0, &pattern(5000, 5)).unwrap();
        d.rename("a/y", "a/z").unwrap();
        d.set_len("a/x", 3000).unwrap();
        d
    };
    let run = |seed| {
        let mut d = build();
        d.power_cut(&mut rng(seed));
        durable_state(&d)
    };
    assert_eq!(run(42), run(42));
    assert!(
        (0..8).any(|seed| run(seed) != run(42)),
        "seeds should matter"
    );
}

#[test]
fn latent_error_fails_reads_until_its_page_reaches_the_media() {
    let mut d = SimDisk::new();
    durable_file(&mut d, "f", &pattern(1024, 0));
    d.add_latent_error("f", 1).unwrap();
    assert!(d.read("f", 0, 512).is_ok());
    assert!(matches!(d.read("f", 500, 20), Err(DiskError::Io { .. })));
    // Survives a crash: it is a defect of the media, not of the cache.
    d.crash_os(&mut rng(0));
    assert!(matches!(d.read("f", 1000, 1), Err(DiskError::Io { .. })));
    // A written page is served from the page cache, but the sector is only healed
    // once the page reaches the media: a crash before that brings the error back.
    d.write("f", 600, b"partial").unwrap();
    assert_eq!(&*d.read("f", 600, 7).unwrap(), b"partial");
    assert!(d.read("f", 0, 1024).is_ok());
    d.crash_process();
    assert!(
        d.read("f", 1000, 1).is_ok(),
        "the page cache survives a process crash"
    );
    let mut seen_error_after_os_crash = false;
    for seed in 0..16 {
        let mut e = d.clone();
        e.crash_os(&mut rng(seed));
        seen_error_after_os_crash |= e.read("f", 1000, 1).is_err();
    }
    assert!(
        seen_error_after_os_crash,
        "an unsynced rewrite must not heal the media"
    );
    d.request_sync(SyncTarget::File("f")).unwrap();
    complete_all(&mut d);
    d.crash_os(&mut rng(0));
    assert!(
        d.read("f", 0, 1024).is_ok(),
        "a synced rewrite remaps the sector"
    );
}

#[test]
fn a_lost_disk_fails_everything_until_replaced() {
    let mut d = SimDisk::new();
    durable_file(&mut d, "f", b"abc");
    let ticket = d.request_sync(SyncTarget::File("f")).unwrap();
    d.lose_disk();
    assert!(!d.exists("f"));
    assert!(matches!(d.read("f", 0, 1), Err(DiskError::Io { .. })));
    assert!(matches!(d.create("g"), Err(DiskError::Io { .. })));
    assert!(matches!(d.list(""), Err(DiskError::Io { .. })));
    assert!(matches!(
        d.request_sync(SyncTarget::Dir("")),
        Err(DiskError::Io { .. })
    ));
    assert!(matches!(d.complete_sync(ticket), Err(DiskError::Io { .. })));
    assert_eq!(d.rot(&mut rng(0), ""), None);
    d.replace_disk();
    assert!(d.list("").unwrap().is_empty());
    durable_file(&mut d, "g", b"new");
    assert_eq!(d.durable_bytes("g").unwrap(), &b"new"[..]);
    assert!(d.pending_syncs().is_empty());
}

#[test]
fn process_crash_keeps_the_unsynced_cache() {
    let mut d = SimDisk::new();
    d.create("f").unwrap();
    d.write("f", 0, b"unsynced").unwrap();
    d.request_sync(SyncTarget::File("f")).unwrap();
    d.crash_process();
    assert!(d.pending_syncs().is_empty());
    assert_eq!(&*d.read("f", 0, 8).unwrap(), b"unsynced");
    assert_eq!(d.durable_bytes("f"), None);
    d.request_sync(SyncTarget::File("f")).unwrap();
    d.request_sync(SyncTarget::Dir("")).unwrap();
    complete_all(&mut d);
    assert_eq!(d.durable_bytes("f").unwrap(), &b"unsynced"[..]);
}

#[test]
fn rot_flips_one_durable_bit_and_a_clean_page_in_the_cache() {
    let bytes = pattern(2 * PAGE_SIZE_BYTES as usize, 0);
    let mut d = SimDisk::new();
    durable_file(&mut d, "f", &bytes);
    d.write("f", 0, &bytes[..10]).unwrap(); // page 0 dirty, same bytes
    for seed in 0..SEEDS {
        let mut rotted = d.clone();
        let damage = rotted.rot(&mut rng(seed), "").unwrap();
        assert_eq!(damage.path, "f");
        let durable = rotted.durable_bytes("f").unwrap();
        let diff: Vec<usize> = (0..bytes.len())
            .filter(|&i| durable[i] != bytes[i])
            .collect();
        assert_eq!(diff, vec![damage.byte_offset as usize]);
        assert_eq!((durable[diff[0]] ^ bytes[diff[0]]).count_ones(), 1);
        let cache_changed = rotted.cache_bytes("f").unwrap() != &bytes[..];
        assert_eq!(
            cache_changed,
            damage.byte_offset >= PAGE_SIZE_BYTES,
            "seed {seed}"
        );
        rotted.check_invariants();
    }
    assert_eq!(d.rot(&mut rng(0), "other/"), None);
    assert!(matches!(
        d.flip_bit("f", 1 << 20, 0),
        Err(DiskError::PastEnd { .. })
    ));
}

/// Found by the store property tests: an older sync landing after a newer one had
/// cleaned a page, with rot in between, left cache and media different on a page
/// not marked dirty.
#[test]
fn an_older_snapshot_over_a_rotted_clean_page_marks_it_dirty() {
    let mut d = SimDisk::new();
    durable_file(&mut d, "f", &pattern(4096, 1));
    d.write("f", 10, b"new").unwrap();
    let first = d.request_sync(SyncTarget::File("f")).unwrap();
    let second = d.request_sync(SyncTarget::File("f")).unwrap();
    d.complete_sync(first).unwrap();
    d.flip_bit("f", 100, 3).unwrap();
    d.complete_sync(second).unwrap();
    d.check_invariants();
    // The media has the snapshot; a crash re-reads it.
    d.crash_os(&mut rng(0));
    assert_eq!(&d.read("f", 10, 3).unwrap()[..], b"new");
    assert_eq!(d.read("f", 100, 1).unwrap()[0], pattern(4096, 1)[100]);
}

#[test]
fn a_sync_of_a_deleted_file_is_a_no_op() {
    let mut d = SimDisk::new();
    d.create("f").unwrap();
    d.write("f", 0, b"x").unwrap();
    let file_sync = d.request_sync(SyncTarget::File("f")).unwrap();
    d.delete("f").unwrap();
    let dir_sync = d.request_sync(SyncTarget::Dir("")).unwrap();
    d.complete_sync(dir_sync).unwrap(); // the inode is now unreachable
    d.complete_sync(file_sync).unwrap();
    assert!(d.durable_paths().next().is_none());
    d.check_invariants();
}

#[test]
fn reads_and_renames_fail_cleanly() {
    let mut d = SimDisk::new();
    d.create("a/f").unwrap();
    d.write("a/f", 2, b"ab").unwrap();
    assert_eq!(&*d.read("a/f", 0, 4).unwrap(), b"\0\0ab");
    assert!(matches!(
        d.read("a/f", 3, 2),
        Err(DiskError::PastEnd { .. })
    ));
    assert!(matches!(
        d.read("a/f", u64::MAX, 2),
        Err(DiskError::PastEnd { .. })
    ));
    assert!(matches!(
        d.write("a/f", u64::MAX, b"x"),
        Err(DiskError::Io { .. })
    ));
    assert!(matches!(d.rename("a/f", "b/f"), Err(DiskError::Io { .. })));
    assert!(matches!(
        d.rename("a/g", "a/h"),
        Err(DiskError::NotFound { .. })
    ));
    assert!(matches!(
        d.create("a/f"),
        Err(DiskError::AlreadyExists { .. })
    ));
}

#[test]
#[should_panic(expected = "before an older sync")]
fn syncs_of_one_file_complete_in_order() {
    let mut d = SimDisk::new();
    d.create("f").unwrap();
    d.request_sync(SyncTarget::File("f")).unwrap();
    let second = d.request_sync(SyncTarget::File("f")).unwrap();
    let _ = d.complete_sync(second);
}

/// Random operations and faults; the model's own bookkeeping (dirty pages, inode
/// references) must hold after every step, and a completed sync followed by a
/// crash must leave exactly the synced bytes.
#[test]
fn random_schedules_keep_the_invariants() {
    let paths = ["d/a", "d/b", "e/a", "top"];
    for seed in 0..SEEDS {
        let mut r = rng(seed);
        let mut d = SimDisk::new();
        for _ in 0..300 {
            let path = paths[r.random_range(0..paths.len())];
            let other = paths[r.random_range(0..paths.len())];
            let max_bytes = 3 * PAGE_SIZE_BYTES;
            let _ = match r.random_range(0..100) {
                0..10 => d.create(path),
                10..35 => {
                    let len = r.random_range(0..PAGE_SIZE_BYTES as usize + 700);
                    let data = pattern(len, r.random());
                    d.write(path, r.random_range(0..max_bytes), &data)
                }
                35..42 => d.set_len(path, r.random_range(0..max_bytes)),
                42..47 => d.delete(path),
                47..52 => d.rename(path, other),
                52..62 => d.request_sync(SyncTarget::File(path)).map(drop),
                62..70 => d.request_sync(SyncTarget::Dir(parent_dir(path))).map(drop),
                70..88 => d.complete_next().map_or(Ok(()), |(_, result)| result),
                88..91 => {
                    d.crash_process();
                    Ok(())
                }
                91..94 => {
                    d.crash_os(&mut r);
                    Ok(())
                }
                94..96 => {
                    d.power_cut(&mut r);
                    Ok(())
                }
                96..98 => d.add_latent_error(path, r.random_range(0..24)),
                98 => d.read(path, r.random_range(0..max_bytes), 2000).map(drop),
                _ => {
                    d.rot(&mut r, "");
                    Ok(())
                }
            };
            d.check_invariants();
        }
        // Sync everything, then crash: the durable state is exactly the cache.
        let visible: BTreeMap<String, Vec<u8>> = paths
            .iter()
            .filter_map(|p| Some((p.to_string(), d.cache_bytes(p)?.to_vec())))
            .collect();
        for p in visible.keys() {
            d.request_sync(SyncTarget::File(p)).unwrap();
        }
        for dir in ["", "d", "e"] {
            d.request_sync(SyncTarget::Dir(dir)).unwrap();
        }
        complete_all(&mut d);
        d.power_cut(&mut r);
        assert_eq!(durable_state(&d), visible, "seed {seed}");
    }
}
