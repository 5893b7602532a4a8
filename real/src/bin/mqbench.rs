//! mqbench: load for a RocketMQ name server and broker, sent by the model's own
//! producer and push consumer over RocketMQ's wire protocol, so it drives mqbroker and
//! any other RocketMQ 4.x broker alike.
//!
//! `mqbench produce -n 127.0.0.1:9876 --producers 4 --inflight 64 --body-bytes 1024
//! --duration-s 10` keeps `inflight` sends outstanding per producer (flat out), or
//! paces them to `--rate` messages/s in all; it prints a progress line every second
//! and then msgs/s and send latency p50/p99/p999. `mqbench consume` counts deliveries.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use rmq_model::client::consumer::{ConsumerConfig, PushConsumer};
use rmq_model::client::producer::{OutgoingMessage, Producer, ProducerConfig, SendId};
use rmq_model::client::{ClientEvent, SendOutcome};
use rmq_model::node::{Ctx, Input, Node};
use rmq_model::protocol::Message;
use rmq_real::process::{init_logging, Hosted};

#[derive(Parser)]
#[command(about = "Load for RocketMQ name servers and brokers (remoting protocol)")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Send messages and measure throughput and send latency.
    Produce {
        /// Name server address(es), `;`-separated.
        #[arg(short = 'n', long, default_value = "127.0.0.1:9876")]
        namesrv: String,
        #[arg(long, default_value = "BenchmarkTest")]
        topic: String,
        #[arg(long, default_value_t = 4)]
        producers: usize,
        /// Sends outstanding per producer.
        #[arg(long, default_value_t = 64)]
        inflight: usize,
        /// Messages per second over all producers; 0 = as fast as answers come.
        #[arg(long, default_value_t = 0)]
        rate: u64,
        #[arg(long, default_value_t = 1024)]
        body_bytes: usize,
        #[arg(long, default_value_t = 10)]
        duration_s: u64,
    },
    /// Consume a topic and count deliveries per second.
    Consume {
        #[arg(short = 'n', long, default_value = "127.0.0.1:9876")]
        namesrv: String,
        #[arg(long, default_value = "BenchmarkTest")]
        topic: String,
        #[arg(long, default_value = "benchmark_consumer")]
        group: String,
        #[arg(long, default_value_t = 10)]
        duration_s: u64,
    },
}

#[derive(Default)]
struct Stats {
    ok: u64,
    failed: u64,
    latencies_us: Vec<u32>,
    delivered: u64,
}

type Shared = Arc<Mutex<Stats>>;

const TIMER_TICK: u64 = 1;

struct ProduceNode {
    producer: Producer,
    topic: String,
    body: Vec<u8>,
    inflight: usize,
    /// Messages per second for this producer; 0 = no pacing.
    rate: u64,
    started: Option<Instant>,
    issued: u64,
    pending: BTreeMap<SendId, Instant>,
    stats: Shared,
}

impl ProduceNode {
    fn fill(&mut self, ctx: &mut dyn Ctx<Message>) {
        let started = *self.started.get_or_insert_with(Instant::now);
        while self.pending.len() < self.inflight {
            if self.rate > 0 {
                let allowed = self.rate * started.elapsed().as_millis() as u64 / 1000;
                if self.issued >= allowed {
                    break;
                }
            }
            let id = self.producer.send(
                ctx,
                OutgoingMessage {
                    topic: self.topic.clone(),
                    tags: Some("TagA".into()),
                    keys: None,
                    user_properties: Vec::new(),
                    body: self.body.clone(),
                    delay_time_level: 0,
                },
            );
            self.issued += 1;
            self.pending.insert(id, Instant::now());
        }
    }
}

impl Node<Message> for ProduceNode {
    fn on_start(&mut self, ctx: &mut dyn Ctx<Message>) {
        self.producer.start(ctx);
        ctx.set_timer(0, TIMER_TICK);
    }

    fn handle(&mut self, ctx: &mut dyn Ctx<Message>, input: Input<Message>) {
        if let Input::Timer {
            kind: TIMER_TICK, ..
        } = input
        {
            self.fill(ctx);
            // Paced: top up every millisecond (tokio's timer resolution).
            ctx.set_timer(1, TIMER_TICK);
            return;
        }
        let events = self.producer.handle(ctx, input);
        if events.is_empty() {
            return;
        }
        {
            let mut stats = self.stats.lock().expect("stats");
            for event in events {
                if let ClientEvent::SendResult { id, outcome } = event {
                    let Some(sent_at) = self.pending.remove(&id) else {
                        continue;
                    };
                    match outcome {
                        SendOutcome::Stored { .. } => {
                            stats.ok += 1;
                            let us = sent_at.elapsed().as_micros();
                            stats
                                .latencies_us
                                .push(u32::try_from(us).unwrap_or(u32::MAX));
                        }
                        SendOutcome::Failed { .. } => stats.failed += 1,
                    }
                }
            }
        }
        self.fill(ctx);
    }
}

