#!/usr/bin/env python3
"""RocketMQ's own C++ client (PyPI rocketmq-client-python==0.5.0rc2, which bundles
librocketmq.so) driven from the command line for real/tests/cpp_client.rs.

Every subcommand prints one JSON object per line on stdout, flushed as it happens, so
the test sees what was acknowledged even if it has to kill this process:

  produce          sync sends: message i has tags TagA/TagB/TagC by i % 3 (so a
                   `TagA || TagB` subscription has something to exclude), keys key-i,
                   user property n=i, body body-i
  produce-orderly  sends by sharding key order-(i % keys), body body-i
  produce-batch    the C batch API (CBatchMessage.h, SendBatchMessage in CProducer.h;
                   the Python package does not wrap it): messages as `produce` makes
                   them, in batches of 1, 2, .. --max-batch messages in turn
  consume          a push consumer (clustering or broadcasting) until --count messages,
                   --timeout seconds or (with --stop-on-stdin-eof) the end of stdin
  pull             the C pull consumer (CPullConsumer.h; the Python package does not
                   wrap it): every queue of the topic from offset 0 to its end

A send prints {"op": "sent", "i", "status", "msg_id", "queue_offset"} or
{"op": "send_failed", "i", "error"}; a batch send the same with "count", its messages
being i .. i + count - 1 and "queue_offset" the first one's; a delivery prints {"op": "received", "topic",
"tags", "keys", "n", "body", "queue_id", "queue_offset", "reconsume_times", "msg_id"}
(plus "sharding_key" when set). The last line is {"op": "done", ...}.
"""

import argparse
import ctypes
import json
import sys
import threading
import time
from ctypes import POINTER, Structure, c_char, c_char_p, c_int, c_longlong, c_void_p

from rocketmq.client import (
    ConsumeStatus,
    Message,
    Producer,
    PushConsumer,
    RecvMessage,
    SendStatus,
)
from rocketmq.exceptions import ffi_check
from rocketmq.ffi import MessageModel, _CSendResult, dll

TAGS = ("TagA", "TagB", "TagC")
_print_lock = threading.Lock()


def emit(**fields):
    # The push consumer calls back on several threads: one line at a time.
    with _print_lock:
        sys.stdout.write(json.dumps(fields, sort_keys=True) + "\n")
        sys.stdout.flush()


def text(value):
    if value is None:
        return None
    return value.decode("utf-8") if isinstance(value, bytes) else value


def describe(msg):
    """Every field the test checks, read through the package's accessors (ffi.py)."""
    return dict(
        topic=msg.topic,
        tags=text(msg.tags),
        keys=text(msg.keys),
        n=text(msg.get_property("n")),
        sharding_key=text(msg.get_property("sharding_key")),
        body=text(msg.body),
        queue_id=msg.queue_id,
        queue_offset=msg.queue_offset,
        reconsume_times=msg.reconsume_times,
        msg_id=msg.id,
    )


def start_producer(args, orderly):
    producer = Producer(args.group, orderly=orderly, timeout=args.send_timeout_ms)
    producer.set_namesrv_addr(args.namesrv)
    producer.start()
    return producer


def record_send(i, send):
    """Runs one send; prints its outcome; whether it was SEND_OK."""
    try:
        result = send()
    except Exception as e:  # the client raises on timeouts and refused sends
        emit(op="send_failed", i=i, error=str(e))
        return False
    ok = result.status == SendStatus.OK
    emit(
        op="sent",
        i=i,
        status="SEND_OK" if ok else result.status.name,
        msg_id=result.msg_id,
        queue_offset=result.offset,
    )
    return ok


def message(args, i):
    """Message i as `produce` sends it."""
    msg = Message(args.topic)
    msg.set_tags(TAGS[i % len(TAGS)])
    msg.set_keys("key-%d" % i)
    msg.set_property("n", str(i))
    msg.set_body("body-%d" % i)
    return msg


def cmd_produce(args):
    producer = start_producer(args, orderly=False)
    ok = failed = 0
    for i in range(args.first, args.first + args.count):
        msg = message(args, i)
        if record_send(i, lambda: producer.send_sync(msg)):
            ok += 1
        else:
            failed += 1
            # Used to send through a broker killed mid-stream: past the first failure
            # the rest would only wait out their timeouts.
            if args.stop_on_failure:
                break
        if args.interval_ms:
            time.sleep(args.interval_ms / 1000.0)
    producer.shutdown()
    emit(op="done", sent_ok=ok, failed=failed)


def cmd_produce_orderly(args):
    producer = start_producer(args, orderly=True)
    ok = failed = 0
    for i in range(args.first, args.first + args.count):
        key = "order-%d" % (i % args.keys)
        msg = Message(args.topic)
        msg.set_tags("TagA")
        msg.set_keys("key-%d" % i)
        msg.set_property("n", str(i))
        msg.set_property("sharding_key", key)
        msg.set_body("body-%d" % i)
        if record_send(i, lambda: producer.send_orderly_with_sharding_key(msg, key)):
            ok += 1
        else:
            failed += 1
    producer.shutdown()
    emit(op="done", sent_ok=ok, failed=failed)


