#!/usr/bin/python3
"""Formats the results of bench/cluster.sh (one JSON object per line, tagged
with case, setup - single, cross or mosquitto - mode and the CPU seconds each
process used during the run) as Markdown tables:

1. throughput and p99 latency of one moatd, of the two-node cluster with
   publishers on node a and subscribers on node b, and of mosquitto, with the
   cross-node ratios to the single node and to mosquitto;
2. what crossing NATS costs per message carried (unthrottled runs): the
   CPU microseconds of the single moatd, of nodes a and b and of nats-server,
   the extra CPU of the cluster over the single node, and the extra median
   latency at the fixed rate.

Then the geometric means of the cross-node throughput ratios. Exits 1 when a
run failed or a cross-node QoS 1/2 run lost a message (so the CTest smoke
pass catches a broken cluster path); duplicates are counted, not refused.

Usage: cluster_report.py RESULTS.jsonl
"""
import json
import math
import sys

SETUPS = ("single", "cross", "mosquitto")


def usable(r):
    return r is not None and not r.get("failed") and r.get("msgs_per_s", 0) > 0


def cpu_us_per_msg(r, procs):
    """CPU µs of <procs> per message carried: published and delivered (to each
    of its subscribers), so QoS 0 messages shed under overload do not count."""
    carried = r["received"] * r["sent"] / r["expected"]
    return sum(r["cpu_s"][p] for p in procs) * 1e6 / carried


def gmean(xs):
    return math.exp(sum(math.log(x) for x in xs) / len(xs)) if xs else 0.0


def throughput_table(by, cases):
    """Prints table 1; returns the ratios cross/single and cross/mosquitto."""
    print("| case | single msg/s | cross msg/s | mosquitto msg/s | cross/single "
          "| cross/mosquitto | p99 µs unthrottled (single / cross / mosq) "
          "| p99 µs fixed rate (single / cross / mosq) | cross lost/dup (max; fixed) |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    to_single, to_mosq = [], []
    for case in cases:
        m = {s: by.get((case, s, "max")) for s in SETUPS}
        f = {s: by.get((case, s, "fixed")) for s in SETUPS}
        if not all(usable(x) for x in m.values()):
            print("| %s | run failed | | | | | | | |" % case)
            continue
        rs = m["cross"]["msgs_per_s"] / m["single"]["msgs_per_s"]
        rm = m["cross"]["msgs_per_s"] / m["mosquitto"]["msgs_per_s"]
        to_single.append(rs)
        to_mosq.append(rm)
        fixed = " / ".join(str(f[s]["p99_us"]) if usable(f[s]) else "-" for s in SETUPS)
        loss = "%d/%d" % (m["cross"]["lost"], m["cross"]["dup"])
        if usable(f["cross"]):
            loss += "; %d/%d" % (f["cross"]["lost"], f["cross"]["dup"])
        print("| %s | %.0f | %.0f | %.0f | %.2f | %.2f | %d / %d / %d | %s | %s |" % (
            case, m["single"]["msgs_per_s"], m["cross"]["msgs_per_s"],
            m["mosquitto"]["msgs_per_s"], rs, rm, m["single"]["p99_us"], m["cross"]["p99_us"],
            m["mosquitto"]["p99_us"], fixed, loss))
    return to_single, to_mosq


def cost_table(by, cases):
    print("| case | single moatd | node a | node b | nats-server | cluster extra "
          "| extra p50 µs at the fixed rate |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for case in cases:
        single, cross = by.get((case, "single", "max")), by.get((case, "cross", "max"))
        if not (usable(single) and usable(cross)):
            continue
        base = cpu_us_per_msg(single, ["single"])
        a, b = cpu_us_per_msg(cross, ["a"]), cpu_us_per_msg(cross, ["b"])
        nats = cpu_us_per_msg(cross, ["nats"])
        fs, fc = by.get((case, "single", "fixed")), by.get((case, "cross", "fixed"))
        extra_p50 = "%d" % (fc["p50_us"] - fs["p50_us"]) if usable(fs) and usable(fc) else "-"
        print("| %s | %.1f | %.1f | %.1f | %.1f | %.1f | %s |" % (
            case, base, a, b, nats, a + b + nats - base, extra_p50))


def main():
    rows = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
    by = {(r["case"], r["setup"], r["mode"]): r for r in rows}
    cases = []
    for r in rows:
        if r["case"] not in cases:
            cases.append(r["case"])

    print("Throughput and p99: one moatd, two nodes (publishers on a, subscribers on b), "
          "mosquitto")
    print()
    to_single, to_mosq = throughput_table(by, cases)
    print()
    print("CPU µs per message carried (published and delivered), unthrottled runs "
          "(user + system, from /proc)")
    print()
    cost_table(by, cases)
    print()
    print("Geometric mean of cross-node throughput ratios: %.2f to one node, %.2f to mosquitto "
          "(%d cases)" % (gmean(to_single), gmean(to_mosq), len(to_single)))

    failed = [(r["case"], r["setup"], r["mode"]) for r in rows if r.get("failed")]
    lossy = [(r["case"], r["mode"], r["lost"]) for r in rows
             if r["setup"] == "cross" and not r.get("failed") and r["qos"] > 0 and r["lost"]]
    if failed or lossy:
        print("bench-cluster: failed runs %s; cross-node QoS 1/2 runs that lost messages %s"
              % (failed, lossy), file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
