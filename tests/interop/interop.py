"""Interoperability-test harness: a real moatd for third-party clients.

Reuses tests/integration/moattest.py's Broker (free loopback port, temp
config with `listener <port> 127.0.0.1` and `allow_anonymous true`, SIGTERM
stop asserting exit 0 and no sanitizer report). InteropTest gives each test a
fresh broker; `run` and `spawn` start client programs with bounded waits.
Python 3 standard library only (the paho test imports paho itself).
"""
import os
import select
import subprocess
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))

import moattest  # noqa: E402  (path set just above)

WAIT_S = 10.0  # longest wait for any single client step
MOSQUITTO_SUB = "/usr/bin/mosquitto_sub"


class InteropTest(unittest.TestCase):
    """Starts moatd ($MOATD) before each test and stops it after, failing the
    test on a non-zero exit or a sanitizer report."""

    def setUp(self):
        if not os.environ.get("MOATD"):
            self.fail("MOATD is not set (path to moatd); run through ctest")
        self.broker = moattest.Broker()
        self.broker.start()
        self.port = self.broker.port
        self.procs = []
        self.peers = []

    def tearDown(self):
        for p in self.peers:
            p.close()
        for p in self.procs:
            if p.poll() is None:
                p.kill()
            p.communicate()  # reaps it and closes its pipes
        try:
            self.broker.stop(check=True)
        finally:
            self.broker.cleanup()

    def peer(self, version=5):
        """A raw MQTT client (moattest.Peer) connected with an assigned id."""
        p = moattest.Peer(self.port, version=version)
        self.peers.append(p)
        p.connect("")
        return p

    def spawn(self, argv, env=None):
        """Starts argv with pipes (env: extra variables); killed at tearDown if
        still running."""
        p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             stdin=subprocess.DEVNULL, env=dict(os.environ, **(env or {})))
        self.procs.append(p)
        return p

    def finish(self, proc, timeout=WAIT_S):
        """Waits for proc; asserts exit 0; returns its stdout as text."""
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
            self.fail("%s timed out after %.0f s; stdout %r stderr %r\nbroker log:\n%s"
                      % (proc.args, timeout, out, err, self.broker.log()[-4000:]))
        self.assertEqual(proc.returncode, 0, "%s exited %d; stdout %r stderr %r"
                         % (proc.args, proc.returncode, out, err))
        return out.decode("utf-8", "replace")

    def run_ok(self, argv, timeout=WAIT_S, env=None):
        """Runs argv to completion (bounded) and returns its stdout."""
        return self.finish(self.spawn(argv, env), timeout)

    def mosquitto_sub(self, version, *args):
        """Starts Debian's mosquitto_sub (-V version, debug on, stdout line-buffered
        by stdbuf so its SUBACK line is seen at once) on this broker and
        returns once it has printed its SUBACK, so a publish after this reaches it.
        Read its messages with mosquitto_output."""
        p = self.spawn(["stdbuf", "-oL", MOSQUITTO_SUB, "-h", "127.0.0.1", "-p",
                        str(self.port), "-V", version, "-d"] + list(args))
        p.head = b""
        deadline = time.monotonic() + WAIT_S
        while b"received SUBACK" not in p.head:
            left = deadline - time.monotonic()
            ready, _, _ = select.select([p.stdout], [], [], max(left, 0))
            chunk = os.read(p.stdout.fileno(), 4096) if ready else b""
            if not chunk:
                self.fail("mosquitto_sub %s: no SUBACK within %.0f s (exit %s); output %r"
                          % (args, WAIT_S, p.poll(), p.head))
            p.head += chunk
        return p

    def mosquitto_output(self, proc, timeouts_ok=False):
        """The message lines a mosquitto_sub printed (its debug lines removed),
        after it exits 0 (or 27, its -W timeout, with timeouts_ok)."""
        try:
            out, err = proc.communicate(timeout=WAIT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
            self.fail("mosquitto_sub timed out; output %r" % (proc.head + out))
        self.assertIn(proc.returncode, (0, 27) if timeouts_ok else (0,),
                      "mosquitto_sub exit %d: %r" % (proc.returncode, err))
        text = (proc.head + out).decode("utf-8", "replace")
        return [line for line in text.splitlines()
                if not line.startswith(("Client ", "Subscribed (mid"))]
