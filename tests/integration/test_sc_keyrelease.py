"""Key release by `moat-sc serve` through a real moatd (password auth,
sc_username sc, sc_public_key = the SC's token.pub, topic_policy_file = the
SC's policy file). Devices are registered with the offline `moat-sc thing
add` / `thing key` commands; their Ed25519 and X25519 keys are made here.
Requests, alerts and the checks of responses, epoch announcements and
revocation lists are the independent Python side (keyrel_oracle.py:
python3-cbor2 + python3-cryptography, HPKE per RFC 9180), so this also
cross-checks keyrel.c and hpke.c.

Checked: an allowed device gets a key it can HPKE-open (publisher and
subscriber get the same master secret); a device whose attributes do not
satisfy the policy gets "denied" and the audit shows it; a replayed
request gets "replay", a stale iat "stale"; a revoked device gets "revoked",
$sc/revoked is republished with it and its group rotates; a policy file
change rotates the group (new epoch on $sc/epoch/<hex>), also one made while
the SC was stopped; a signed tamper
alert revokes the device, and moatd disconnects it, also one sent while the
SC was stopped (its session waits on the broker).
"""
import json
import os
import signal
import subprocess
import time
import unittest

import cbor2
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.serialization import (Encoding, NoEncryption,
                                                          PrivateFormat, PublicFormat,
                                                          load_pem_public_key)

import keyrel_oracle as k
import moattest
from authkit import FileBrokerTest, moat_passwd_file
from moattest import PUBLISH

HERE = os.path.dirname(os.path.abspath(__file__))
MOAT_SC = os.environ.get("MOAT_SC") or os.path.join(HERE, "..", "..", "build", "dev", "bin",
                                                    "moat-sc")
NOT_AUTHORIZED = 0x87

POLICIES = {"policies": [
    {"filter": "plant/#", "publish": "role == sensor", "subscribe": "role in [sensor, viewer]"},
    {"filter": "alerts/+/tamper", "publish": "true", "subscribe": "true"},
]}


def setUpModule():
    if moattest.is_mosquitto():
        raise unittest.SkipTest("the Security Center speaks to moatd")
    if not os.path.exists(MOAT_SC):
        raise unittest.SkipTest("moat-sc not built (set MOAT_SC)")


def raw(key):
    return key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())


class Device:
    """A device's keys, registered in the SC, and its MQTT peer."""

    def __init__(self, name):
        self.name = name
        self.ed = Ed25519PrivateKey.generate()
        self.x = X25519PrivateKey.generate()
        self.seed, self.x_sk = raw(self.ed), raw(self.x)
        self.x_pub = k.x25519_pub(self.x_sk)
        self.peer = None