def cmd_produce_batch(args):
    producer = start_producer(args, orderly=False)
    ok = failed = 0
    i, size = args.first, 1
    end = args.first + args.count
    while i < end:
        count = min(size, end - i)
        # The messages must outlive the send: the batch holds copies made by AddMessage,
        # but keep them referenced until it is destroyed all the same.
        msgs = [message(args, k) for k in range(i, i + count)]
        batch = dll.CreateBatchMessage()
        if not batch:
            raise SystemExit("CreateBatchMessage returned NULL")
        for msg in msgs:
            ffi_check(dll.AddMessage(batch, msg))
        cres = _CSendResult()
        status = dll.SendBatchMessage(producer._handle, batch, ctypes.pointer(cres))
        dll.DestroyBatchMessage(batch)
        if status != 0:
            failed += count
            emit(op="send_failed", i=i, count=count, error="%s %s" % (status, text(dll.GetLatestErrorMessage())))
        else:
            sent_ok = cres.sendStatus == SendStatus.OK.value
            ok += count if sent_ok else 0
            failed += 0 if sent_ok else count
            emit(
                op="sent",
                i=i,
                count=count,
                status="SEND_OK" if sent_ok else SendStatus(cres.sendStatus).name,
                msg_id=text(cres.msgId),
                queue_offset=cres.offset,
            )
        i += count
        size = size % args.max_batch + 1
    producer.shutdown()
    emit(op="done", sent_ok=ok, failed=failed)


def cmd_consume(args):
    model = MessageModel.BROADCASTING if args.model == "broadcasting" else MessageModel.CLUSTERING
    consumer = PushConsumer(args.group, orderly=args.orderly, message_model=model)
    consumer.set_namesrv_addr(args.namesrv)
    consumer.set_instance_name(args.instance)
    # One consuming thread: deliveries then reach the callback in the order pulled, so
    # the test can check queue order from what is printed.
    consumer.set_thread_count(1)
    received = [0]
    stop = threading.Event()

    def watch_stdin():
        # The test closes our stdin to stop us cleanly (shutdown commits the offsets).
        sys.stdin.read()
        stop.set()

    if args.stop_on_stdin_eof:
        threading.Thread(target=watch_stdin, daemon=True).start()

    def on_message(msg):
        emit(op="received", **describe(msg))
        received[0] += 1
        if args.consume_ms:
            # A slow consumer: stopped after --count, it still holds pulled messages
            # it has not consumed (their offsets must not be committed).
            time.sleep(args.consume_ms / 1000.0)
        return ConsumeStatus.CONSUME_SUCCESS

    consumer.subscribe(args.topic, on_message, args.expression)
    consumer.start()
    emit(op="started")
    deadline = time.time() + args.timeout
    while received[0] < args.count and time.time() < deadline and not stop.is_set():
        time.sleep(0.05)
    # Shutdown persists the consumed offsets to the broker (the restart case relies on it).
    consumer.shutdown()
    emit(op="done", received=received[0])


# The C pull API, from rocketmq-client-cpp's include/CPullConsumer.h, CPullResult.h and
# CMessageQueue.h (this build exports FetchSubscriptionMessageQueues and
# ReleaseSubscriptionMessageQueue, the names of the C++ sources, not the header's).
class CMessageQueue(Structure):
    _fields_ = [
        ("topic", c_char * 512),  # MAX_TOPIC_LENGTH
        ("brokerName", c_char * 256),  # MAX_BROKER_NAME_ID_LENGTH
        ("queueId", c_int),
    ]


class CPullResult(Structure):
    _fields_ = [
        ("pullStatus", c_int),  # E_FOUND, E_NO_NEW_MSG, E_NO_MATCHED_MSG, E_OFFSET_ILLEGAL, E_BROKER_TIMEOUT
        ("nextBeginOffset", c_longlong),
        ("minOffset", c_longlong),
        ("maxOffset", c_longlong),
        ("msgFoundList", POINTER(c_void_p)),  # CMessageExt **
        ("size", c_int),
        ("pData", c_void_p),
    ]


PULL_STATUS = ("FOUND", "NO_NEW_MSG", "NO_MATCHED_MSG", "OFFSET_ILLEGAL", "BROKER_TIMEOUT")