struct ConsumeNode {
    consumer: PushConsumer,
    stats: Shared,
}

impl Node<Message> for ConsumeNode {
    fn on_start(&mut self, ctx: &mut dyn Ctx<Message>) {
        self.consumer.start(ctx);
    }

    fn handle(&mut self, ctx: &mut dyn Ctx<Message>, input: Input<Message>) {
        let delivered = self
            .consumer
            .handle(ctx, input)
            .iter()
            .filter(|e| matches!(e, ClientEvent::Delivered { .. }))
            .count() as u64;
        if delivered > 0 {
            self.stats.lock().expect("stats").delivered += delivered;
        }
    }
}

fn percentile_us(sorted: &[u32], p: f64) -> u32 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Err(e) = init_logging(None) {
        eprintln!("mqbench: {e}");
    }
    let scratch = match tempfile_dir() {
        Ok(dir) => dir,
        Err(e) => {
            eprintln!("mqbench: cannot make a scratch directory: {e}");
            return ExitCode::FAILURE;
        }
    };
    let stats: Shared = Arc::default();
    let (duration_s, producing, mut nodes) = match cli.command {
        Command::Produce {
            namesrv,
            topic,
            producers,
            inflight,
            rate,
            body_bytes,
            duration_s,
        } => {
            let namesrv_addrs: Vec<String> = namesrv.split(';').map(str::to_string).collect();
            let per_producer_rate = rate.div_ceil(producers.max(1) as u64);
            let mut nodes = Vec::new();
            for i in 0..producers.max(1) {
                let stats = stats.clone();
                let config = ProducerConfig {
                    producer_group: "benchmark_producer".into(),
                    namesrv_addrs: namesrv_addrs.clone(),
                    ..ProducerConfig::default()
                };
                let topic = topic.clone();
                let node = Hosted::start(scratch.join(format!("p{i}")), false, move |_, _| {
                    Box::new(ProduceNode {
                        producer: Producer::new(config),
                        topic,
                        body: vec![b'x'; body_bytes],
                        inflight: inflight.max(1),
                        rate: per_producer_rate,
                        started: None,
                        issued: 0,
                        pending: BTreeMap::new(),
                        stats,
                    })
                });
                match node {
                    Ok(n) => nodes.push(n),
                    Err(e) => {
                        eprintln!("mqbench: cannot start producer {i}: {e}");
                        return ExitCode::FAILURE;
                    }
                }
            }
            (duration_s, true, nodes)
        }
        Command::Consume {
            namesrv,
            topic,
            group,
            duration_s,
        } => {
            let stats = stats.clone();
            let config = ConsumerConfig {
                consumer_group: group,
                namesrv_addrs: namesrv.split(';').map(str::to_string).collect(),
                topic,
                ..ConsumerConfig::default()
            };
            match Hosted::start(scratch.join("c"), false, move |_, _| {
                Box::new(ConsumeNode {
                    consumer: PushConsumer::new(config),
                    stats,
                })
            }) {
                Ok(n) => (duration_s, false, vec![n]),
                Err(e) => {
                    eprintln!("mqbench: cannot start the consumer: {e}");
                    return ExitCode::FAILURE;
                }
            }
        }
    };
    let started = Instant::now();
    let mut last = (0u64, 0u64);
    while started.elapsed() < Duration::from_secs(duration_s) {
        std::thread::sleep(Duration::from_secs(1));
        let s = stats.lock().expect("stats");
        let now = if producing { s.ok } else { s.delivered };
        eprintln!(
            "[{:>4} s] {} msgs/s, {} in all, {} failed",
            started.elapsed().as_secs(),
            now - last.0,
            now,
            s.failed
        );
        last = (now, s.failed);
    }
    let elapsed_s = started.elapsed().as_secs_f64();
    for node in &mut nodes {
        let _ = node.stop();
    }
    let _ = std::fs::remove_dir_all(&scratch);
    let mut s = stats.lock().expect("stats");
    if producing {
        s.latencies_us.sort_unstable();
        println!(
            "sent {} ok, {} failed in {:.1} s: {:.0} msgs/s; send latency p50 {} us, p99 {} us, p999 {} us",
            s.ok,
            s.failed,
            elapsed_s,
            s.ok as f64 / elapsed_s,
            percentile_us(&s.latencies_us, 50.0),
            percentile_us(&s.latencies_us, 99.0),
            percentile_us(&s.latencies_us, 99.9),
        );
        if s.ok == 0 {
            return ExitCode::FAILURE;
        }
    } else {
        println!(
            "consumed {} messages in {:.1} s: {:.0} msgs/s",
            s.delivered,
            elapsed_s,
            s.delivered as f64 / elapsed_s
        );
    }
    ExitCode::SUCCESS
}

/// A private scratch directory for the clients' disks (a broadcasting consumer keeps
/// its offsets there); removed at the end.
fn tempfile_dir() -> std::io::Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("mqbench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
