#!/bin/bash
# Throughput and send latency of mqbroker under mqbench, with the broker's CPU time per
# message: starts mqnamesrv and mqbroker (FLUSH = SYNC_FLUSH or ASYNC_FLUSH) on free
# loopback ports with a scratch HOME and store, runs `mqbench produce` for DURATION_S
# seconds with PRODUCERS producers keeping INFLIGHT sends each outstanding (1 KiB
# bodies), then stops both cleanly and removes the scratch directory. With CONSUME_S > 0
# it then runs `mqbench consume` for CONSUME_S seconds from the first offset, over the
# backlog just sent (pulls read the store), with the broker's CPU time per delivery.
#
#   cargo build --release -p rmq-real
#   real/bench/broker.sh SYNC_FLUSH 4 64 10     # group commit
#   real/bench/broker.sh SYNC_FLUSH 1 1 10      # one fsync per message
#   real/bench/broker.sh ASYNC_FLUSH 4 64 10
#   real/bench/broker.sh ASYNC_FLUSH 4 64 10 10  # then consume the backlog for 10 s
#   REPLICATION=sync real/bench/broker.sh ASYNC_FLUSH 4 64 10  # a SYNC_MASTER and its slave
#
# REPLICATION=sync|async starts a slave too (the master SYNC_MASTER or ASYNC_MASTER,
# replicating over its HA port); the CPU figures stay the master's.
set -euo pipefail
FLUSH=${1:-SYNC_FLUSH}; PRODUCERS=${2:-4}; INFLIGHT=${3:-64}; DURATION_S=${4:-10}; CONSUME_S=${5:-0}
REPLICATION=${REPLICATION:-none}
BIN=${BIN:-$(dirname "$0")/../../target/release}
SCRATCH=$(mktemp -d)
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
NS_PORT=$(free_port); BROKER_PORT=$(free_port); HA_PORT=$(free_port)
cleanup() { kill -TERM "${BROKER:-}" "${SLAVE:-}" "${NAMESRV:-}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$SCRATCH"; }
trap cleanup EXIT
case $REPLICATION in
  none) ROLE=ASYNC_MASTER ;; sync) ROLE=SYNC_MASTER ;; async) ROLE=ASYNC_MASTER ;;
  *) echo "REPLICATION must be none, sync or async" >&2; exit 2 ;;
esac
printf 'listenPort=%s\n' "$NS_PORT" > "$SCRATCH/namesrv.conf"
printf 'brokerName=broker-a\nbrokerRole=%s\nflushDiskType=%s\nlistenPort=%s\nhaListenPort=%s\nstorePathRootDir=%s/store\nnamesrvAddr=127.0.0.1:%s\n' \
  "$ROLE" "$FLUSH" "$BROKER_PORT" "$HA_PORT" "$SCRATCH" "$NS_PORT" > "$SCRATCH/broker.conf"
HOME=$SCRATCH "$BIN/mqnamesrv" -c "$SCRATCH/namesrv.conf" > "$SCRATCH/namesrv.out" 2>&1 & NAMESRV=$!
sleep 0.3
HOME=$SCRATCH "$BIN/mqbroker" -c "$SCRATCH/broker.conf" > "$SCRATCH/broker.out" 2>&1 & BROKER=$!
if [ "$REPLICATION" != none ]; then
  sleep 0.5
  printf 'brokerName=broker-a\nbrokerId=1\nbrokerRole=SLAVE\nflushDiskType=%s\nlistenPort=%s\nhaListenPort=%s\nstorePathRootDir=%s/store-slave\nnamesrvAddr=127.0.0.1:%s\n' \
    "$FLUSH" "$(free_port)" "$(free_port)" "$SCRATCH" "$NS_PORT" > "$SCRATCH/slave.conf"
  HOME=$SCRATCH "$BIN/mqbroker" -c "$SCRATCH/slave.conf" > "$SCRATCH/slave.out" 2>&1 & SLAVE=$!
fi
sleep 1
ticks() { awk '{print $14 + $15}' "/proc/$BROKER/stat"; }
BEFORE=$(ticks)
OUT=$(HOME=$SCRATCH "$BIN/mqbench" produce -n "127.0.0.1:$NS_PORT" --producers "$PRODUCERS" \
  --inflight "$INFLIGHT" --body-bytes 1024 --duration-s "$DURATION_S" 2>/dev/null)
AFTER=$(ticks)
echo "$FLUSH replication=$REPLICATION producers=$PRODUCERS inflight=$INFLIGHT: $OUT"
SENT=$(echo "$OUT" | sed -n 's/^sent \([0-9]*\) ok.*/\1/p')
HZ=$(getconf CLK_TCK)
echo "broker CPU: $(( (AFTER - BEFORE) * 1000000 / HZ / (SENT > 0 ? SENT : 1) )) us per message"
if [ "$CONSUME_S" -gt 0 ]; then
  BEFORE=$(ticks)
  OUT=$(HOME=$SCRATCH "$BIN/mqbench" consume -n "127.0.0.1:$NS_PORT" --duration-s "$CONSUME_S" 2>/dev/null)
  AFTER=$(ticks)
  echo "consume: $OUT"
  GOT=$(echo "$OUT" | sed -n 's/^consumed \([0-9]*\) messages.*/\1/p')
  echo "broker CPU: $(( (AFTER - BEFORE) * 1000000 / HZ / (GOT > 0 ? GOT : 1) )) us per message consumed"
fi
