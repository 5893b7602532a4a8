//! Plugging another broker implementation into rocketsim, with no edit to `sim/`.
//!
//! A broker is any `Node<Message>`: it reacts to `Input`s (packets, timers, fsync
//! completions, broken connections) and asks for effects through `Ctx` (send, timers,
//! its disk, its clock). It is booted from its `BrokerConfig` and what its disk kept,
//! by a factory; `Nodes::with_broker(factory)` runs every scenario with it, the
//! reference name servers and clients around it, and the checker judging the history.
//!
//! This one is a third-party broker in miniature: it counts the packets it handles (in
//! a counter the factory shares with the caller) and delegates the protocol to the
//! reference broker. Replace `inner` with your own state machine.
//!
//! ```sh
//! cargo run --release -p rmq-sim --example custom_broker -- scenarios/case1_kill.toml 20
//! ```

use std::cell::Cell;
use std::path::PathBuf;
use std::process::ExitCode;
use std::rc::Rc;

use rmq_model::broker::{Broker, BrokerConfig};
use rmq_model::node::{Ctx, Input, Node};
use rmq_model::protocol::Message;
use rmq_model::store::Disk;
use rmq_sim::cluster::runner::{self, BrokerFactory, Nodes, RunOptions};
use rmq_sim::cluster::scenario::LoadedScenario;

/// The implementation under test.
struct CountingBroker {
    inner: Broker,
    packets: Rc<Cell<u64>>,
}

impl CountingBroker {
    /// Boot is recovery: build the broker from what its disk holds.
    fn boot(config: BrokerConfig, disk: &mut dyn Disk, packets: Rc<Cell<u64>>) -> Self {
        CountingBroker {
            inner: Broker::boot(config, disk),
            packets,
        }
    }
}

impl Node<Message> for CountingBroker {
    fn on_start(&mut self, ctx: &mut dyn Ctx<Message>) {
        self.inner.on_start(ctx);
    }

    fn handle(&mut self, ctx: &mut dyn Ctx<Message>, input: Input<Message>) {
        if matches!(input, Input::Packet { .. }) {
            self.packets.set(self.packets.get() + 1);
        }
        self.inner.handle(ctx, input);
    }

    fn shutdown(&mut self, ctx: &mut dyn Ctx<Message>) {
        self.inner.shutdown(ctx);
    }

    fn is_stopped(&self) -> bool {
        self.inner.is_stopped()
    }
}

/// The factory the simulator calls at every boot and every restart after a crash.
fn counting_broker(packets: Rc<Cell<u64>>) -> BrokerFactory {
    Rc::new(move |config, disk: &mut dyn Disk| {
        Box::new(CountingBroker::boot(config, disk, packets.clone()))
    })
}

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let path = PathBuf::from(
        args.next()
            .unwrap_or_else(|| "scenarios/case1_kill.toml".into()),
    );
    let seeds: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(5);
    let loaded = match LoadedScenario::load(&path) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let packets = Rc::new(Cell::new(0));
    let nodes = Nodes::with_broker(counting_broker(packets.clone()));
    let mut failed = 0;
    for seed in 0..seeds {
        packets.set(0);
        let variant = loaded.variant_for(seed);
        let out = runner::run(variant, seed, nodes.clone(), RunOptions::default());
        let stats = &out.report.stats;
        println!(
            "seed {seed} ({}): {} packets handled by the brokers, {} sends, {} deliveries: {}",
            variant.name,
            packets.get(),
            stats.sends,
            stats.deliveries,
            if out.report.passed() { "PASS" } else { "FAIL" }
        );
        for v in &out.report.violations {
            println!("  {v}");
        }
        failed += u64::from(!out.report.passed());
    }
    println!("{failed} of {seeds} seeds failed");
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
