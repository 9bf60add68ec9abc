#!/usr/bin/env python3
"""Simulator scale (docs/performance.md "Simulator scale", by hand): N devices
of one moat-device process over mutual TLS against one moatd.

One real bundle is made by `moat ctl thing create` (moat-sc serve); the other
N-1 are copies of it with their own client id in bundle.json (same
certificate: moatd's use_identity_as_username makes them one user), run with
--plain, since end-to-end keys are per registered thing. With --e2e K, K real
bundles are made instead and run sealed. An observer on the password
listener counts readings per device; the script samples RSS and CPU of
moat-device and moatd, and says when moat-device had opened every device
("running" on its stderr) and when all N were seen publishing; at the end,
how many sockets and queue files moat-device holds open. Real
bundles are made --jobs at a time (each `moat ctl` is a process and a
round trip to moat-sc; the SC registers them one at a time).

usage: bench/device_scale.py N [--seconds S] [--interval S] [--e2e] [--jobs J]
                             [--connect-rate R] [--bin DIR] [--device PATH] [--keep]
                             [--perf FILE]
(--device: another moat-device, e.g. an older build, as the baseline; --perf: `perf record
-g` of moat-device for the whole run into FILE)
"""
import argparse
import concurrent.futures
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
from moattest import Peer, PUBLISH, free_port  # noqa: E402


