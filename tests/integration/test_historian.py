"""moat-historian against a real moatd, a Python stand-in for the Security
Center (as in test_e2e_client.py) and `moat pub/sub --e2e` as the device; one
round trip also with the real `moat-sc serve` and `moat ctl thing create`
bundles (HistorianRealSC).

Checked: sealed readings from a device are stored and served by the API
(devices, readings, overview), presence from moat/<id>/online, a signed
tamper alert is stored and listed; every endpoint refuses unauthenticated
access (401), POSTs without the CSRF header (403), bad parameters (400) and
unknown devices (404); login sets an HttpOnly SameSite=Strict cookie and
logout ends the session; the event stream delivers a reading; a command is
sealed and signed on moat/<id>/cmd, acknowledged by a stand-in device and
reported, another times out; malformed readings, readings naming another
device and payloads that do not open are counted in /metrics and never
stored. Runs on SQLite, and on PostgreSQL when pgserver.py can start one.
"""
import http.client
import json
import os
import shutil
import subprocess
import threading
import time

from cryptography.hazmat.primitives.serialization import load_pem_private_key

import keyrel_oracle as kr
import test_e2e_client as e2c
import tlstest
from authkit import FileBrokerTest, moat_passwd_file, moat_tool
from moattest import free_port

CMD_GROUP = b"cmd-grp1"


class HistorianSC(e2c.StandInSC):
    """Grants moat/+/cmd (signed, max age 30 s) and everything else under moat/#."""

    def answer(self, p):
        cid = p.topic[len("$sc/req/"):]
        dev = self.devices[cid]
        kid, m = kr.sign1_open(p.payload, dev["sign_pub"], p.topic)
        self.requests.append((cid, m[3], m[4]))
        req_hash = e2c.hashlib.sha256(p.payload).digest()
        sid = dev["sid"] if m[4] == 1 else None
        if m[3].startswith("moat/") and m[3].endswith("/cmd"):
            resp = kr.response_seal(self.sc_seed, cid, req_hash, dev["agree_pub"],
                                    sc_time=int(time.time()), group_id=CMD_GROUP, epoch=1,
                                    alg=24, filt="moat/+/cmd", signed=True, max_age=30,
                                    not_after=int(time.time()) + 3600, sender_id=sid,
                                    ms=b"\x33" * 32)
        else:
            resp = kr.response_seal(self.sc_seed, cid, req_hash, dev["agree_pub"],
                                    sc_time=int(time.time()), group_id=self.group, epoch=1,
                                    alg=24, filt="moat/#", max_age=300,
                                    not_after=int(time.time()) + 3600, sender_id=sid, ms=self.ms)
        self.peer.publish(p.props["response_topic"], resp, qos=1, complete=False,
                          props={"correlation_data": p.props["correlation_data"]})


