#!/usr/bin/python3
"""End-to-end check of `moat bench`: starts moatd on a free loopback port
and a TLS listener (certificates from tests/data/make_certs.sh) on another,
runs two QoS 1 publisher/subscriber pairs for two seconds on each, and
asserts that each JSON line reports messages received, none lost and none
duplicated, and that TLS was used where asked.

Usage: smoke.py MOATD MOAT (paths of the built binaries). Standard library only.
"""
import json
import os
import socket
import subprocess
import sys
import tempfile
import time


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc, timeout_s=10.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit("moatd exited early with %d" % proc.returncode)
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    sys.exit("moatd did not listen on port %d" % port)


def check(run, tls, e2e=""):
    """Exits with a message unless <run> (a finished `moat bench` of 2 pairs) lost nothing."""
    print(run.stdout, end="")
    if run.returncode != 0:
        sys.exit("moat bench exited with %d:\n%s" % (run.returncode, run.stderr))
    if "moat bench:" not in run.stderr:
        sys.exit("no progress line on standard error")
    res = json.loads(run.stdout.strip().splitlines()[-1])
    checks = [("tls %s" % tls, res["tls"] is tls), ("e2e %r" % e2e, res["e2e"] == e2e),
              ("connected", res["connected"] == 4), ("received > 0", res["received"] > 0),
              ("received == expected", res["received"] == res["expected"]),
              ("lost == 0", res["lost"] == 0), ("dup == 0", res["dup"] == 0),
              ("errors == 0", res["errors"] == 0),
              ("latency measured", 0 < res["p50_us"] <= res["p99_us"] <= res["max_us"])]
    failed = [name for name, ok in checks if not ok]
    if failed:
        sys.exit("failed%s%s: %s" % (" over TLS" if tls else "", " sealed" if e2e else "",
                                      ", ".join(failed)))


def main():
    moatd, moat = sys.argv[1], sys.argv[2]
    make_certs = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data",
                              "make_certs.sh")
    port, tls_port = free_port(), free_port()
    while tls_port == port:
        tls_port = free_port()
    pairs = ["--scenario", "pairs", "--pairs", "2", "-q", "1", "--duration", "2"]
    with tempfile.TemporaryDirectory() as tmp:
        certs = os.path.join(tmp, "certs")
        subprocess.run(["sh", make_certs, certs], check=True, capture_output=True, timeout=60)
        conf = os.path.join(tmp, "moatd.conf")
        with open(conf, "w") as f:
            f.write("listener %d 127.0.0.1\nallow_anonymous true\n" % port)
            f.write("listener %d 127.0.0.1\ncertfile %s\nkeyfile %s\ncafile %s\n" % (
                tls_port, os.path.join(certs, "server.crt"), os.path.join(certs, "server.key"),
                os.path.join(certs, "ca.crt")))
        broker = subprocess.Popen([moatd, "-c", conf], stdout=subprocess.DEVNULL,
                                  stderr=subprocess.PIPE, text=True)
        try:
            wait_port(port, broker)
            wait_port(tls_port, broker)
            run = subprocess.run([moat, "bench", "-h", "127.0.0.1", "-p", str(port)] + pairs +
                                 ["--rate", "2000"], capture_output=True, text=True, timeout=60)
            tls_run = subprocess.run([moat, "bench", "-h", "127.0.0.1", "-p", str(tls_port),
                                      "--cafile", os.path.join(certs, "ca.crt")] + pairs +
                                     ["--rate", "500"], capture_output=True, text=True, timeout=60)
            e2e_run = subprocess.run([moat, "bench", "-h", "127.0.0.1", "-p", str(port), "--e2e",
                                      "chacha20-poly1305"] + pairs + ["--rate", "500"],
                                     capture_output=True, text=True, timeout=60)
        finally:
            broker.terminate()
            _, err = broker.communicate(timeout=20)
    check(run, False)
    check(tls_run, True)
    check(e2e_run, False, "chacha20-poly1305")
    if "ERROR: AddressSanitizer" in err or "runtime error:" in err:
        sys.exit("moatd sanitizer report:\n" + err)


if __name__ == "__main__":
    main()