def cpu_s(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def established(port):
    """TCP connections established to <port> (moatd's side), counted by ss."""
    out = subprocess.run(["ss", "-Htn", "state", "established", "sport = :%d" % port],
                         capture_output=True, text=True, timeout=30).stdout
    return len(out.splitlines())


def open_files(pid):
    """(sockets, queue files) among the descriptors of <pid>."""
    socks = queues = 0
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            target = os.readlink("/proc/%d/fd/%s" % (pid, fd))
        except OSError:
            continue  # closed meanwhile
        socks += target.startswith("socket:")
        queues += target.endswith("/state/queue")
    return socks, queues


def rss_mb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0


def main():
    children = []
    try:
        run_bench(parse_args(), children)
    finally:
        for p in children:  # also when it failed half-way: leave nothing running
            if p.poll() is None:
                p.kill()
                p.wait()


def parse_args():
    ap = argparse.ArgumentParser()
    ap.add_argument("n", type=int)
    ap.add_argument("--seconds", type=int, default=30)
    ap.add_argument("--interval", type=int, default=5)
    ap.add_argument("--e2e", action="store_true")
    ap.add_argument("--jobs", type=int, default=4)
    ap.add_argument("--connect-rate", type=int, default=500)
    ap.add_argument("--bin", default=os.path.join(HERE, "..", "build", "bin"))
    ap.add_argument("--device")
    ap.add_argument("--keep", action="store_true", help="keep the run's directory (logs, bundles)")
    ap.add_argument("--perf", help="perf record -g of moat-device into this file")
    return ap.parse_args()


def run_bench(a, children):
    binp = lambda name: os.path.abspath(os.path.join(a.bin, name))  # noqa: E731
    base = tempfile.mkdtemp(prefix="moat-devscale-")
    sc_dir, bundles = os.path.join(base, "sc"), os.path.join(base, "bundles")
    os.mkdir(bundles)
    run = lambda *argv: subprocess.run(argv, check=True, capture_output=True, timeout=120)  # noqa
    run(binp("moat-sc"), "--dir", sc_dir, "init", "--name", "scale")
    run(binp("moat-sc"), "--dir", sc_dir, "thing", "add", "broker-1", "--broker", "--san",
        "IP:127.0.0.1", "--out", os.path.join(base, "broker"))
    with open(os.path.join(sc_dir, "policies.json"), "w") as f:
        json.dump({"policies": [{"filter": "moat/+/telemetry", "publish": "role == sensor",
                                 "subscribe": "role == historian"}]}, f)
    run(binp("moat"), "passwd", "-c", "-b", os.path.join(base, "passwd"), "sc", "sc-pw")
    run(binp("moat"), "passwd", "-b", os.path.join(base, "passwd"), "obs", "obs-pw")
    with open(os.path.join(base, "sc.pw"), "w") as f:
        f.write("sc-pw\n")
    port, tls_port = free_port(), free_port()
    with open(os.path.join(base, "moatd.conf"), "w") as f:
        f.write("allow_anonymous false\npassword_file %s/passwd\nsc_username sc\n"
                "listener %d 127.0.0.1\nlistener %d 127.0.0.1\ncertfile %s/broker/cert.pem\n"
                "keyfile %s/broker/key.pem\ncafile %s/ca.pem\nrequire_certificate true\n"
                "use_identity_as_username true\n" % (base, port, tls_port, base, base, sc_dir))
    logs = open(os.path.join(base, "log"), "wb")
    moatd = subprocess.Popen([binp("moatd"), "-c", os.path.join(base, "moatd.conf")],
                             stdout=logs, stderr=subprocess.STDOUT)
    children.append(moatd)
    time.sleep(1)
    serve = subprocess.Popen([binp("moat-sc"), "--dir", sc_dir, "serve", "--broker",
                              "127.0.0.1:%d" % port, "--username", "sc", "--password-file",
                              os.path.join(base, "sc.pw"), "--rate", "100000/s",
                              "--broker-url", "mqtts://127.0.0.1:%d" % tls_port],
                             stdout=logs, stderr=subprocess.STDOUT)
    children.append(serve)
    while not os.path.exists(os.path.join(sc_dir, "admin.sock")):
        time.sleep(0.1)
    time.sleep(1)
    t0 = time.monotonic()
    real = a.n if a.e2e else 1
    with concurrent.futures.ThreadPoolExecutor(a.jobs) as pool:
        list(pool.map(lambda i: run(binp("moat"), "ctl", "--sc-dir", sc_dir, "thing", "create",
                                    "dev-%05d" % i, "--attr", "role=sensor", "--out",
                                    os.path.join(bundles, "dev-%05d" % i)), range(real)))
    src = os.path.join(bundles, "dev-00000")
    for i in range(real, a.n):
        dst = os.path.join(bundles, "dev-%05d" % i)
        os.mkdir(dst, 0o700)
        for name in ("sign.key", "agree.key", "sc.pub", "key.pem", "cert.pem", "ca.pem"):
            shutil.copy2(os.path.join(src, name), dst)
        with open(os.path.join(src, "bundle.json")) as f:
            doc = json.load(f)
        doc["client_id"] = "dev-%05d" % i
        with open(os.path.join(dst, "bundle.json"), "w") as f:
            json.dump(doc, f)
    print("bundles: %d (%d real) in %.1f s" % (a.n, real, time.monotonic() - t0), flush=True)

    seen, count, stop = {}, [0], threading.Event()

    def observe():
        p = None
        while not stop.is_set():
            try:
                if p is None:
                    p = Peer(port, timeout=5)
                    # no keep alive: the observer only listens
                    p.connect("obs", username="obs", password="obs-pw", keepalive=0)
                    p.subscribe("moat/+/telemetry", qos=0)
                m = p.recv(timeout=0.5)
            except OSError:
                continue
            except Exception as e:  # noqa: BLE001
                print("observer: %r; reconnecting" % e, flush=True)
                p = None
                continue
            if m.type == PUBLISH:
                seen[m.topic.split("/")[1]] = time.monotonic()
                count[0] += 1
    th = threading.Thread(target=observe, daemon=True)
    th.start()
    time.sleep(0.5)
    argv = [a.device or binp("moat-device"), "--bundles", bundles, "--count", str(a.n), "--interval",
            str(a.interval), "--connect-rate", str(a.connect_rate), "--seed", "1"] + ([] if a.e2e else
                                                                       ["--plain"])
    dev = subprocess.Popen(argv, stdout=logs, stderr=subprocess.PIPE, text=True)
    children.append(dev)
    print("moat-device pid %d" % dev.pid, flush=True)
    perf = None
    if a.perf:
        perf = subprocess.Popen(["perf", "record", "-g", "-q", "-o", a.perf, "-p", str(dev.pid)],
                                stdout=logs, stderr=subprocess.STDOUT)
        children.append(perf)
    start = time.monotonic()
    opened, dev_lines = [None], []

    def watch_device():
        for line in dev.stderr:
            dev_lines.append(line.rstrip())
            if opened[0] is None and "running" in line:
                opened[0] = time.monotonic() - start
    threading.Thread(target=watch_device, daemon=True).start()
    all_seen = all_connected = None
    c0 = count[0]
    cpu0 = (cpu_s(dev.pid), cpu_s(moatd.pid), cpu_s(serve.pid))
    samples = []
    while time.monotonic() - start < a.seconds:
        time.sleep(5)
        now = time.monotonic()
        live = sum(1 for t in seen.values() if now - t < a.interval * 2)
        if all_seen is None and len(seen) == a.n:
            all_seen = now - start
        conns = established(tls_port)
        if all_connected is None and conns >= a.n:
            all_connected = now - start
        samples.append((now - start, live, rss_mb(dev.pid), rss_mb(moatd.pid), count[0],
                        cpu_s(dev.pid), cpu_s(moatd.pid)))
        prev = samples[-2] if len(samples) > 1 else (0, 0, 0, 0, c0, cpu0[0], cpu0[1])
        dt = samples[-1][0] - prev[0]
        print("t=%3.0fs tls connections=%d devices publishing=%d rss moat-device=%.0f MB "
              "moatd=%.0f MB readings/s=%.0f cpu moat-device=%.0f%% moatd=%.0f%%" %
              ((samples[-1][0], conns) + samples[-1][1:4] +
               ((count[0] - prev[4]) / dt, 100 * (samples[-1][5] - prev[5]) / dt,
                100 * (samples[-1][6] - prev[6]) / dt)), flush=True)
    el = time.monotonic() - start
    print("devices opened after %s s; all %d connected after %s s, seen publishing after %s s"
          " (%d seen)" % ("%.1f" % opened[0] if opened[0] is not None else "-", a.n,
                          "%.0f" % all_connected if all_connected is not None else "-",
                          "%.0f" % all_seen if all_seen is not None else "-", len(seen)),
          flush=True)
    cpu1 = (cpu_s(dev.pid), cpu_s(moatd.pid), cpu_s(serve.pid))
    print("moat-device holds %d sockets and %d queue files open" % open_files(dev.pid))
    print("readings/s %.0f (expected %.0f); CPU moat-device %.0f %%, moatd %.0f %% (of one core,"
          " whole run incl. connecting); moat-sc %.1f s CPU in all" %
          ((count[0] - c0) / el, a.n / a.interval, 100 * (cpu1[0] - cpu0[0]) / el,
           100 * (cpu1[1] - cpu0[1]) / el, cpu1[2] - cpu0[2]))
    stop.set()
    if perf is not None:
        perf.send_signal(signal.SIGINT)
        perf.wait(timeout=120)
    for p in (dev, serve, moatd):
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(timeout=60)
        except subprocess.TimeoutExpired:
            p.kill()
    logs.close()
    with open(os.path.join(base, "log"), errors="replace") as f:
        lines = f.read().splitlines()
    errors = [x for x in dev_lines if "running" not in x]
    print("moat-device messages: %d; first: %s" % (len(errors), errors[:3]))
    print("moatd lines: %s" % [x for x in lines if "moat-device" not in x][-5:])
    if a.keep:
        print("kept: %s" % base)
    else:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
