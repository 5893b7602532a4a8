//! Process queues: what the index pass keeps per consumer per queue it reads, named
//! after RocketMQ's `ProcessQueue` (a consumer's own state for one `MessageQueue`).
//!
//! Most of a history (`Deliver`, `Consumed`, `Commit`, `Own`, `Disown`) names a
//! group, a client and a queue (broker, topic, queue id). Interning the three names
//! one by one, then looking up the queue, the client's open span and its commit
//! sequence in three hash maps, costs several probes per entry. Here the five fields
//! together name one process queue, found with one probe; it carries its group and
//! queue ids, its open span and its commit sequence, so the pass goes on with indexes.

use super::intern::{key, Key, Slots, MIX};

/// One consumer's state for one queue, as the pass needs it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ProcessQueue {
    /// Its index in [`ProcessQueues`] (set by [`ProcessQueues::add`]).
    pub id: u32,
    pub group: u32,
    pub client: u32,
    pub queue: u32,
    /// The queue's topic id.
    pub topic: u32,
    /// The topic is a `%RETRY%` topic.
    pub retry_topic: bool,
    /// The open span of (group, client, queue), or [`NONE`](super::tables::NONE).
    pub open_span: u32,
    /// The committed-offset sequence its commits go to (shared by a clustering group's
    /// clients), an index into the builder's commit marks.
    pub commits: u32,
    /// A broadcasting group's delivery slot of the client,
    /// [`NONE`](super::tables::NONE) until its first delivery through this queue
    /// looks it up.
    pub slot: u32,
}

/// A process queue as an entry names it: group, client, broker, topic, queue id.
pub(crate) type Name<'a> = (&'a str, u32, &'a str, &'a str, i32);

/// What names a process queue: the names' [`Key`]s, the queue id and the client.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Ident {
    group: Key,
    broker: Key,
    topic: Key,
    queue_id: i32,
    client: u32,
}

impl Ident {
    #[inline]
    fn new((group, client, broker, topic, queue_id): Name) -> Ident {
        Ident {
            group: key(group),
            broker: key(broker),
            topic: key(topic),
            queue_id,
            client,
        }
    }

    /// The ident's fields mixed into one word (take the high bits).
    #[inline]
    fn hash(&self) -> u64 {
        let mut h = self.group.hash();
        h = (h.rotate_left(23) ^ self.broker.hash()).wrapping_mul(MIX);
        h = (h.rotate_left(23) ^ self.topic.hash()).wrapping_mul(MIX);
        (h.rotate_left(23) ^ (u64::from(self.queue_id as u32) << 32 | u64::from(self.client)))
            .wrapping_mul(MIX)
    }

    /// Equal idents name the same process queue unless a name is longer than its key
    /// holds; then the names themselves are compared.
    #[inline]
    fn is_whole(&self) -> bool {
        self.group.is_whole() && self.broker.is_whole() && self.topic.is_whole()
    }
}

#[derive(Default)]
pub(crate) struct ProcessQueues {
    queues: Vec<ProcessQueue>,
    idents: Vec<Ident>,
    /// For an ident that is not whole: its (group, broker, topic) names.
    long_names: Vec<Option<Box<[Box<str>; 3]>>>,
    /// Open addressing on the ident's hash.
    slots: Slots,
}

impl ProcessQueues {
    /// The process queue `name` names, if one was added.
    #[inline]
    pub(crate) fn get(&self, name: Name) -> Option<u32> {
        let ident = Ident::new(name);
        let (group, _, broker, topic, _) = name;
        self.slots.find(ident.hash(), |p| {
            self.idents[p as usize] == ident
                // Whole keys are the names themselves: no need to read the long ones.
                && (ident.is_whole()
                    || self.long_names[p as usize].as_ref().is_some_and(|names| {
                        *names[0] == *group && *names[1] == *broker && *names[2] == *topic
                    }))
        })
    }

    /// Adds the process queue `name` names (not added before); returns its index.
    #[cold]
    #[inline(never)]
    pub(crate) fn add(&mut self, name: Name, pq: ProcessQueue) -> u32 {
        let p = u32::try_from(self.queues.len()).expect("fewer than 2^32 process queues");
        let ident = Ident::new(name);
        let (group, _, broker, topic, _) = name;
        self.queues.push(ProcessQueue { id: p, ..pq });
        self.idents.push(ident);
        self.long_names.push(
            (!ident.is_whole()).then(|| Box::new([group.into(), broker.into(), topic.into()])),
        );
        let idents = &self.idents;
        self.slots.add(idents.len(), |p| idents[p as usize].hash());
        p
    }

    #[inline]
    pub(crate) fn get_mut(&mut self, p: u32) -> &mut ProcessQueue {
        &mut self.queues[p as usize]
    }

    #[inline]
    pub(crate) fn at(&self, p: u32) -> ProcessQueue {
        self.queues[p as usize]
    }
}

#[cfg(test)]
mod tests {
    use super::{ProcessQueue, ProcessQueues};
    use crate::check::tables::NONE;

    fn pq(group: u32) -> ProcessQueue {
        ProcessQueue {
            id: NONE,
            group,
            client: 0,
            queue: 0,
            topic: 0,
            retry_topic: false,
            open_span: NONE,
            commits: 0,
            slot: NONE,
        }
    }

    #[test]
    fn each_field_tells_process_queues_apart() {
        let names = [
            ("g", 1, "broker-a", "T", 0),
            ("g", 2, "broker-a", "T", 0),
            ("g", 1, "broker-b", "T", 0),
            ("g", 1, "broker-a", "U", 0),
            ("g", 1, "broker-a", "T", 1),
            ("h", 1, "broker-a", "T", 0),
            // Longer than a key holds whole, differing only between its two loads.
            ("group-with-a-AAAA-name-12345678", 1, "broker-a", "T", 0),
            ("group-with-a-BBBB-name-12345678", 1, "broker-a", "T", 0),
            ("g", 1, "broker-a", "%RETRY%group-AAAA-name-12345678", 0),
            ("g", 1, "broker-a", "%RETRY%group-BBBB-name-12345678", 0),
        ];
        let mut pqs = ProcessQueues::default();
        for (k, n) in names.iter().enumerate() {
            assert_eq!(pqs.get(*n), None, "{n:?}");
            assert_eq!(pqs.add(*n, pq(k as u32)), k as u32);
            // Every earlier one still resolves after the table is rebuilt larger.
            for (j, m) in names[..=k].iter().enumerate() {
                assert_eq!(pqs.get(*m), Some(j as u32), "{m:?}");
                assert_eq!(pqs.at(j as u32).group, j as u32);
            }
        }
        assert_eq!(pqs.get(("g", 3, "broker-a", "T", 0)), None);
        let long = ("group-with-a-CCCC-name-12345678", 1, "broker-a", "T", 0);
        assert_eq!(pqs.get(long), None);
    }
}
