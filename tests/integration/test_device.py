"""moat-device (the device simulator) end to end: a real moatd (a TLS listener
with require_certificate and use_identity_as_username for the devices, a
password listener for the Security Center and the test's observer),
`moat-sc serve`, and bundles made by `moat ctl thing create` (devices with
role=sensor, historians with role=historian) under the contract's topic
policies (moatd and the SC started by stack.py).

Checked: readings arrive every interval (--interval 1) and open with the
historian's bundle (`moat sub --e2e`), seq contiguous per device; a command
sealed and signed by the historian (`moat pub --e2e`) switches the relay and
is acknowledged on the status topic; a replayed id, a stale iat, a bare
unsigned command and one signed by another historian are refused with the
contract's reasons; with the broker stopped for a few seconds readings go to
the durable queue and are drained after (no seq missing); the Last Will marks
the device offline when the process is killed; --plain publishes the JSON
unsealed and keeps its queue file in --queue-dir; `moat-device --tamper ID`
sends a signed alert that the SC turns into a revocation.
"""
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import unittest
import uuid

from cryptography.hazmat.primitives import serialization

import moattest
from moattest import Peer, free_port
from stack import MOAT, MOAT_DEVICE, MOAT_SC, Stack, read

POLICIES = {"policies": [
    {"filter": "moat/+/telemetry", "publish": "role == sensor", "subscribe": "role == historian"},
    {"filter": "moat/+/status", "publish": "role == sensor", "subscribe": "role == historian"},
    {"filter": "moat/+/cmd", "publish": "role == historian", "subscribe": "role == sensor",
     "signed": True, "max_age_s": 30},
]}


def setUpModule():
    if moattest.is_mosquitto():
        raise unittest.SkipTest("the Security Center speaks to moatd")
    for path in (MOAT, MOAT_SC, MOAT_DEVICE):
        if not os.path.exists(path):
            raise unittest.SkipTest("%s not built" % path)


def cmd(state, iat=None, cid=None):
    return json.dumps({"id": cid or uuid.uuid4().hex, "state": state,
                       "iat": int(time.time()) if iat is None else iat})