class ScBrokerTest(FileBrokerTest):
    """moatd and `moat-sc serve` on one SC directory, two devices registered."""
    ALLOW_ANONYMOUS = False
    CONFIG = ("password_file {dir}/passwd\nsc_username sc\nsc_public_key {dir}/sc/token.pub\n"
              "topic_policy_file {dir}/sc/policies.json\n")

    # ---- fixtures -----------------------------------------------------------

    def sc(self, *args, check=True):
        p = subprocess.run([MOAT_SC, "--dir", self.path("sc")] + list(args),
                           capture_output=True, text=True, timeout=60)
        if check and p.returncode != 0:
            raise AssertionError("moat-sc %s: %s" % (" ".join(args), p.stderr))
        return p

    def write_policies(self, doc):
        self.write_file("sc/policies.json", json.dumps(doc))

    def register(self, name, role):
        d = Device(name)
        for suffix, key in (("ed", d.ed), ("x", d.x)):
            self.write_file("%s.%s.pem" % (name, suffix), key.public_key().public_bytes(
                Encoding.PEM, PublicFormat.SubjectPublicKeyInfo))
        self.sc("thing", "add", name, "--attr", "role=" + role, "--attr", "site=plant-7",
                "--out", self.path(name))
        self.sc("thing", "key", name, "--ed25519-pub", self.path(name + ".ed.pem"),
                "--x25519-pub", self.path(name + ".x.pem"))
        return d

    def prepare(self):
        moat_passwd_file(self.path("passwd"), [("sc", "sc-pw"), ("dev-1", "d1-pw"),
                                               ("dev-2", "d2-pw"), ("reader", "r-pw")])
        self.write_file("sc.pw", "sc-pw\n")
        self.sc("init", "--name", "itest")
        self.write_policies(POLICIES)
        self.dev1 = self.register("dev-1", "sensor")
        self.dev2 = self.register("dev-2", "viewer")
        with open(self.path("sc/token.pub"), "rb") as f:
            pub = load_pem_public_key(f.read())
        self.sc_pub = pub.public_bytes(Encoding.Raw, PublicFormat.Raw)

    def setUp(self):
        super().setUp()
        self.start_serve()

    def start_serve(self):
        starts = self.read_sc_log().count("connected; serving") if os.path.exists(
            self.path("sc.log")) else 0
        self.sc_log = open(self.path("sc.log"), "ab")
        self.serving = True
        env = dict(os.environ)
        env.setdefault("ASAN_OPTIONS", "detect_leaks=1")
        self.serve = subprocess.Popen(
            [MOAT_SC, "--dir", self.path("sc"), "serve", "--broker", "127.0.0.1:%d" % self.port,
             "--username", "sc", "--password-file", self.path("sc.pw"), "--rate", "50/s"],
            stdout=self.sc_log, stderr=subprocess.STDOUT, env=env)
        self.wait_sc_log("connected; serving", count=starts + 1)
        time.sleep(0.3)  # its SUBSCRIBEs are answered

    def tearDown(self):
        try:
            if self.serving:
                self.stop_serve()  # before the broker, which would look like an outage
        finally:
            super().tearDown()

    def stop_serve(self):
        self.serving = False
        if self.serve.poll() is None:
            self.serve.send_signal(signal.SIGTERM)
            self.serve.wait(timeout=15)
        self.sc_log.close()
        text = self.read_sc_log()
        self.assertEqual(self.serve.returncode, 0, text[-4000:])
        for bad in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:"):
            self.assertNotIn(bad, text)

    def read_sc_log(self):
        with open(self.path("sc.log"), "rb") as f:
            return f.read().decode("utf-8", "replace")

    def wait_sc_log(self, text, timeout=10.0, count=1):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.read_sc_log().count(text) >= count:
                return
            if self.serve.poll() is not None:
                break
            time.sleep(0.05)
        raise AssertionError("%r not in the SC log:\n%s" % (text, self.read_sc_log()[-4000:]))

    def connect(self, d):
        pw = {"dev-1": "d1-pw", "dev-2": "d2-pw"}[d.name]
        d.peer = self.client(d.name, username=d.name, password=pw)
        self.assertEqual(d.peer.subscribe(("$sc/resp/" + d.name, 1)), [1])
        return d.peer

    def reader(self, *filters):
        p = self.client("reader", username="reader", password="r-pw")
        self.assertEqual(p.subscribe(*[(f, 1) for f in filters]), [1] * len(filters))
        return p

    def send(self, d, msg, corr=b"c1"):
        """Publishes <msg> on $sc/req/<name>; returns the response PUBLISH."""
        peer = d.peer or self.connect(d)
        peer.publish("$sc/req/" + d.name, msg, qos=1,
                     props={"response_topic": "$sc/resp/" + d.name, "correlation_data": corr})
        resp = peer.expect_publish(timeout=5)
        self.assertEqual(resp.topic, "$sc/resp/" + d.name)
        self.assertEqual(resp.props.get("correlation_data"), corr)
        self.assertIn("cose-sign1", resp.props.get("content_type", ""))
        return resp

    def ask(self, d, topic="plant/1/temp", intent=1, **kw):
        msg, h = k.request(d.seed, d.name, d.x_pub, topic=topic, intent=intent, **kw)
        resp = self.send(d, msg)
        return k.response_open(resp.payload, d.name, h, self.sc_pub, d.x_sk)

    def audit(self):
        return json.loads(self.sc("audit", "--tail", "200", "--json").stdout)

    def revlist(self, pkt):
        kid, m = k.sign1_open(pkt.payload, self.sc_pub, "$sc/revoked")
        self.assertEqual(kid, "sc")
        return m