dll.CreatePullConsumer.argtypes = [c_char_p]
dll.CreatePullConsumer.restype = c_void_p
dll.SetPullConsumerNameServerAddress.argtypes = [c_void_p, c_char_p]
dll.SetPullConsumerNameServerAddress.restype = c_int
dll.StartPullConsumer.argtypes = [c_void_p]
dll.StartPullConsumer.restype = c_int
dll.ShutdownPullConsumer.argtypes = [c_void_p]
dll.ShutdownPullConsumer.restype = c_int
dll.DestroyPullConsumer.argtypes = [c_void_p]
dll.DestroyPullConsumer.restype = c_int
dll.FetchSubscriptionMessageQueues.argtypes = [c_void_p, c_char_p, POINTER(POINTER(CMessageQueue)), POINTER(c_int)]
dll.FetchSubscriptionMessageQueues.restype = c_int
dll.ReleaseSubscriptionMessageQueue.argtypes = [POINTER(CMessageQueue)]
dll.ReleaseSubscriptionMessageQueue.restype = c_int
dll.Pull.argtypes = [c_void_p, POINTER(CMessageQueue), c_char_p, c_longlong, c_int]
dll.Pull.restype = CPullResult
# `int ReleasePullResult(CPullResult &pullResult)`: a C++ reference is a pointer.
dll.ReleasePullResult.argtypes = [POINTER(CPullResult)]
dll.ReleasePullResult.restype = c_int


def cmd_pull(args):
    consumer = dll.CreatePullConsumer(args.group.encode())
    if not consumer:
        raise SystemExit("CreatePullConsumer returned NULL")
    if dll.SetPullConsumerNameServerAddress(consumer, args.namesrv.encode()) != 0:
        raise SystemExit("SetPullConsumerNameServerAddress failed")
    if dll.StartPullConsumer(consumer) != 0:
        raise SystemExit("StartPullConsumer failed: %s" % text(dll.GetLatestErrorMessage()))
    mqs = POINTER(CMessageQueue)()
    size = c_int(0)
    status = dll.FetchSubscriptionMessageQueues(consumer, args.topic.encode(), ctypes.byref(mqs), ctypes.byref(size))
    if status != 0:
        raise SystemExit("FetchSubscriptionMessageQueues: %d %s" % (status, text(dll.GetLatestErrorMessage())))
    queues = [mqs[k] for k in range(size.value)]
    emit(op="queues", queues=[[text(q.brokerName), q.queueId, text(q.topic)] for q in queues])
    received = 0
    for mq in queues:
        offset = 0
        for _ in range(args.max_pulls_per_queue):
            result = dll.Pull(consumer, ctypes.byref(mq), args.expression.encode(), offset, args.batch)
            status = PULL_STATUS[result.pullStatus] if 0 <= result.pullStatus < len(PULL_STATUS) else str(result.pullStatus)
            emit(
                op="pulled",
                queue_id=mq.queueId,
                offset=offset,
                status=status,
                next_begin_offset=result.nextBeginOffset,
                min_offset=result.minOffset,
                max_offset=result.maxOffset,
                size=result.size,
            )
            for k in range(result.size):
                emit(op="received", **describe(RecvMessage(result.msgFoundList[k])))
                received += 1
            next_offset = result.nextBeginOffset
            dll.ReleasePullResult(ctypes.byref(result))
            if status not in ("FOUND", "NO_MATCHED_MSG") or next_offset <= offset:
                break
            offset = next_offset
    dll.ReleaseSubscriptionMessageQueue(mqs)
    dll.ShutdownPullConsumer(consumer)
    dll.DestroyPullConsumer(consumer)
    emit(op="done", received=received)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--namesrv", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--group", required=True)
    sub = parser.add_subparsers(dest="command", required=True)

    for name in ("produce", "produce-orderly"):
        p = sub.add_parser(name)
        p.add_argument("--count", type=int, required=True)
        p.add_argument("--first", type=int, default=0, help="index of the first message")
        p.add_argument("--send-timeout-ms", type=int, default=3000)
        if name == "produce":
            p.add_argument("--interval-ms", type=int, default=0)
            p.add_argument("--stop-on-failure", action="store_true")
        else:
            p.add_argument("--keys", type=int, default=4, help="how many sharding keys")

    p = sub.add_parser("produce-batch")
    p.add_argument("--count", type=int, required=True, help="messages in all")
    p.add_argument("--first", type=int, default=0, help="index of the first message")
    p.add_argument("--max-batch", type=int, default=5, help="the largest batch")
    p.add_argument("--send-timeout-ms", type=int, default=3000)

    p = sub.add_parser("consume")
    p.add_argument("--model", choices=("clustering", "broadcasting"), default="clustering")
    p.add_argument("--expression", default="*")
    p.add_argument("--instance", default="DEFAULT", help="client instance name (one per consumer process)")
    p.add_argument("--orderly", action="store_true", help="consume orderly (locks the queues)")
    p.add_argument("--count", type=int, required=True, help="stop after this many deliveries")
    p.add_argument("--stop-on-stdin-eof", action="store_true", help="or when stdin closes")
    p.add_argument("--consume-ms", type=int, default=0, help="time spent on each message")
    p.add_argument("--timeout", type=float, required=True, help="or after this many seconds")

    p = sub.add_parser("pull")
    p.add_argument("--expression", default="*")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--max-pulls-per-queue", type=int, default=1000)

    args = parser.parse_args()
    {
        "produce": cmd_produce,
        "produce-orderly": cmd_produce_orderly,
        "produce-batch": cmd_produce_batch,
        "consume": cmd_consume,
        "pull": cmd_pull,
    }[args.command](args)


if __name__ == "__main__":
    main()