class Device(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.base = tempfile.mkdtemp(prefix="moattest-device-")
        b = cls.base
        cls.stack = Stack(b)
        try:
            cls.stack.start(users=[("obs", "obs-pw")], policies=POLICIES)
        except BaseException:
            cls.tearDownClass()
            raise
        cls.broker, cls.sc_dir, cls.tls_port = cls.stack.broker, cls.stack.sc_dir, \
            cls.stack.tls_port
        cls.ctl = cls.stack.ctl
        cls.bundles = os.path.join(b, "bundles")
        os.mkdir(cls.bundles)
        for name in ("dev-1", "dev-2"):
            cls.stack.create(name, "sensor", os.path.join(cls.bundles, name))
        for name in ("hist-1", "hist-pub", "hist-other"):
            cls.stack.create(name, "historian", os.path.join(b, name))
        cls.signer = os.path.join(b, "hist.pub")
        with open(os.path.join(b, "hist-pub", "sign.key"), "rb") as f:
            key = serialization.load_pem_private_key(f.read(), None)
        with open(cls.signer, "wb") as f:
            f.write(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                  serialization.PublicFormat.SubjectPublicKeyInfo))

    @classmethod
    def tearDownClass(cls):
        problems = cls.stack.stop(keep_broker_log=os.environ.get("MOAT_DEVICE_KEEP_LOG"))
        shutil.rmtree(cls.base, ignore_errors=True)
        if problems:
            raise AssertionError("\n".join(problems))

    # ---- helpers ------------------------------------------------------------

    def start_device(self, *extra):
        log = open(os.path.join(self.base, "device.log"), "ab")
        self.addCleanup(log.close)
        env = dict(os.environ)
        env.setdefault("ASAN_OPTIONS", "detect_leaks=1")
        p = subprocess.Popen([MOAT_DEVICE, "--bundles", self.bundles, "--interval", "1",
                              "--command-signer", self.signer, "--seed", "7"] + list(extra),
                             stdout=log, stderr=subprocess.STDOUT, env=env)

        def stop():
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                self.assertEqual(p.wait(timeout=30), 0, self.device_log())
            for bad in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:"):
                self.assertNotIn(bad, self.device_log())
        self.addCleanup(stop)
        return p

    def device_log(self):
        return read(os.path.join(self.base, "device.log"))

    def tls_args(self, bundle):
        """moat pub/sub take TLS from the command line, not from the bundle's mqtts:// URL."""
        b = os.path.join(self.base, bundle)
        return ["-h", "127.0.0.1", "-p", str(self.tls_port), "--cafile", b + "/ca.pem",
                "--cert", b + "/cert.pem", "--key", b + "/key.pem"]

    def sub(self, bundle, topic, count, wait_s, *extra):
        """Starts `moat sub --e2e` with the historian's bundle; returns the process."""
        return subprocess.Popen([MOAT, "sub", "--e2e", os.path.join(self.base, bundle), "-q", "1",
                                 "-t", topic, "-v", "-C", str(count), "-W", str(wait_s)] +
                                self.tls_args(bundle) + list(extra), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)

    @staticmethod
    def lines(proc, timeout=60):
        out, err = proc.communicate(timeout=timeout)
        got = []
        for line in out.splitlines():
            topic, _, payload = line.partition(" ")
            got.append((topic, json.loads(payload)))
        return got, err

    def pub(self, bundle, topic, payload, *extra):
        argv = [MOAT, "pub", "-q", "1", "-t", topic, "-m", payload]
        if bundle is not None:
            argv += ["--e2e", os.path.join(self.base, bundle)] + self.tls_args(bundle)
        p = subprocess.run(argv + list(extra), capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 0, p.stderr)

    def observer(self, *topics):
        peer = Peer(self.broker.port)
        peer.connect("obs-%d" % free_port(), username="obs", password="obs-pw")
        peer.subscribe(*topics, qos=1)
        self.addCleanup(peer.close)
        return peer

    # ---- tests ----------------------------------------------------------------

    def test_readings_arrive_every_interval_and_open(self):
        self.start_device()
        t0 = time.monotonic()
        got, err = self.lines(self.sub("hist-1", "moat/+/telemetry", 8, 30))
        self.assertEqual(len(got), 8, err + self.device_log())
        per = {}
        for topic, r in got:
            self.assertEqual(topic, "moat/%s/telemetry" % r["device"])
            self.assertEqual(set(r), {"device", "time", "seq", "temperature", "humidity",
                                      "relay"})
            self.assertIn(r["relay"], ("on", "off"))
            self.assertTrue(15 <= r["temperature"] <= 30 and 20 <= r["humidity"] <= 80)
            per.setdefault(r["device"], []).append(r)
        self.assertEqual(set(per), {"dev-1", "dev-2"})
        for rs in per.values():
            seqs = [r["seq"] for r in rs]
            self.assertEqual(seqs, list(range(seqs[0], seqs[0] + len(seqs))))
            for a, b in zip(rs, rs[1:]):
                self.assertTrue(700 <= b["time"] - a["time"] <= 1500, rs)
        self.assertLess(time.monotonic() - t0, 20)

    def test_command_round_trip_and_refusals(self):
        self.start_device()
        status = self.sub("hist-1", "moat/dev-1/status", 5, 40)
        time.sleep(3)  # device connected, its key for the cmd topic fetched
        good = cmd("on")
        self.pub("hist-pub", "moat/dev-1/cmd", good)
        self.pub("hist-pub", "moat/dev-1/cmd", good)  # same id: replayed
        self.pub("hist-pub", "moat/dev-1/cmd", cmd("off", iat=int(time.time()) - 120))
        bare = cmd("off")
        self.pub(None, "moat/dev-1/cmd", bare, "-i", "hist-pub", *self.tls_args("hist-pub"))
        self.pub("hist-other", "moat/dev-1/cmd", cmd("off"))
        got, err = self.lines(status)
        self.assertEqual(len(got), 5, err + self.device_log())
        st = [r for _, r in got]
        good_id = json.loads(good)["id"]
        self.assertEqual(st[0], {"device": "dev-1", "cmd_id": good_id, "state": "on",
                                 "ok": True})
        self.assertEqual((st[1]["cmd_id"], st[1]["ok"], st[1]["reason"]),
                         (good_id, False, "replayed"))
        self.assertEqual((st[2]["ok"], st[2]["reason"]), (False, "stale"))
        self.assertEqual((st[3]["cmd_id"], st[3]["ok"], st[3]["reason"]),
                         (json.loads(bare)["id"], False, "unsigned"))
        self.assertEqual((st[4]["ok"], st[4]["reason"]), (False, "bad signer"))
        # the relay state shows in the next reading
        got, _ = self.lines(self.sub("hist-1", "moat/dev-1/telemetry", 1, 10))
        self.assertEqual(got[0][1]["relay"], "on")

    def test_broker_outage_readings_queued_and_drained(self):
        self.start_device("--count", "1", "--drain-rate", "20")
        first, err = self.lines(self.sub("hist-1", "moat/dev-1/telemetry", 2, 30, "-c",
                                         "-x", "600"))
        self.assertEqual(len(first), 2, err + self.device_log())
        self.broker.stop(check=False)
        time.sleep(4)
        self.broker.start()
        time.sleep(6)  # the device reconnects (backoff <= 5 s) and drains into the session
        later, err = self.lines(self.sub("hist-1", "moat/dev-1/telemetry", 9, 30, "-c",
                                         "-x", "600"))
        self.assertEqual(len(later), 9, err + self.device_log() + self.broker.log())
        # QoS 1: the first subscriber may leave before its last PUBACK, so that
        # reading comes again; none may be missing
        seqs = [r["seq"] for _, r in first + later]
        self.assertEqual(seqs, sorted(seqs))
        seqs = sorted(set(seqs))
        self.assertEqual(seqs, list(range(seqs[0], seqs[0] + len(seqs))), seqs)
        times = [r["time"] for _, r in later]
        self.assertGreater(max(times) - min(times), 3000)  # readings made during the outage

    def test_plain_readings_and_queue_dir(self):
        peer = self.observer("moat/dev-1/telemetry")
        qdir = os.path.join(self.base, "queues")
        self.start_device("--count", "1", "--plain", "--queue-dir", qdir)
        r = json.loads(peer.expect_publish(timeout=15).payload)  # not sealed: JSON as is
        self.assertEqual((r["device"], r["seq"]), ("dev-1", 1))
        self.assertTrue(os.path.exists(os.path.join(qdir, "dev-1.queue")))

    def test_will_marks_offline_when_killed(self):
        p = self.start_device("--count", "1")
        peer = self.observer("moat/dev-1/online")
        deadline = time.monotonic() + 15
        seen = None
        while time.monotonic() < deadline and seen != b"online":
            seen = peer.expect_publish(timeout=15).payload
        self.assertEqual(seen, b"online")
        p.kill()
        p.wait()
        self.assertEqual(peer.expect_publish(timeout=90).payload, b"offline")

    def test_zz_tamper_alert_revokes(self):
        self.start_device()
        time.sleep(3)
        r = subprocess.run([MOAT_DEVICE, "--bundles", self.bundles, "--tamper", "dev-2"],
                           capture_output=True, text=True, timeout=10)
        self.assertEqual(r.returncode, 0, r.stderr)
        deadline = time.monotonic() + 20
        status = None
        while time.monotonic() < deadline:
            status = self.ctl("thing", "show", "dev-2")
            if "revoked" in json.dumps(status):
                break
            time.sleep(0.5)
        self.assertIn("revoked", json.dumps(status), self.stack.log("sc"))
        self.assertIn("tamper alert sent", self.device_log())
        bad = subprocess.run([MOAT_DEVICE, "--bundles", os.path.join(self.base, "nothing"),
                              "--tamper", "dev-2"], capture_output=True, text=True, timeout=10)
        self.assertEqual(bad.returncode, 1)
        self.assertIn("no moat-device running", bad.stderr)


if __name__ == "__main__":
    unittest.main()