class KeyRelease(ScBrokerTest):

    def test_allowed_devices_get_a_key_they_can_open(self):
        pub = self.ask(self.dev1)
        self.assertEqual(pub["status"], "ok", pub)
        self.assertEqual(len(pub["ms"]), 32)
        self.assertEqual(pub[8], "plant/#")
        self.assertEqual(pub[7], 24)  # ChaCha20-Poly1305, the policy default
        self.assertEqual(len(pub[12]), 1)  # a sender id for the publisher
        self.assertGreater(pub[11], time.time() + 86000)
        sub = self.ask(self.dev2, topic="plant/#", intent=2)
        self.assertEqual(sub["status"], "ok", sub)
        self.assertNotIn(12, sub)
        self.assertEqual((sub[5], sub[6], sub["ms"]), (pub[5], pub[6], pub["ms"]))
        released = [a for a in self.audit() if a["action"] == "key.released"]
        self.assertEqual([a["thing"] for a in released], ["dev-1", "dev-2"])
        self.assertNotIn(pub["ms"].hex(), json.dumps(self.audit()))

    def test_attributes_outside_the_policy_are_denied_and_audited(self):
        r = self.ask(self.dev2, topic="plant/1/temp", intent=1)
        self.assertEqual(r["status"], "denied")
        self.assertNotIn("ms", r)
        refused = [a for a in self.audit() if a["action"] == "key.refused"]
        self.assertEqual(len(refused), 1)
        self.assertEqual(refused[0]["thing"], "dev-2")
        detail = refused[0]["detail"]
        self.assertEqual((detail["status"], detail["topic"], detail["intent"]),
                         ("denied", "plant/1/temp", "publish"))

    def test_replayed_and_stale_requests_are_refused(self):
        msg, h = k.request(self.dev1.seed, "dev-1", self.dev1.x_pub, topic="plant/1/temp",
                           intent=1)
        first = k.response_open(self.send(self.dev1, msg).payload, "dev-1", h, self.sc_pub,
                                self.dev1.x_sk)
        self.assertEqual(first["status"], "ok")
        again = k.response_open(self.send(self.dev1, msg, corr=b"c2").payload, "dev-1", h,
                                self.sc_pub, self.dev1.x_sk)
        self.assertEqual(again["status"], "replay")
        stale = self.ask(self.dev1, iat=int(time.time()) - 120)
        self.assertEqual(stale["status"], "stale")
        # a response replayed for a new request does not verify against it
        msg2, h2 = k.request(self.dev1.seed, "dev-1", self.dev1.x_pub, topic="plant/1/temp",
                             intent=1)
        with self.assertRaises(AssertionError):
            k.response_open(self.send(self.dev1, msg).payload, "dev-1", h2, self.sc_pub,
                            self.dev1.x_sk)

    def test_revoked_device_is_refused_and_the_list_republished(self):
        first = self.ask(self.dev1)
        self.assertEqual(first["status"], "ok")
        gid = first[5]
        r = self.reader("$sc/revoked", "$sc/epoch/" + gid.hex())
        initial = self.revlist(r.expect_publish(timeout=5))
        self.assertNotIn("dev-1", initial.get(4, []))
        self.sc("thing", "revoke", "dev-1", "--reason", "key-compromise")
        got = {}
        deadline = time.monotonic() + 8
        while len(got) < 2 and time.monotonic() < deadline:
            p = r.expect_publish(timeout=8)
            got[p.topic] = p
        newer = self.revlist(got["$sc/revoked"])
        self.assertIn("dev-1", newer[4])
        self.assertGreater(newer[1], initial[1])
        self.assertEqual(k.epoch_open(got["$sc/epoch/" + gid.hex()].payload,
                                      "$sc/epoch/" + gid.hex(), self.sc_pub)[:2], (gid, 2))
        # moatd enforces the list: dev-1 is disconnected and refused
        self.dev1.peer.expect_closed(timeout=3, disconnect_rc=NOT_AUTHORIZED)
        again = self.peer()
        self.assertEqual(again.connect("dev-1", expect_rc=None, username="dev-1",
                                       password="d1-pw").rc, NOT_AUTHORIZED)
        self.assertIn("thing dev-1 revoked", self.read_sc_log())
        # the subscriber's next key is epoch 2, which dev-1 never had
        sub = self.ask(self.dev2, topic="plant/#", intent=2)
        self.assertEqual((sub["status"], sub[6]), ("ok", 2))
        self.assertNotEqual(sub["ms"], first["ms"])

    def test_policy_change_rotates_the_group(self):
        first = self.ask(self.dev2, topic="plant/#", intent=2)
        self.assertEqual(first["status"], "ok")
        gid = first[5]
        r = self.reader("$sc/epoch/" + gid.hex())
        changed = json.loads(json.dumps(POLICIES))
        changed["policies"][0]["subscribe"] = "role == viewer"
        self.write_policies(changed)
        p = r.expect_publish(timeout=10)
        self.assertEqual(k.epoch_open(p.payload, p.topic, self.sc_pub), (gid, 2, "plant/#"))
        self.assertIn("group plant/# rotated to epoch 2 (policy)", self.read_sc_log())
        late = self.client("late", username="reader", password="r-pw")
        late.subscribe(("$sc/epoch/" + gid.hex(), 1))
        kept = late.expect_publish(timeout=5)  # retained for devices that come later
        self.assertTrue(kept.retain)
        self.assertEqual(kept.payload, p.payload)
        now = self.ask(self.dev2, topic="plant/#", intent=2)
        self.assertEqual((now["status"], now[6]), ("ok", 2))
        self.assertNotEqual(now["ms"], first["ms"])
        # dev-1 (a sensor) may no longer subscribe
        self.assertEqual(self.ask(self.dev1, topic="plant/#", intent=2)["status"], "denied")

    def test_policy_change_while_stopped_rotates_at_start(self):
        first = self.ask(self.dev2, topic="plant/#", intent=2)
        gid = first[5]
        self.stop_serve()
        changed = json.loads(json.dumps(POLICIES))
        changed["policies"][0]["subscribe"] = "role == viewer"
        self.write_policies(changed)
        self.start_serve()
        self.wait_sc_log("group plant/# rotated to epoch 2 (policy)")
        r = self.reader("$sc/epoch/" + gid.hex())
        p = r.expect_publish(timeout=5)
        self.assertEqual(k.epoch_open(p.payload, p.topic, self.sc_pub), (gid, 2, "plant/#"))
        # an unchanged file at the next start rotates nothing
        self.stop_serve()
        self.start_serve()
        self.assertEqual(self.read_sc_log().count("rotated to epoch"), 1)

    def test_tamper_alert_revokes_the_device(self):
        first = self.ask(self.dev1)
        self.assertEqual(first["status"], "ok")
        r = self.reader("$sc/revoked")
        r.expect_publish(timeout=5)  # the list as it was
        self.dev1.peer.publish("alerts/dev-1/tamper", k.alert(self.dev1.seed, "dev-1",
                                                              int(time.time()), "case opened"),
                               qos=1)
        newer = self.revlist(r.expect_publish(timeout=8))
        self.assertIn("dev-1", newer[4])
        self.dev1.peer.expect_closed(timeout=3, disconnect_rc=NOT_AUTHORIZED)
        alerts = [a for a in self.audit() if a["action"] == "tamper.alert"]
        self.assertEqual(len(alerts), 1)
        self.assertIn("case opened", json.dumps(alerts[0]))
        # a forged alert (another key) for dev-2 changes nothing
        d2 = self.connect(self.dev2)
        d2.publish("alerts/dev-2/tamper", k.alert(self.dev1.seed, "dev-2", int(time.time())),
                   qos=1)
        self.wait_sc_log("tamper alert on alerts/dev-2/tamper ignored")
        self.assertEqual(self.ask(self.dev2, topic="plant/#", intent=2)["status"], "ok")

    def test_tamper_alert_sent_while_the_sc_is_away_is_handled(self):
        self.assertEqual(self.ask(self.dev1)["status"], "ok")
        self.stop_serve()  # its session stays on the broker, subscriptions included
        self.dev1.peer.publish("alerts/dev-1/tamper", k.alert(self.dev1.seed, "dev-1",
                                                              int(time.time()), "while away"),
                               qos=1)
        self.start_serve()
        self.dev1.peer.expect_closed(timeout=10, disconnect_rc=NOT_AUTHORIZED)
        alerts = [a for a in self.audit() if a["action"] == "tamper.alert"]
        self.assertEqual(len(alerts), 1)
        self.assertIn("while away", json.dumps(alerts[0]))


class RevokedStatus(ScBrokerTest):
    """Without sc_public_key moatd does not enforce the SC's lists, so a
    revoked device still reaches the SC, whose own check answers "revoked"."""
    CONFIG = ("password_file {dir}/passwd\nsc_username sc\n"
              "topic_policy_file {dir}/sc/policies.json\n")

    def test_revoked_thing_gets_revoked(self):
        self.assertEqual(self.ask(self.dev1)["status"], "ok")
        self.sc("thing", "revoke", "dev-1")
        self.wait_sc_log("thing dev-1 revoked")
        r = self.ask(self.dev1)
        self.assertEqual(r["status"], "revoked")
        self.assertNotIn("ms", r)
        self.assertIn("revoked", [a["detail"].get("status") for a in self.audit()
                                  if a["action"] == "key.refused"])


if __name__ == "__main__":
    unittest.main()
