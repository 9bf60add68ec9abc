"""The whole pipeline, every part real: moatd (mutual TLS for the things and
the historian, the demo's ACL, persistence on), `moat-sc serve` (topic
policies, key release, revocation), things provisioned with `moat ctl thing
create`, moat-device (4 devices, a sealed reading every second) and
moat-historian storing into SQLite (Pipeline) or PostgreSQL
(PipelinePostgres, run under pgserver.py).

Checked through the historian's HTTP API, in this order (one stack per
class): every device's readings are stored within one interval plus a
generous margin of being made; a command switches a device and comes back
acknowledged by it; with moatd stopped for several intervals and restarted
on the same store, no reading is lost (every device's stored seq is
contiguous across the outage, readings made during it are stored: the
devices' offline queues drained and the historian's session kept what came
before it was back); `moat-device --tamper` raises an alert that the
historian stores and the Security Center turns into a revocation: the
thing is revoked, moatd cuts it off, and its readings stop while the
others go on.
"""
import http.client
import json
import os
import shutil
import subprocess
import tempfile
import time
import unittest

import moattest
from authkit import moat_passwd_file
from moattest import free_port
from stack import MOAT, MOAT_DEVICE, MOAT_HISTORIAN, MOAT_SC, Stack, run

DEVICES = ["dev-%d" % i for i in range(1, 5)]
INTERVAL_MS = 1000
MARGIN_MS = 4000  # a shared, noisy machine; the sanitizer build

# scripts/demo.sh's ACL: things on their own topics, the historian reads all
# and commands; the Security Center reads alerts
ACL = """pattern write moat/%u/telemetry
pattern write moat/%u/status
pattern write moat/%u/online
pattern read moat/%u/cmd
pattern write alerts/%u/tamper
user historian
topic read moat/#
topic write moat/+/cmd
topic read alerts/#
user sc
topic read alerts/#
"""


def setUpModule():
    if moattest.is_mosquitto():
        raise unittest.SkipTest("the Security Center speaks to moatd")
    for path in (MOAT, MOAT_SC, MOAT_DEVICE, MOAT_HISTORIAN):
        if not os.path.exists(path):
            raise unittest.SkipTest("%s not built" % path)


