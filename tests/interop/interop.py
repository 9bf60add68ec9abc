"""Interoperability-test harness: a real moatd for third-party clients.

Reuses tests/integration/moattest.py's Broker (free loopback port, temp
config with `listener <port> 127.0.0.1` and `allow_anonymous true`, SIGTERM
stop asserting exit 0 and no sanitizer report). InteropTest gives each test a
fresh broker; `run` and `spawn` start client programs with bounded waits.
Python 3 standard library only (the paho test imports paho itself).
"""
import os
import subprocess
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))

import moattest  # noqa: E402  (path set just above)

WAIT_S = 10.0  # longest wait for any single client step


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

    def wait_subscribed(self, count=1):
        """Gives subscriber processes time to have their SUBACK before a publish:
        the broker log is not parsed, so this waits for the client count in
        /proc (established sockets to the port) up to WAIT_S."""
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline:
            if established(self.port) >= count:
                time.sleep(0.3)  # SUBSCRIBE follows CONNACK within one round trip
                return
            time.sleep(0.05)
        self.fail("only %d of %d clients connected" % (established(self.port), count))


def established(port):
    """Number of ESTABLISHED loopback TCP connections whose local port is port."""
    n = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                next(f)
                for line in f:
                    cols = line.split()
                    if int(cols[1].split(":")[1], 16) == port and cols[3] == "01":
                        n += 1
        except OSError:
            continue
    return n
