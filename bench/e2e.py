#!/usr/bin/python3
"""What sealing payloads end to end costs (`make bench`, issue 6).

Starts moatd on loopback and runs `moat bench --scenario pairs` (QoS 1)
with plain, ChaCha20-Poly1305 and AES-256-GCM payloads of 64 B and 1 KiB:

- unthrottled: messages/s through moatd with one load-generator thread
  that also seals and opens every message; on a small machine that thread,
  sharing the cores with the broker, sets the pace, so this ratio is the
  whole pipeline's on one machine, not the broker's;
- instructions per delivered message (valgrind's callgrind, which counts
  instructions exactly, so the figures do not depend on the machine's load)
  in moatd and in the load generator, which plays publishing and
  subscribing devices. Each is the slope between a short and a long run at
  a low fixed rate, so start-up is not counted. The broker's column is its
  throughput cost of carrying sealed payloads (a CPU-bound broker delivers
  in inverse proportion); the sum is the cost for the whole system.

Usage: bench/e2e.py BUILD_DIR (environment: BENCH_SECONDS, default 5).
"""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

CASES = [("plain", []), ("chacha20-poly1305", ["--e2e", "chacha20-poly1305"]),
         ("aes-256-gcm", ["--e2e", "aes-256-gcm"])]
SIZES = (64, 1024)
COUNT_PAIRS, COUNT_RATE = 4, 250  # the counted runs: 1,000 messages/s
COUNT_SHORT_S, COUNT_LONG_S = 2, 6


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit("e2e bench: moatd exited")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    sys.exit("e2e bench: nothing listens on port %d" % port)


def start_moatd(moatd, tmp, prefix=()):
    port = free_port()
    conf = os.path.join(tmp, "moatd-%d.conf" % port)
    with open(conf, "w") as f:
        f.write("listener %d 127.0.0.1\nallow_anonymous true\nmax_queued_messages 10000\n" % port)
    proc = subprocess.Popen(list(prefix) + [moatd, "-c", conf], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    wait_port(port, proc)
    return proc, port


def bench(moat, port, args, prefix=()):
    cmd = list(prefix) + [moat, "bench", "-h", "127.0.0.1", "-p", str(port), "--scenario",
                          "pairs", "-q", "1", "--drain", "5"] + args
    out = subprocess.run(cmd, capture_output=True, text=True, check=False).stdout
    return json.loads(out.strip().splitlines()[-1])


def counted(path):
    with open(path) as f:
        for line in f:
            if line.startswith("totals:"):
                return int(line.split()[1])
    sys.exit("e2e bench: no totals in " + path)


def instructions(moatd, moat, tmp, size, extra, seconds):
    """(moatd, load generator) instructions and messages delivered in one counted run."""
    files = [os.path.join(tmp, "cg.%s" % who) for who in ("moatd", "moat")]
    grind = ["valgrind", "--tool=callgrind", "--callgrind-out-file="]
    proc, port = start_moatd(moatd, tmp, grind[:-1] + [grind[-1] + files[0]])
    try:
        r = bench(moat, port, ["--pairs", str(COUNT_PAIRS), "--rate", str(COUNT_RATE), "-s",
                               str(size), "--duration", str(seconds)] + extra,
                  grind[:-1] + [grind[-1] + files[1]])
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait()
    return counted(files[0]), counted(files[1]), r["received"], r["lost"]


def main():
    build = sys.argv[1]
    moatd, moat = os.path.join(build, "bin", "moatd"), os.path.join(build, "bin", "moat")
    seconds = os.environ.get("BENCH_SECONDS", "5")
    with tempfile.TemporaryDirectory(prefix="moat-e2e-bench-") as tmp:
        proc, port = start_moatd(moatd, tmp)
        try:
            top = {(size, name): bench(moat, port, ["--pairs", "20", "-s", str(size),
                                                    "--duration", seconds] + extra)
                   for size in SIZES for name, extra in CASES}
        finally:
            proc.terminate()
            proc.wait()
        per_msg = {}
        if shutil.which("valgrind"):
            for size in SIZES:
                for name, extra in CASES:
                    a = instructions(moatd, moat, tmp, size, extra, COUNT_SHORT_S)
                    b = instructions(moatd, moat, tmp, size, extra, COUNT_LONG_S)
                    n = b[2] - a[2]
                    per_msg[size, name] = ((b[0] - a[0]) / n, (b[1] - a[1]) / n, a[3] + b[3])
    print("\n| payload | payloads | msg/s unthrottled | vs plain | moatd instr/msg | vs plain "
          "| devices instr/msg | system vs plain |")
    print("|---:|---|---:|---:|---:|---:|---:|---:|")
    for size in SIZES:
        base = top[size, "plain"]["msgs_per_s"]
        bm, bd, _ = per_msg.get((size, "plain"), (0, 0, 0))
        for name, _ in CASES:
            t = top[size, name]
            row = ["%d B" % size, name, f"{t['msgs_per_s']:,.0f}",
                   "%+.1f %%" % ((t["msgs_per_s"] / base - 1) * 100)]
            if (size, name) in per_msg:
                m, d, _ = per_msg[size, name]
                row += [f"{m:,.0f}", "%+.1f %%" % ((m / bm - 1) * 100), f"{d:,.0f}",
                        "%+.1f %%" % (((m + d) / (bm + bd) - 1) * 100)]
            else:
                row += ["(no valgrind)"] * 4
            print("| " + " | ".join(row) + " |")
    lost = sum(t["lost"] for t in top.values()) + sum(v[2] for v in per_msg.values())
    print("\nunthrottled: 20 pairs, one load-generator thread; instructions: %d pairs x %d msg/s, "
          "slope between %d s and %d s runs; lost messages: %d"
          % (COUNT_PAIRS, COUNT_RATE, COUNT_SHORT_S, COUNT_LONG_S, lost))


if __name__ == "__main__":
    main()