class HistorianBase(FileBrokerTest):
    """moatd, a Security Center (start_sc), the bundles historian and dev-1, and
    moat-historian; helpers for HTTP and the device side."""
    ALLOW_ANONYMOUS = False
    CONFIG = "password_file {dir}/passwd\nacl_file {dir}/acl\nsc_username sc\n"
    FILES = {"acl": "pattern readwrite #\n"}
    DB = None  # a URL; None: SQLite in the state directory
    TLS = False  # HTTPS with the test CA's server certificate (tlstest.make_certs)

    def prepare(self):
        moat_passwd_file(self.path("passwd"), [("hist", "h-pw"), ("dev", "d-pw"),
                                               ("sc", "sc-pw"), ("eve", "e-pw")])

    def setUp(self):
        super().setUp()
        self.moat = moat_tool()
        if not self.moat:
            self.skipTest("MOAT is not set (path to the moat tool)")
        self.hist_bin = os.environ.get("MOAT_HISTORIAN") or os.path.join(
            os.path.dirname(self.moat), "moat-historian")
        self.start_sc()
        moat_passwd_file(self.path("users"), [("alice", "alice-pw")])
        self.write_file("hist.pw", "h-pw\n")
        os.makedirs(self.path("state"))
        os.makedirs(self.path("web/static"))
        self.write_file("web/index.html", "<!doctype html><title>moat</title>")
        self.write_file("web/static/app.js", "console.log(1);")
        self.write_file("secret.txt", "not served")
        self.write_file("web/static/.hidden.js", "not served")
        self.write_file("web/.env", "not served")
        self.http_port = free_port()
        args = [self.hist_bin, "--bundle", self.path("historian"), "--username", "hist",
                "--password-file", self.path("hist.pw"), "--state", self.path("state"), "--http",
                "127.0.0.1:%d" % self.http_port, "--users", self.path("users"),
                "--command-timeout", "3", "--web-root", self.path("web")]
        if self.DB:
            args += ["--db", self.DB]
        if self.TLS:
            self.certs = tlstest.make_certs()
            self.addCleanup(shutil.rmtree, self.certs, True)
            args += ["--tls-cert", os.path.join(self.certs, "server.crt"), "--tls-key",
                     os.path.join(self.certs, "server.key")]
        self.log = open(self.path("historian.log"), "w+")
        self.hist = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT)
        self.addCleanup(self.stop_historian)
        self.wait_for(lambda: self.metric("moat_historian_mqtt_connected") == 1, "connected")
        time.sleep(0.3)  # its SUBSCRIBEs follow the CONNACK

    def stop_historian(self):
        self.hist.terminate()
        try:
            self.hist.wait(10)
        except subprocess.TimeoutExpired:
            self.hist.kill()
            self.hist.wait()
        log = self.history()
        self.log.close()
        self.assertNotIn("Sanitizer", log)
        self.assertEqual(self.hist.returncode, 0, log)

    def history(self):
        self.log.seek(0)
        return self.log.read()

    def wait_for(self, cond, what, timeout=15):
        end = time.time() + timeout
        while time.time() < end:
            try:
                if cond():
                    return
            except (OSError, ValueError, KeyError):
                pass
            if self.hist.poll() is not None:
                self.fail("moat-historian exited: " + self.history())
            time.sleep(0.1)
        self.fail("timed out waiting for " + what + "\n" + self.history())

    # HTTP
    def req(self, method, path, body=None, session=None, csrf=None, raw=None, source=None):
        """One request, from the address <source> when given; HTTPS when TLS
        (verified against the test CA)."""
        where = (source, 0) if source else None
        if self.TLS:
            conn = http.client.HTTPSConnection("127.0.0.1", self.http_port, timeout=15,
                                               source_address=where,
                                               context=tlstest.client_ctx(self.certs))
        else:
            conn = http.client.HTTPConnection("127.0.0.1", self.http_port, timeout=15,
                                              source_address=where)
        headers = {}
        if session:
            headers["Cookie"] = "moat_session=" + session
        if csrf:
            headers["X-CSRF-Token"] = csrf
        data = raw if raw is not None else (json.dumps(body) if body is not None else None)
        if data is not None:
            headers["Content-Type"] = "application/json"
        conn.request(method, path, body=data, headers=headers)
        r = conn.getresponse()
        text = r.read().decode()
        conn.close()
        try:
            doc = json.loads(text)
        except ValueError:
            doc = text
        return r.status, r.headers, doc

    def metric(self, name):
        _, _, text = self.req("GET", "/metrics")
        for line in text.splitlines():
            if line.startswith(name + " ") or line.startswith(name + "{"):
                if line.startswith(name + " "):
                    return float(line.split()[-1])
        for line in text.splitlines():
            if line.startswith(name):
                return float(line.split()[-1])
        return None

    def metric_line(self, prefix):
        _, _, text = self.req("GET", "/metrics")
        for line in text.splitlines():
            if line.startswith(prefix):
                return float(line.split()[-1])
        return 0.0

    def login(self):
        status, headers, doc = self.req("POST", "/api/login",
                                        {"user": "alice", "password": "alice-pw"})
        self.assertEqual(status, 200, doc)
        cookie = headers["Set-Cookie"]
        self.assertIn("HttpOnly", cookie)
        self.assertIn("SameSite=Strict", cookie)
        self.assertIn("Path=/", cookie)
        session = cookie.split(";")[0].split("=", 1)[1]
        self.assertEqual(len(session), 64)
        return session, doc["csrf"]

    # MQTT
    def pub(self, topic, message, cid="dev-1"):
        r = subprocess.run([self.moat, "pub", "--e2e", self.path(cid), "-u", "dev", "-P",
                            "d-pw", "-q", "1", "-t", topic, "-m", message],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)

    def reading(self, seq, t=None, temp=21.5, device="dev-1"):
        return json.dumps({"device": device, "time": t or int(time.time() * 1000), "seq": seq,
                           "temperature": temp, "humidity": 40.2, "relay": "off"})

    def store_reading(self, seq, session, temp=21.5):
        self.pub("moat/dev-1/telemetry", self.reading(seq, temp=temp))

        def stored():
            _, _, doc = self.req("GET", "/api/devices/dev-1/readings", session=session)
            return any(r["seq"] == seq for r in doc["readings"])
        self.wait_for(stored, "reading %d" % seq)


    def command(self, session, csrf, state, out):
        out.append(self.req("POST", "/api/devices/dev-1/command", {"state": state},
                            session=session, csrf=csrf))

    def device_answers(self, session, csrf, state, answer):
        """POSTs a command <state> while a stand-in device (`moat sub --e2e` printing
        it, `moat pub --e2e` acknowledging with answer(command)) takes it; returns the
        command the device read and the POST's (status, headers, body)."""
        dev = subprocess.Popen([self.moat, "sub", "--e2e", self.path("dev-1"), "-u", "dev",
                                "-P", "d-pw", "-q", "1", "-t", "moat/dev-1/cmd", "-C", "1",
                                "-W", "20"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
        try:
            self.device_ready()
            out = []
            t = threading.Thread(target=self.command, args=(session, csrf, state, out))
            t.start()
            text, err = dev.communicate(timeout=20)
        finally:
            if dev.poll() is None:
                dev.kill()
                dev.communicate()
        self.assertEqual(dev.returncode, 0, err)
        cmd = json.loads(text.strip().splitlines()[-1])
        self.assertEqual(cmd["state"], state)
        self.assertEqual(len(cmd["id"]), 32)
        self.assertLessEqual(abs(cmd["iat"] - time.time()), 5)
        self.pub("moat/dev-1/status", json.dumps(answer(cmd)))
        t.join(15)
        self.assertEqual(len(out), 1)
        return cmd, out[0]


class Historian(HistorianBase):
    """With the Python stand-in SC (HistorianSC)."""

    def start_sc(self):
        sc_key = e2c.Ed25519PrivateKey.generate()
        self.devices = {}
        for cid, sid in (("historian", b"\x09"), ("dev-1", b"\x01")):
            self.devices[cid] = e2c.make_bundle(self.path(cid), cid, self.port, sc_key)
            self.devices[cid]["sid"] = sid
        center = self.client("moat-sc", username="sc", password="sc-pw")
        self.assertEqual(center.subscribe(("$sc/req/+", 1)), [1])
        self.peers.remove(center)
        self.sc = HistorianSC(center, e2c.raw(sc_key), self.devices)
        self.sc.start()
        self.addCleanup(self.stop_sc)

    stop_sc = e2c.E2EClient.stop_sc  # stops the stand-in's thread, closes its peer

    def test_unauthenticated_and_login(self):
        for method, path in (("GET", "/api/me"), ("GET", "/api/devices"),
                             ("GET", "/api/devices/dev-1/readings"), ("GET", "/api/overview"),
                             ("GET", "/api/alerts"), ("GET", "/api/events"),
                             ("POST", "/api/logout"), ("POST", "/api/devices/dev-1/command")):
            status, _, doc = self.req(method, path, body={"state": "on"})
            self.assertEqual(status, 401, (method, path))
            self.assertIn("error", doc)
        # a forged cookie is no session
        self.assertEqual(self.req("GET", "/api/me", session="0" * 64)[0], 401)
        self.assertEqual(self.req("POST", "/api/login",
                                  {"user": "alice", "password": "wrong"})[0], 401)
        self.assertEqual(self.req("POST", "/api/login",
                                  {"user": "mallory", "password": "alice-pw"})[0], 401)
        self.assertEqual(self.req("POST", "/api/login", raw="not json")[0], 400)
        self.assertEqual(self.req("GET", "/api/login")[0], 405)
        self.assertEqual(self.req("POST", "/api/login", raw="x" * 5000)[0], 413)
        session, csrf = self.login()
        status, _, doc = self.req("GET", "/api/me", session=session)
        self.assertEqual((status, doc), (200, {"user": "alice", "csrf": csrf}))
        # POSTs need the CSRF header, and the right one
        self.assertEqual(self.req("POST", "/api/logout", session=session)[0], 403)
        self.assertEqual(self.req("POST", "/api/logout", session=session, csrf="1" * 64)[0],
                         403)
        self.assertEqual(self.req("POST", "/api/devices/dev-1/command", {"state": "on"},
                                  session=session)[0], 403)
        self.assertEqual(self.req("GET", "/api/nothing", session=session)[0], 404)
        self.assertEqual(self.req("DELETE", "/api/devices", session=session)[0], 405)
        status, headers, _ = self.req("POST", "/api/logout", session=session, csrf=csrf)
        self.assertEqual(status, 200)
        self.assertIn("Max-Age=0", headers["Set-Cookie"])
        self.assertEqual(self.req("GET", "/api/me", session=session)[0], 401)
        # no login needed
        self.assertEqual(self.req("GET", "/healthz")[0], 200)
        status, headers, text = self.req("GET", "/metrics")
        self.assertEqual(status, 200)
        self.assertIn("moat_historian_readings_stored_total", text)
        self.assertIn("moat_historian_sse_clients 0", text)

    def test_static_files(self):
        status, headers, text = self.req("GET", "/")
        self.assertEqual((status, text), (200, "<!doctype html><title>moat</title>"))
        self.assertTrue(headers["Content-Type"].startswith("text/html"))
        self.assertIn("default-src 'self'", headers["Content-Security-Policy"])
        status, headers, text = self.req("GET", "/static/app.js")
        self.assertEqual((status, headers["Content-Type"]), (200, "text/javascript"))
        # no segment may start with a dot, percent-encoded or not (the files exist)
        for path in ("/static/../secret.txt", "/../secret.txt", "/static/%2e%2e/secret.txt",
                     "/static/nothing.js", "/static/", "/.hidden", "/static/.hidden.js",
                     "/static/%2ehidden.js", "/.env", "/%2eenv", "/static/.%2e/secret.txt",
                     "/static/%2E%2E/secret.txt", "/static/..%2fsecret.txt",
                     "/static/..%2Fsecret.txt", "/static/sub/../app.js", "/static/./app.js"):
            self.assertEqual(self.req("GET", path)[0], 404, path)
        self.assertEqual(self.req("POST", "/")[0], 405)

    def test_login_rate_limit(self):
        # failed logins for alice from 127.0.0.1: past the free allowance, 429
        for attempt in range(12):
            status, headers, doc = self.req("POST", "/api/login",
                                            {"user": "alice", "password": "wrong"})
            if status == 429:
                break
            self.assertEqual(status, 401, doc)
        self.assertEqual(status, 429, doc)
        self.assertGreaterEqual(attempt, 6)  # 5 free failures, the 6th blocks
        wait_s = int(headers["Retry-After"])
        self.assertTrue(1 <= wait_s <= 8, wait_s)
        self.assertIn("error", doc)
        # blocked: even the right password is not checked
        status, headers, _ = self.req("POST", "/api/login",
                                      {"user": "alice", "password": "alice-pw"})
        self.assertEqual(status, 429)
        self.assertIn("too many failures", self.history())
        # nobody else is slowed: alice from another address logs in at once
        status, _, doc = self.req("POST", "/api/login", {"user": "alice", "password": "alice-pw"},
                                  source="127.0.0.2")
        self.assertEqual(status, 200, doc)
        # after Retry-After, the right password works from the blocked address
        time.sleep(int(headers["Retry-After"]) + 0.2)
        self.login()

    def test_readings_devices_overview_alerts(self):
        session, _ = self.login()
        self.assertEqual(self.req("GET", "/api/devices/dev-1/readings", session=session)[0],
                         404)  # not seen yet
        presence = self.client("presence", username="dev", password="d-pw")
        presence.publish("moat/dev-1/online", b"online", qos=1, retain=True)
        self.store_reading(1, session, temp=20.0)
        self.store_reading(2, session, temp=22.0)
        self.wait_for(lambda: self.req("GET", "/api/devices", session=session)[2]["devices"][0]
                      ["online"], "online")
        status, _, doc = self.req("GET", "/api/devices", session=session)
        self.assertEqual(status, 200)
        dev, = doc["devices"]
        self.assertEqual(dev["id"], "dev-1")
        self.assertEqual(dev["relay"], "off")
        self.assertIsInstance(dev["last_seen"], int)
        self.assertEqual(dev["last"]["seq"], 2)
        self.assertEqual(dev["last"]["temperature"], 22.0)
        status, _, doc = self.req("GET", "/api/devices/dev-1/readings?limit=5", session=session)
        self.assertEqual(status, 200)
        self.assertEqual(doc["device"], "dev-1")
        self.assertEqual([r["seq"] for r in doc["readings"]], [2, 1])  # newest first
        self.assertEqual(set(doc["readings"][0]),
                         {"time", "seq", "temperature", "humidity", "relay"})
        status, _, doc = self.req("GET", "/api/devices/dev-1/readings?limit=1", session=session)
        self.assertEqual(len(doc["readings"]), 1)
        now = int(time.time() * 1000)
        status, _, doc = self.req("GET", "/api/devices/dev-1/readings?from=%d&to=%d" %
                                  (now - 3600000, now - 1800000), session=session)
        self.assertEqual((status, doc["readings"]), (200, []))
        for q in ("limit=0", "limit=10001", "limit=abc", "limit=-1", "from=x", "to=1e3",
                  "from=%d&to=%d" % (now, now - 1), "limit="):
            status, _, doc = self.req("GET", "/api/devices/dev-1/readings?" + q, session=session)
            self.assertEqual(status, 400, q)
            self.assertIn("error", doc)
        self.assertEqual(self.req("GET", "/api/devices/dev-2/readings", session=session)[0],
                         404)
        self.assertEqual(self.req("GET", "/api/devices/b%21d/readings", session=session)[0],
                         400)
        status, _, doc = self.req("GET", "/api/overview?buckets=12", session=session)
        self.assertEqual(status, 200)
        cells = [b for b in doc["buckets"] if b["device"] == "dev-1"]
        self.assertEqual(sum(b["count"] for b in cells), 2)
        self.assertEqual(min(b["min"] for b in cells), 20.0)
        self.assertEqual(max(b["max"] for b in cells), 22.0)
        for q in ("buckets=0", "buckets=1001", "buckets=x", "from=5&to=5"):
            self.assertEqual(self.req("GET", "/api/overview?" + q, session=session)[0], 400, q)
        # a tamper alert signed by the device, kept with its envelope
        self.assertEqual(self.req("GET", "/api/alerts", session=session)[2], {"alerts": []})
        with open(self.path("dev-1/sign.key"), "rb") as f:
            seed = e2c.raw(load_pem_private_key(f.read(), None))
        presence.publish("alerts/dev-1/tamper", kr.alert(seed, "dev-1", int(time.time()),
                                                         "case opened"), qos=1)
        self.wait_for(lambda: self.req("GET", "/api/alerts", session=session)[2]["alerts"],
                      "alert")
        alert, = self.req("GET", "/api/alerts?limit=10", session=session)[2]["alerts"]
        self.assertEqual((alert["device"], alert["kind"], alert["detail"]),
                         ("dev-1", "tamper", "case opened"))
        for q in ("limit=0", "limit=x", "limit=10001"):
            self.assertEqual(self.req("GET", "/api/alerts?" + q, session=session)[0], 400, q)
        self.assertGreaterEqual(self.metric("moat_historian_readings_stored_total"), 2)

    def test_bad_input_counted_not_stored(self):
        session, _ = self.login()
        self.store_reading(1, session)
        self.pub("moat/dev-1/telemetry", "not json")
        self.pub("moat/dev-1/telemetry", json.dumps({"device": "dev-1", "time": "soon"}))
        self.pub("moat/dev-1/telemetry", self.reading(7, device="dev-9"))
        raw = self.client("raw", username="eve", password="e-pw")
        raw.publish("moat/dev-1/telemetry", self.reading(8).encode(), qos=1)  # not sealed
        raw.publish("alerts/dev-1/tamper", b"\xa0junk", qos=1)
        raw.publish("moat/dev-1/online", b"maybe", qos=1)
        self.wait_for(lambda: self.metric_line(
            'moat_historian_rejects_total{reason="open-failed"}') >= 1, "open-failed")
        self.wait_for(lambda: self.metric_line(
            'moat_historian_rejects_total{reason="malformed-online"}') >= 1, "online")
        self.assertGreaterEqual(self.metric_line(
            'moat_historian_rejects_total{reason="malformed-json"}'), 1)
        self.assertGreaterEqual(self.metric_line(
            'moat_historian_rejects_total{reason="malformed-reading"}'), 1)
        self.assertGreaterEqual(self.metric_line(
            'moat_historian_rejects_total{reason="unknown-device"}'), 1)
        self.assertGreaterEqual(self.metric_line(
            'moat_historian_rejects_total{reason="malformed-alert"}'), 1)
        _, _, doc = self.req("GET", "/api/devices/dev-1/readings", session=session)
        self.assertEqual([r["seq"] for r in doc["readings"]], [1])
        self.assertEqual([d["id"] for d in self.req("GET", "/api/devices",
                                                    session=session)[2]["devices"]], ["dev-1"])
        self.assertIsNone(self.hist.poll())

    def test_events_stream(self):
        session, _ = self.login()
        conn = http.client.HTTPConnection("127.0.0.1", self.http_port, timeout=20)
        conn.request("GET", "/api/events", headers={"Cookie": "moat_session=" + session})
        r = conn.getresponse()
        self.assertEqual(r.status, 200)
        self.assertEqual(r.headers["Content-Type"], "text/event-stream")
        self.wait_for(lambda: self.metric("moat_historian_sse_clients") == 1, "sse client")
        self.pub("moat/dev-1/telemetry", self.reading(5))
        event = None
        while True:
            line = r.fp.readline().decode()
            self.assertTrue(line, "stream ended")
            if line.startswith("event: "):
                event = line[7:].strip()
            elif line.startswith("data: ") and event == "reading":
                doc = json.loads(line[6:])
                break
        self.assertEqual((doc["device"], doc["seq"], doc["temperature"]), ("dev-1", 5, 21.5))
        conn.close()

    def test_command_round_trip_and_timeout(self):
        session, csrf = self.login()
        self.store_reading(1, session)
        self.assertEqual(self.req("POST", "/api/devices/dev-9/command", {"state": "on"},
                                  session=session, csrf=csrf)[0], 404)
        for body in ({"state": "up"}, {}, {"state": 1}):
            self.assertEqual(self.req("POST", "/api/devices/dev-1/command", body,
                                      session=session, csrf=csrf)[0], 400, body)
        spy = self.client("spy", username="eve", password="e-pw")
        spy.subscribe(("moat/dev-1/cmd", 1))
        cmd, (status, _, doc) = self.device_answers(session, csrf, "on", lambda c: {
            "device": "dev-1", "cmd_id": c["id"], "state": "on", "ok": True})
        self.assertEqual(status, 200, doc)
        self.assertEqual(doc, {"id": cmd["id"], "state": "on", "status": "acknowledged"})
        wire = spy.recv(timeout=5)
        self.assertEqual(wire.payload[0], 0xd2)  # COSE_Sign1 around the envelope
        kid, _ = kr.sign1_open(wire.payload, self.devices["historian"]["sign_pub"], wire.topic)
        self.assertEqual(kid, "historian")
        self.wait_for(lambda: self.req("GET", "/api/devices", session=session)[2]["devices"][0]
                      ["relay"] == "on", "relay on")
        self.assertIn("audit: command %s to dev-1 state on by alice" % cmd["id"],
                      self.history())
        # nobody answers: timeout after --command-timeout
        start = time.time()
        status, _, doc = self.req("POST", "/api/devices/dev-1/command", {"state": "off"},
                                  session=session, csrf=csrf)
        self.assertEqual((status, doc["status"], doc["state"]), (200, "timeout", "off"))
        self.assertGreaterEqual(time.time() - start, 2.5)
        self.assertEqual(self.metric_line('moat_historian_commands_total{status="timeout"}'), 1)
        self.assertEqual(
            self.metric_line('moat_historian_commands_total{status="acknowledged"}'), 1)
        # a failure report from the device
        cmd, (_, _, doc) = self.device_answers(session, csrf, "off", lambda c: {
            "device": "dev-1", "cmd_id": c["id"], "ok": False, "reason": "stale"})
        self.assertEqual(doc, {"id": cmd["id"], "state": "off", "status": "failed",
                               "reason": "stale"})

    def device_ready(self):
        self.wait_for(lambda: ("dev-1", "moat/dev-1/cmd", 2) in self.sc.requests, "device key")
        time.sleep(0.5)  # its SUBSCRIBE follows the key


class HistorianPostgres(Historian):
    """The same tests over PostgreSQL: run under pgserver.py (MOAT_PG_URL), each
    test in a database of its own; skipped without it."""
    serial = 0

    def setUp(self):
        url = os.environ.get("MOAT_PG_URL")
        if not url:
            self.skipTest("MOAT_PG_URL is not set (run under tests/integration/pgserver.py)")
        HistorianPostgres.serial += 1
        name = "hist%d_%d" % (os.getpid(), HistorianPostgres.serial)
        subprocess.run(["psql", "-q", "-d", url, "-c", "CREATE DATABASE " + name],
                       check=True, capture_output=True, timeout=30)
        self.DB = url.replace("/postgres?", "/%s?" % name)
        super().setUp()


MOAT_POLICIES = {"policies": [
    {"filter": "moat/+/telemetry", "publish": "role == sensor", "subscribe": "role == historian"},
    {"filter": "moat/+/status", "publish": "role == sensor", "subscribe": "role == historian"},
    {"filter": "moat/+/cmd", "publish": "role == historian", "subscribe": "role == sensor",
     "signed": True, "max_age_s": 30},
]}


class HistorianRealSC(HistorianBase):
    """With the real `moat-sc serve` releasing keys by the contract's topic
    policies and bundles made by `moat ctl thing create`. moatd authenticates
    by password here, so it does not enforce the policies itself (they need
    attributes from tokens or certificates); the SC's key release does."""
    CONFIG = "password_file {dir}/passwd\nacl_file {dir}/acl\nsc_username sc\n"

    def moat_sc(self):
        return os.environ.get("MOAT_SC") or os.path.join(os.path.dirname(moat_tool()),
                                                         "moat-sc")

    def prepare(self):
        super().prepare()
        if not os.path.exists(self.moat_sc()):
            self.skipTest("moat-sc not built (set MOAT_SC)")
        self.write_file("sc.pw", "sc-pw\n")
        subprocess.run([self.moat_sc(), "--dir", self.path("sc"), "init", "--name", "hist"],
                       check=True, capture_output=True, timeout=60)
        self.write_file("sc/policies.json", json.dumps(MOAT_POLICIES))

    def start_sc(self):
        self.sc_log = open(self.path("sc.log"), "w+")
        self.serve = subprocess.Popen(
            [self.moat_sc(), "--dir", self.path("sc"), "serve", "--broker",
             "127.0.0.1:%d" % self.port, "--username", "sc", "--password-file",
             self.path("sc.pw"), "--rate", "50/s", "--broker-url",
             "mqtt://127.0.0.1:%d" % self.port], stdout=self.sc_log, stderr=subprocess.STDOUT)
        self.addCleanup(self.stop_serve)

        def serving():
            self.sc_log.seek(0)
            return "connected; serving" in self.sc_log.read()
        end = time.time() + 15
        while not serving() and time.time() < end and self.serve.poll() is None:
            time.sleep(0.1)
        self.assertTrue(serving(), self.sc_text())
        for name, role in (("historian", "historian"), ("dev-1", "sensor")):
            r = subprocess.run([moat_tool(), "ctl", "--sc-dir", self.path("sc"), "thing",
                                "create", name, "--attr", "role=" + role, "--out",
                                self.path(name)], capture_output=True, text=True, timeout=60)
            self.assertEqual(r.returncode, 0, r.stderr)

    def sc_text(self):
        self.sc_log.seek(0)
        return self.sc_log.read()

    def stop_serve(self):
        self.serve.terminate()
        self.serve.wait(15)
        text = self.sc_text()
        self.sc_log.close()
        self.assertNotIn("Sanitizer", text)

    def device_ready(self):
        time.sleep(1.5)  # its key fetch and SUBSCRIBE

    def test_readings_and_commands_through_the_security_center(self):
        session, csrf = self.login()
        self.store_reading(1, session, temp=19.5)
        _, _, doc = self.req("GET", "/api/devices", session=session)
        self.assertEqual(doc["devices"][0]["last"]["temperature"], 19.5)
        cmd, (status, _, doc) = self.device_answers(session, csrf, "on", lambda c: {
            "device": "dev-1", "cmd_id": c["id"], "state": "on", "ok": True})
        self.assertEqual((status, doc["status"]), (200, "acknowledged"), doc)
        self.wait_for(lambda: self.req("GET", "/api/devices", session=session)[2]["devices"][0]
                      ["relay"] == "on", "relay on")


class HistorianHTTPS(HistorianBase):
    """moat-historian over HTTPS (--tls-cert/--tls-key with the test CA's
    server certificate), with the stand-in SC."""
    TLS = True
    start_sc = Historian.start_sc
    stop_sc = Historian.stop_sc

    def test_https_login_and_api(self):
        status, headers, doc = self.req("POST", "/api/login",
                                        {"user": "alice", "password": "alice-pw"})
        self.assertEqual(status, 200, doc)
        cookie = headers["Set-Cookie"]
        self.assertIn("Secure", cookie)
        session = cookie.split(";")[0].split("=", 1)[1]
        status, _, doc = self.req("GET", "/api/devices", session=session)
        self.assertEqual((status, doc), (200, {"devices": []}))
        # plain HTTP on the HTTPS port gets no answer
        conn = http.client.HTTPConnection("127.0.0.1", self.http_port, timeout=10)
        with self.assertRaises((OSError, http.client.HTTPException)):
            conn.request("GET", "/healthz")
            conn.getresponse().read()
        conn.close()
        # a client that does not trust the test CA refuses the server
        conn = http.client.HTTPSConnection("127.0.0.1", self.http_port, timeout=10,
                                           context=tlstest.ssl.create_default_context())
        with self.assertRaises(tlstest.ssl.SSLError):
            conn.request("GET", "/healthz")
        conn.close()
