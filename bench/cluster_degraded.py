#!/usr/bin/env python3
"""Cluster degraded mode, measured by hand (docs/cluster.md, "When NATS is
unreachable"): one nats-server -js on loopback and two moatd nodes. Node b
subscribes; nats-server is stopped; the script reports how long node a
takes to notice (its log), how fast node a acknowledges N QoS 1 PUBLISHes
into its queue (in-flight window 1), how long it takes to reconnect once
nats-server listens again, and how fast the queue drains to node b.

usage: bench/cluster_degraded.py MOATD [N] [--persistence]
"""
import os
import shutil
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))

from moattest import Broker, Peer  # noqa: E402
from test_cluster import NatsServer  # noqa: E402


def wait_log(node, text, since_count, timeout=60.0):
    """Seconds until <text> occurs more than <since_count> times in node's log."""
    start = time.monotonic()
    while node.log().count(text) <= since_count:
        if time.monotonic() - start > timeout:
            raise SystemExit("%r never appeared in the log" % text)
        time.sleep(0.002)
    return time.monotonic() - start


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    if not args:
        raise SystemExit(__doc__)
    os.environ["MOATD"] = os.path.abspath(args[0])
    n = int(args[1]) if len(args) > 1 else 20000
    store = tempfile.mkdtemp(prefix="moat-degraded-")
    extra = ("persistence true\npersistence_location %s\n" % store
             if "--persistence" in sys.argv else "")
    nats = NatsServer().start()
    nodes = []
    try:
        for name in ("a", "b"):
            # node b's subscriber takes the whole drain into its session queue
            cfg = ("cluster_url nats://127.0.0.1:%d\ncluster_name bench\nnode_name %s\n"
                   "max_queued_messages %d\n" % (nats.port, name, 2 * n)) + \
                (extra if name == "a" else "")
            nodes.append(Broker(cfg, asan_options="detect_leaks=0").start())
        a, b = nodes
        sub = Peer(b.port)
        sub.connect("bench-sub", keepalive=0)
        sub.subscribe(("m/#", 1))
        pub = Peer(a.port)
        pub.connect("bench-pub", keepalive=0)
        deadline = time.monotonic() + 20
        while True:  # until node a knows node b's interest
            pub.publish("m/probe", b"probe", qos=1)
            try:
                sub.expect_publish(timeout=0.3)
                sub.drain_publishes(quiet_s=0.5)
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise SystemExit("node a never learnt node b's interest")
        nats.proc.terminate()
        nats.proc.wait()
        detect = wait_log(a, "lost the connection to NATS", 0)
        start = time.monotonic()
        for i in range(n):
            pub.publish("m/x", b"reading %08d ......" % i, qos=1)
        queued = time.monotonic() - start
        nats.start()
        reconnect = wait_log(a, "reconnected to NATS", 0)
        start = time.monotonic()
        got = 0
        while got < n:
            try:
                p = sub.expect_publish(timeout=30)
            except OSError:
                print("node a:\n%s\nnode b:\n%s" % (a.log()[-3000:], b.log()[-3000:]))
                raise SystemExit("node b received %d of %d" % (got, n))
            if p.payload != b"probe":
                got += 1
        drain = time.monotonic() - start
        print("messages: %d QoS 1 of 22 bytes%s" % (n, ", persistence on" if extra else ""))
        print("detection (nats-server stopped -> logged): %.3f s" % detect)
        print("queued while down: %.2f s (%.0f msg/s acknowledged)" % (queued, n / queued))
        print("reconnection (nats-server listening -> logged): %.2f s" % reconnect)
        print("drain to node b: %.2f s (%.0f msg/s)" % (drain, n / drain))
    finally:
        for node in nodes:
            node.stop(check=False)
            node.cleanup()
        nats.stop()
        shutil.rmtree(store, ignore_errors=True)


if __name__ == "__main__":
    main()
