"""`make demo` (scripts/demo.sh) end to end, with the dev build's programs:
the script creates the Security Center, the broker's certificate, the
things and the policies in a fresh state directory, starts moatd (mutual
TLS), moat-sc serve, moat-historian and moat-device, and prints the
dashboard's address and login. The test logs in, sees sealed readings of
every device stored, switches a device on (acknowledged by the device),
then sends SIGINT and expects every process to stop and the script to exit
0; a second run on the same directory reuses it (no new Security Center)
and goes on storing readings.
"""
import http.cookiejar
import json
import os
import re
import signal
import subprocess
import tempfile
import time
import unittest
import urllib.request

from moattest import free_port

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class Demo(unittest.TestCase):

    def setUp(self):
        self.bin = os.environ.get("MOAT_DEMO_BIN")
        if not self.bin:
            self.skipTest("MOAT_DEMO_BIN is not set (the build's bin directory)")
        self.tmp = tempfile.TemporaryDirectory(prefix="moat-demo-")
        self.state = os.path.join(self.tmp.name, "state")
        self.http = free_port()

    def tearDown(self):
        self.tmp.cleanup()

    def run_demo(self):
        env = dict(os.environ, MOAT_DEMO_DIR=self.state, MOAT_DEMO_DEVICES="3",
                   MOAT_DEMO_INTERVAL="1", MOAT_DEMO_MQTT_PORT=str(free_port()),
                   MOAT_DEMO_HTTP_PORT=str(self.http))
        out = open(os.path.join(self.tmp.name, "demo.out"), "w+")
        proc = subprocess.Popen(["bash", os.path.join(ROOT, "scripts", "demo.sh")], cwd=ROOT,
                                env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            out.seek(0)
            text = out.read()
            if "Ctrl-C stops everything" in text:
                return proc, out, text
            self.assertIsNone(proc.poll(), "the demo ended:\n" + text)
            time.sleep(0.2)
        proc.kill()
        self.fail("the demo did not come up:\n" + text)

    def stop(self, proc, out):
        os.killpg(proc.pid, signal.SIGINT)
        self.assertEqual(proc.wait(timeout=30), 0)
        out.seek(0)
        text = out.read()
        out.close()
        self.assertIn("== stopped", text)
        left = subprocess.run(["pgrep", "-f", self.state], capture_output=True, text=True)
        self.assertEqual(left.stdout, "", "processes left running")

    def login(self, text):
        m = re.search(r"Login:\s+admin / (\S+)", text)
        self.assertIsNotNone(m, text)
        jar = http.cookiejar.CookieJar()
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
        req = urllib.request.Request("http://127.0.0.1:%d/api/login" % self.http,
                                     json.dumps({"user": "admin",
                                                 "password": m.group(1)}).encode(),
                                     {"Content-Type": "application/json"})
        csrf = json.load(opener.open(req, timeout=10))["csrf"]
        return opener, csrf

    def get(self, opener, path):
        return json.load(opener.open("http://127.0.0.1:%d%s" % (self.http, path), timeout=15))

    def wait_readings(self, opener, least):
        """Until every device has at least <least> stored readings."""
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            devices = self.get(opener, "/api/devices")["devices"]
            counts = [len(self.get(opener, "/api/devices/%s/readings?limit=1000" % d["id"])
                          ["readings"]) for d in devices]
            if len(devices) == 3 and min(counts) >= least:
                return devices
            time.sleep(0.5)
        self.fail("readings did not arrive: %r" % counts)

    def test_demo_runs_end_to_end_and_reuses_its_state(self):
        proc, out, text = self.run_demo()
        try:
            self.assertIn("first run", text)
            opener, csrf = self.login(text)
            devices = self.wait_readings(opener, 3)
            self.assertEqual(sorted(d["id"] for d in devices), ["dev-1", "dev-2", "dev-3"])
            self.assertTrue(all(d["online"] for d in devices))
            req = urllib.request.Request(
                "http://127.0.0.1:%d/api/devices/dev-2/command" % self.http,
                json.dumps({"state": "on"}).encode(),
                {"Content-Type": "application/json", "X-CSRF-Token": csrf})
            ack = json.load(opener.open(req, timeout=30))
            self.assertEqual((ack["state"], ack["status"]), ("on", "acknowledged"))
        finally:
            self.stop(proc, out)
        # the store on disk holds ciphertext only: no reading's JSON in moatd's store
        store = os.path.join(self.state, "store")
        for name in os.listdir(store):
            with open(os.path.join(store, name), "rb") as f:
                self.assertNotIn(b'"temperature"', f.read())
        proc, out, text = self.run_demo()
        try:
            self.assertNotIn("first run", text)
            opener, _ = self.login(text)
            before = len(self.get(opener, "/api/devices/dev-1/readings?limit=1000")["readings"])
            self.wait_readings(opener, before + 2)
        finally:
            self.stop(proc, out)


if __name__ == "__main__":
    unittest.main()
