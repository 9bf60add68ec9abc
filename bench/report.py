#!/usr/bin/python3
"""Formats the results of bench/run.sh (one JSON object per line, tagged with
case, broker and mode) as a Markdown table: throughput of both brokers and
their ratio, p99 latency unthrottled and at a fixed rate, losses and
duplicates, resident memory per idle connection; then the geometric mean of
the throughput ratios and the issue's targets, each marked met or missed.
Cases named "tls ..." or "persist ..." are listed in the table too but kept
out of the mean and the targets; their ratios follow separately, with the
persistence target (>= 1.0 against mosquitto with its persistence on, no
QoS 1/2 message lost). "tls connect rate" is in
connections/s and its p99 is the connect time (TCP + TLS + CONNACK).

Usage: report.py RESULTS.jsonl IDLE_CONNECTIONS
"""
import json
import math
import sys

BROKERS = ("moatd", "mosquitto")


def lost_dup(r):
    if r is None or r.get("failed"):
        return "failed"
    return "%d/%d" % (r["lost"], r["dup"])


def main():
    rows = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
    idle_n = int(sys.argv[2])
    by = {(r["case"], r["broker"], r["mode"]): r for r in rows}
    cases = []
    for r in rows:
        if r["mode"] != "idle" and r["case"] not in cases:
            cases.append(r["case"])

    print("| case | moatd msg/s | mosquitto msg/s | ratio | p99 µs unthrottled (moatd / mosq) "
          "| p99 µs fixed rate (moatd / mosq) | lost/dup moatd (max; fixed) "
          "| lost/dup mosquitto (max; fixed) |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    ratios, p99_worse, qos_loss, below_one = [], [], [], []
    tls_ratios, persist = [], []
    for case in cases:
        if case == "tls connect rate":
            m = {b: by.get((case, b, "max")) for b in BROKERS}
            if all(x is not None and not x.get("failed") and x.get("conns_per_s", 0) > 0
                   for x in m.values()):
                ratio = m["moatd"]["conns_per_s"] / m["mosquitto"]["conns_per_s"]
                tls_ratios.append((case, "connections/s", ratio))
                print("| %s (connections/s; connect time p99) | %.0f | %.0f | %.2f | %d / %d "
                      "| | errors %d | errors %d |" % (
                          case, m["moatd"]["conns_per_s"], m["mosquitto"]["conns_per_s"], ratio,
                          m["moatd"]["p99_us"], m["mosquitto"]["p99_us"],
                          m["moatd"]["errors"], m["mosquitto"]["errors"]))
            else:
                print("| %s | run failed | | | | | | |" % case)
            continue
        m = {b: by.get((case, b, "max")) for b in BROKERS}
        f = {b: by.get((case, b, "fixed")) for b in BROKERS}
        ok = all(x is not None and not x.get("failed") for x in list(m.values()) + list(f.values()))
        if ok and m["mosquitto"]["msgs_per_s"] > 0:
            ratio = m["moatd"]["msgs_per_s"] / m["mosquitto"]["msgs_per_s"]
            tls = case.startswith(("tls ", "persist "))
            if tls:
                tls_ratios.append((case, "msg/s", ratio))
                if case.startswith("persist "):
                    persist.append((case, ratio, [x for x in (m["moatd"], f["moatd"]) if x["lost"] or x["dup"]]))
            else:
                ratios.append(ratio)
            if ratio < 1.0 and not tls:
                below_one.append(case)
            if f["moatd"]["p99_us"] > f["mosquitto"]["p99_us"] and not tls:
                p99_worse.append(case)
            if not case.startswith("qos0") and not tls:
                for x in (m["moatd"], f["moatd"]):
                    if x["lost"] or x["dup"]:
                        qos_loss.append("%s (%s: lost %d, dup %d)" % (case, x["mode"], x["lost"], x["dup"]))
            print("| %s | %.0f | %.0f | %.2f | %d / %d | %d / %d | %s; %s | %s; %s |" % (
                case, m["moatd"]["msgs_per_s"], m["mosquitto"]["msgs_per_s"], ratio,
                m["moatd"]["p99_us"], m["mosquitto"]["p99_us"],
                f["moatd"]["p99_us"], f["mosquitto"]["p99_us"],
                lost_dup(m["moatd"]), lost_dup(f["moatd"]),
                lost_dup(m["mosquitto"]), lost_dup(f["mosquitto"])))
        else:
            print("| %s | run failed | | | | | | |" % case)

    idle = {b: by.get(("idle", b, "idle")) for b in BROKERS}
    per_conn = {}
    for b, r in idle.items():
        if r is not None and not r.get("failed") and r["connected"] > 0:
            per_conn[b] = (r["rss_after_kb"] - r["rss_before_kb"]) * 1024.0 / r["connected"]
    if len(per_conn) == 2:
        print("| idle %d connections: resident B/connection | %.0f (%d connected) "
              "| %.0f (%d connected) | %.2f | | | | |" % (
                  idle_n, per_conn["moatd"], idle["moatd"]["connected"],
                  per_conn["mosquitto"], idle["mosquitto"]["connected"],
                  per_conn["moatd"] / per_conn["mosquitto"] if per_conn["mosquitto"] else 0))
    else:
        print("| idle %d connections | run failed | | | | | | |" % idle_n)

    print()
    if ratios:
        gmean = math.exp(sum(math.log(x) for x in ratios) / len(ratios))
        print("Geometric mean of throughput ratios moatd/mosquitto: %.2f over %d cases" % (gmean, len(ratios)))
    else:
        gmean = 0.0
    if tls_ratios:
        print("TLS and persistence ratios moatd/mosquitto (not in the mean): %s" % ", ".join(
            "%s %.2f (%s)" % (case, ratio, unit) for case, unit, ratio in tls_ratios))
    print()
    print("Targets:")
    print("- geometric mean >= 1.5: %s (%.2f)" % ("met" if gmean >= 1.5 else "MISSED", gmean))
    print("- no case below 1.0: %s" % ("met" if not below_one and ratios else "MISSED " + ", ".join(below_one)))
    print("- p99 at a fixed rate no worse than mosquitto: %s" % (
        "met" if not p99_worse and ratios else "MISSED in " + ", ".join(p99_worse)))
    print("- zero lost or duplicated QoS 1/2 messages: %s" % (
        "met" if not qos_loss and ratios else "MISSED: " + "; ".join(qos_loss)))
    mem = per_conn.get("moatd")
    print("- <= 1 KiB resident per idle connection: %s" % (
        "failed to measure" if mem is None else ("met" if mem <= 1024 else "MISSED") + " (%.0f B)" % mem))
    if persist:
        low = [c for c, r, _ in persist if r < 1.0]
        lossy = [c for c, _, bad in persist if bad]
        print("- persistence on, >= 1.0x mosquitto with its persistence: %s" % (
            "met" if not low else "MISSED in " + ", ".join(low)))
        print("- persistence on, zero lost or duplicated QoS 1/2 messages: %s" % (
            "met" if not lossy else "MISSED in " + ", ".join(lossy)))


if __name__ == "__main__":
    main()
