//! The recovery fuzzer's seeds for a store another RocketMQ implementation wrote with
//! `enabledAppendPropCRC` off (issue 9 §2), in the input format of `mod.rs`: records
//! without the `__CRC32#` tail over several files, consume-queue entries for each, a
//! RocketMQ 5 checkpoint (a sixth field at 0x28), and for the crashed one the abort
//! marker and a torn last record. The checked-in corpus files
//! `fuzz/corpus/recovery/seed-tail-less-store-{clean,crash-cut}` are these bytes; a test
//! keeps them equal (set `RMQ_WRITE_CORPUS=1` to rewrite them).

use std::collections::BTreeMap;

use super::{Builder, Reader, StoreImage, TOPICS};

/// 4 KiB commit-log files, base 0.
const HEADER_0: u8 = 0x03;
/// 8 consume-queue entries per file, two appends after recovery.
const HEADER_1: u8 = 0x26;
pub const FIXTURE_RECORDS: usize = 40;
const CHUNK_RECORD: u8 = 1;
const CHUNK_MUTATE: u8 = 6;
const CHUNK_CQ_ENTRY: u8 = 8;
const CHUNK_CHECKPOINT: u8 = 9;
const CHUNK_ABORT: u8 = 10;
/// Record flags: no explicit offsets, not a transaction, IPv4, tail stripped, V1, rolls.
const FLAGS_WITHOUT_TAIL: u8 = 0x20;
/// `PROPERTIES[3]`, "KEYS\u{1}x": no TAGS, so the tag code a consume-queue entry chunk
/// writes (0) is the record's; no trailing separator, as 4.9.8 stores properties.
const PROPS_INDEX: u8 = 3;

/// The input bytes of the fixture: the clean store, or the one a crash cut.
pub fn tail_less_store_input(crashed: bool) -> Vec<u8> {
    let mut input = vec![HEADER_0, HEADER_1];
    // (topic index, queue) of each record, to name its consume-queue entry.
    let mut placed = Vec::new();
    for i in 0..FIXTURE_RECORDS {
        let topic = (1 + i % 2) as u8; // "TopicTest", "%RETRY%g"
        let queue = (i / 2 % 4) as u8;
        let body_len = (40 + i * 29 % 200) as u8;
        input.extend_from_slice(&[
            CHUNK_RECORD,
            topic | (PROPS_INDEX << 2),
            queue,
            FLAGS_WITHOUT_TAIL,
            body_len,
        ]);
        input.extend((0..body_len).map(|j| (i as u8).wrapping_mul(7).wrapping_add(j)));
        placed.push((topic, queue));
    }
    if crashed {
        // Only commit-log files exist so far, so the last one is selected by its index.
        let built = decode_prefix(&input);
        let files = built.files.len() as u8;
        let (offset, size) = *built.records.last().expect("records were written");
        let half = size / 2;
        let at = (offset % built.file_size()) as u16 + half as u16;
        let zeros = (size - half) as u8;
        input.extend_from_slice(&[CHUNK_MUTATE, files - 1]);
        input.extend_from_slice(&at.to_be_bytes());
        input.extend_from_slice(&[1, zeros]);
        input.extend(std::iter::repeat_n(0, usize::from(zeros)));
    }
    let mut next: BTreeMap<(u8, u8), u8> = BTreeMap::new();
    for (i, &(topic, queue)) in placed.iter().enumerate() {
        let queue_offset = next.entry((topic, queue)).or_insert(0);
        // Source even: the entry of record `source / 2`.
        input.extend_from_slice(&[CHUNK_CQ_ENTRY, topic, queue, *queue_offset, (i * 2) as u8]);
        *queue_offset += 1;
    }
    let mut checkpoint = [0u8; 48];
    let last_ts: i64 = 1_700_000_000_000 + FIXTURE_RECORDS as i64;
    for field in 0..3 {
        checkpoint[field * 8..field * 8 + 8].copy_from_slice(&last_ts.to_be_bytes());
    }
    checkpoint[0x28..0x30].copy_from_slice(&0x0102_0304_0506_0708i64.to_be_bytes());
    input.extend_from_slice(&[CHUNK_CHECKPOINT, checkpoint.len() as u8]);
    input.extend_from_slice(&checkpoint);
    if crashed {
        input.extend_from_slice(&[CHUNK_ABORT, 0]);
    }
    debug_assert!(TOPICS[1] == "TopicTest");
    input
}

/// The builder after the chunks of `input` (headers included).
fn decode_prefix(input: &[u8]) -> Builder {
    let image = StoreImage::decode(&input[..2]);
    let mut b = Builder::new(image.config, input[0]);
    let mut r = Reader {
        data: input,
        pos: 2,
    };
    while !r.is_empty() {
        b.chunk(&mut r);
    }
    b
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use rmq_model::store::{recover, RecoveryMode};

    use super::*;
    use crate::storage::store_image::run_recovery_case;

    fn corpus_path(name: &str) -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../fuzz/corpus/recovery")
            .join(name)
    }

    #[test]
    fn the_corpus_holds_the_fixture() {
        for (crashed, name) in [
            (false, "seed-tail-less-store-clean"),
            (true, "seed-tail-less-store-crash-cut"),
        ] {
            let input = tail_less_store_input(crashed);
            let path = corpus_path(name);
            if std::env::var_os("RMQ_WRITE_CORPUS").is_some() {
                std::fs::write(&path, &input).unwrap();
            }
            let stored = std::fs::read(&path).unwrap_or_default();
            assert!(
                stored == input,
                "{} differs from the fixture; rewrite it with RMQ_WRITE_CORPUS=1",
                path.display()
            );
            run_recovery_case(&input).unwrap();
        }
    }

    #[test]
    fn the_fixture_recovers_intact_or_cut_at_the_torn_record() {
        for crashed in [false, true] {
            let input = tail_less_store_input(crashed);
            let built = decode_prefix(&input);
            assert_eq!(built.records.len(), FIXTURE_RECORDS);
            let logs = built.files.keys().filter(|p| p.starts_with("commitlog/"));
            assert!(logs.count() >= 3, "the records span files");
            let mut image = StoreImage::decode(&input);
            let (_, report) = recover(&mut image.disk, image.config.clone()).unwrap();
            let expected_mode = if crashed {
                RecoveryMode::Abnormal
            } else {
                RecoveryMode::Normal
            };
            assert_eq!(report.mode, expected_mode);
            let kept = FIXTURE_RECORDS - usize::from(crashed);
            assert_eq!(report.records_recovered, kept as u64, "{report:?}");
            assert_eq!(report.consume_queue_entries_rewritten, 0, "{report:?}");
            let cut = report.cut.map(|c| c.offset);
            let torn = built.records.last().unwrap().0;
            assert_eq!(cut, crashed.then_some(torn));
            assert_eq!(
                report.commit_log_files_without_crc_tail.len() as u64,
                torn / built.file_size() + 1
            );
        }
    }
}