class Pipeline(unittest.TestCase):
    """The stack on SQLite; the tests run in name order on one stack."""

    @classmethod
    def database(cls):
        """The historian's --db URL."""
        return "sqlite:" + os.path.join(cls.base, "historian.db")

    @classmethod
    def setUpClass(cls):
        cls.base = tempfile.mkdtemp(prefix="moattest-pipeline-")
        cls.stack = Stack(cls.base)
        try:
            cls.start_stack()
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        """Stops everything started; every process must exit 0 cleanly."""
        problems = cls.stack.stop()
        shutil.rmtree(cls.base, ignore_errors=True)
        if problems:
            raise AssertionError("\n".join(problems))

    @classmethod
    def start_stack(cls):
        b, st = cls.base, cls.stack
        with open(os.path.join(b, "acl"), "w") as f:
            f.write(ACL)
        st.start(broker_config="acl_file %s/acl" % b)
        cls.broker, cls.sc_dir = st.broker, st.sc_dir
        cls.bundles = os.path.join(b, "devices")
        os.mkdir(cls.bundles)
        ctl = [MOAT, "ctl", "--sc-dir", cls.sc_dir]
        run(*ctl, "policy", "set", "moat/+/telemetry", "--publish", "role == sensor",
            "--subscribe", "role == historian")
        run(*ctl, "policy", "set", "moat/+/status", "--publish", "role == sensor",
            "--subscribe", "role == historian")
        run(*ctl, "policy", "set", "moat/+/cmd", "--publish", "role == historian",
            "--subscribe", "role == sensor", "--signed", "--max-age", "30")
        hist = os.path.join(b, "historian")
        st.create("historian", "historian", hist)
        for name in DEVICES:
            st.create(name, "sensor", os.path.join(cls.bundles, name))
        run("openssl", "pkey", "-in", os.path.join(hist, "sign.key"), "-pubout", "-out",
            os.path.join(b, "historian.pub"))
        moat_passwd_file(os.path.join(b, "users"), [("alice", "alice-pw")])
        cls.http_port = free_port()
        os.mkdir(os.path.join(b, "state"))
        st.spawn("historian", MOAT_HISTORIAN, "--bundle", hist, "--broker",
                 "127.0.0.1:%d" % st.tls_port, "--cafile", os.path.join(cls.sc_dir, "ca.pem"),
                 "--cert", os.path.join(hist, "cert.pem"), "--key",
                 os.path.join(hist, "key.pem"), "--state", os.path.join(b, "state"), "--db",
                 cls.database(), "--http", "127.0.0.1:%d" % cls.http_port, "--users",
                 os.path.join(b, "users"), "--command-timeout", "10")
        st.wait_log("historian", "connected to the broker")
        time.sleep(0.5)  # its SUBSCRIBEs follow the CONNACK
        cls.device = st.spawn("device", MOAT_DEVICE, "--bundles", cls.bundles, "--interval",
                              "1", "--command-signer", os.path.join(b, "historian.pub"),
                              "--drain-rate", "50")

    def log(self, name):
        return self.stack.log(name)

    # ---- the historian's API ------------------------------------------------

    def req(self, method, path, body=None):
        conn = http.client.HTTPConnection("127.0.0.1", self.http_port, timeout=30)
        headers = {"Cookie": "moat_session=" + self.session}
        if method == "POST":
            headers["X-CSRF-Token"] = self.csrf
            headers["Content-Type"] = "application/json"
        conn.request(method, path, body=json.dumps(body) if body is not None else None,
                     headers=headers)
        r = conn.getresponse()
        doc = json.loads(r.read().decode())
        conn.close()
        return r.status, doc

    def setUp(self):
        conn = http.client.HTTPConnection("127.0.0.1", self.http_port, timeout=30)
        conn.request("POST", "/api/login", json.dumps({"user": "alice", "password": "alice-pw"}),
                     {"Content-Type": "application/json"})
        r = conn.getresponse()
        doc = json.loads(r.read().decode())
        self.assertEqual(r.status, 200, doc)
        self.session = r.headers["Set-Cookie"].split(";")[0].split("=", 1)[1]
        self.csrf = doc["csrf"]
        conn.close()

    def metrics(self):
        conn = http.client.HTTPConnection("127.0.0.1", self.http_port, timeout=30)
        conn.request("GET", "/metrics")
        text = conn.getresponse().read().decode()
        conn.close()
        return text

    def last(self):
        """{device: its newest stored reading}."""
        status, doc = self.req("GET", "/api/devices")
        self.assertEqual(status, 200, doc)
        return {d["id"]: d["last"] for d in doc["devices"] if d["last"] is not None}

    def seqs(self, device):
        status, doc = self.req("GET", "/api/devices/%s/readings?limit=10000" % device)
        self.assertEqual(status, 200, doc)
        return [r["seq"] for r in doc["readings"]], [r["time"] for r in doc["readings"]]

    def wait_for(self, cond, what, timeout=30):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = cond()
            if got:
                return got
            time.sleep(0.1)
        self.fail("timed out waiting for %s\nhistorian:\n%s\ndevice:\n%s" % (
            what, self.log("historian")[-3000:], self.log("device")[-3000:]))

    # ---- tests, in name order -------------------------------------------------

    def test_1_readings_arrive_within_an_interval(self):
        self.wait_for(lambda: set(self.last()) == set(DEVICES), "a reading of every device")
        # each newest reading seen for 8 s: stored within an interval + margin of being made
        seen, worst = {}, 0
        end = time.monotonic() + 8
        while time.monotonic() < end:
            now = int(time.time() * 1000)
            for dev, r in self.last().items():
                if seen.get(dev) != r["seq"]:
                    seen[dev] = r["seq"]
                    worst = max(worst, now - r["time"])
            time.sleep(0.1)
        self.assertLessEqual(worst, INTERVAL_MS + MARGIN_MS)
        for dev in DEVICES:
            seqs, _ = self.seqs(dev)
            self.assertGreaterEqual(len(seqs), 6, dev)
        # sealed by every device, and every one opened by the historian
        metrics = self.metrics()
        self.assertNotIn('moat_historian_rejects_total{reason="open-failed"}', metrics)
        self.assertNotIn('moat_historian_rejects_total{reason="unknown-device"}', metrics)

    def test_2_command_acknowledged_by_the_device(self):
        status, doc = self.req("POST", "/api/devices/dev-2/command", {"state": "on"})
        self.assertEqual(status, 200, doc)
        self.assertEqual((doc["state"], doc["status"]), ("on", "acknowledged"),
                         (doc, self.log("device")[-3000:]))
        self.wait_for(lambda: self.last()["dev-2"]["relay"] == "on", "dev-2's relay on")
        status, doc = self.req("POST", "/api/devices/dev-2/command", {"state": "off"})
        self.assertEqual((status, doc["status"]), (200, "acknowledged"), doc)
        self.assertIn("audit: command %s to dev-2 state off by alice" % doc["id"],
                      self.log("historian"))

    def test_3_broker_restart_loses_no_reading(self):
        before = {d: r["seq"] for d, r in self.last().items()}
        stopped = int(time.time() * 1000)
        self.broker.stop(check=False)
        time.sleep(5)  # five intervals: the devices queue
        self.broker.start()
        restarted = int(time.time() * 1000)
        # everything made before the restart, and a few after it, stored
        self.wait_for(lambda: all(self.last().get(d, {}).get("seq", 0) >= before[d] + 8
                                  for d in DEVICES), "readings after the restart", timeout=60)
        for dev in DEVICES:
            seqs, times = self.seqs(dev)
            have = set(seqs)
            self.assertEqual(have, set(range(1, max(have) + 1)),
                             "%s: missing %s" % (dev, sorted(set(range(1, max(have) + 1)) - have)))
            during = [t for t in times if stopped + INTERVAL_MS <= t < restarted - INTERVAL_MS]
            self.assertGreaterEqual(len(during), 2, (dev, stopped, restarted, times))

    def test_4_tamper_alert_stored_and_thing_revoked(self):
        r = subprocess.run([MOAT_DEVICE, "--bundles", self.bundles, "--tamper", "dev-3"],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)

        def alert():
            alerts = self.req("GET", "/api/alerts")[1]["alerts"]
            return [a for a in alerts if a["device"] == "dev-3" and a["kind"] == "tamper"]
        self.wait_for(alert, "the tamper alert in the historian")

        def revoked():
            return "revoked" in json.dumps(self.stack.ctl("thing", "show", "dev-3"))
        self.wait_for(revoked, "dev-3 revoked by the Security Center")
        self.wait_for(lambda: any("client dev-3: " in line and
                                  "disconnecting and ending its session" in line
                                  for line in self.broker.log().splitlines()),
                      "moatd cutting dev-3 off")
        # dev-3 is refused from now on; the others go on (after the key
        # rotation the revocation brings)
        time.sleep(2)
        cut = {d: r["seq"] for d, r in self.last().items()}
        others = ("dev-1", "dev-2", "dev-4")
        self.wait_for(lambda: all(self.last()[d]["seq"] >= cut[d] + 4 for d in others),
                      "the other devices' readings")
        self.assertEqual(self.last()["dev-3"]["seq"], cut["dev-3"], self.log("device")[-3000:])
        self.assertIsNone(self.device.poll())


class PipelinePostgres(Pipeline):
    """The same on PostgreSQL: run under pgserver.py (MOAT_PG_URL); skipped without it."""

    @classmethod
    def database(cls):
        url = os.environ.get("MOAT_PG_URL")
        if not url:
            raise unittest.SkipTest("MOAT_PG_URL is not set (run under pgserver.py)")
        name = "pipeline%d" % os.getpid()
        run("psql", "-q", "-d", url, "-c", "CREATE DATABASE " + name)
        return url.replace("/postgres?", "/%s?" % name)

    @classmethod
    def setUpClass(cls):
        if not os.environ.get("MOAT_PG_URL"):
            raise unittest.SkipTest("MOAT_PG_URL is not set (run under pgserver.py)")
        super().setUpClass()


if __name__ == "__main__":
    unittest.main()
