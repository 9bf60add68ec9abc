"""`moat pub --e2e` / `moat sub --e2e` (libmoat's e2e API) against a real moatd
and a small Python stand-in for the Security Center.

The stand-in answers key requests on $sc/req/+ with responses built by
keyrel_oracle.py (python3-cbor2 + python3-cryptography, independent of the C
keyrel.c), signed with the Ed25519 key whose public half is each bundle's
sc.pub, and HPKE-sealed to the device's X25519 key. Bundles are made here with
python3-cryptography. Checked: the plaintext goes from `moat pub --e2e` to
`moat sub --e2e`; a subscriber without the key sees only COSE bytes with the
COSE content type; a message the subscriber cannot open is reported as
`refused: <topic>: <reason>` and the subscriber goes on (also when the
Security Center does not answer); a response replayed to a
second request is refused; a device the SC denies gets the status and reason;
a signed topic carries a COSE_Sign1 that python3-cryptography verifies with the
publisher's key; a retained epoch announcement makes the subscriber fetch the
new key at once.
"""
import hashlib
import json
import os
import subprocess
import threading
import time

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.serialization import (Encoding, NoEncryption, PrivateFormat,
                                                          PublicFormat)

import keyrel_oracle as kr
from authkit import FileBrokerTest, moat_passwd_file, moat_tool
from moattest import PUBACK, PUBLISH, Closed

CT_ENCRYPT0 = 'application/cose; cose-type="cose-encrypt0"'


def raw(key):
    if isinstance(key, (Ed25519PrivateKey, X25519PrivateKey)):
        return key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def make_bundle(path, client_id, port, sc_key):
    """A device credential bundle (the e2e part: bundle.json, sign.key, agree.key, sc.pub)."""
    os.makedirs(path, mode=0o700)
    sign, agree = Ed25519PrivateKey.generate(), X25519PrivateKey.generate()
    with open(os.path.join(path, "bundle.json"), "w") as f:
        json.dump({"client_id": client_id, "broker": "mqtt://127.0.0.1:%d" % port}, f)
    for name, key in (("sign.key", sign), ("agree.key", agree)):
        fd = os.open(os.path.join(path, name), os.O_WRONLY | os.O_CREAT, 0o600)
        os.write(fd, key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()))
        os.close(fd)
    with open(os.path.join(path, "sc.pub"), "wb") as f:
        f.write(sc_key.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo))
    return {"sign_pub": raw(sign.public_key()), "agree_pub": raw(agree.public_key())}


class StandInSC(threading.Thread):
    """Answers get-key requests: group G (filter e2e/#, ChaCha20-Poly1305,
    epoch 1); publish grants carry a sender id per device. With replay set,
    the next request gets the previous response's bytes instead; requests of
    the devices in silent get no answer."""

    def __init__(self, peer, sc_seed, devices):
        super().__init__(daemon=True)
        self.peer, self.sc_seed, self.devices = peer, sc_seed, devices
        self.group, self.ms = os.urandom(8), os.urandom(32)
        self.requests, self.errors = [], []
        self.replay, self.last = False, None
        self.denied, self.silent = set(), set()
        self.epoch, self.rotate = 1, threading.Event()
        self.stop = threading.Event()

    def answer(self, p):
        cid = p.topic[len("$sc/req/"):]
        dev = self.devices[cid]
        kid, m = kr.sign1_open(p.payload, dev["sign_pub"], p.topic)
        assert kid == cid and m[1] == 1 and m[2] == cid, m
        assert m[8] == hashlib.sha256(dev["agree_pub"]).digest()
        self.requests.append((cid, m[3], m[4]))
        if cid in self.silent:
            return
        req_hash = hashlib.sha256(p.payload).digest()
        if self.replay and self.last is not None:
            resp = self.last
        elif cid in self.denied:
            resp = kr.response_seal(self.sc_seed, cid, req_hash, dev["agree_pub"], status=1,
                                    reason="attribute site=lab required", sc_time=int(time.time()))
        elif m[3].startswith("signed/"):
            resp = kr.response_seal(
                self.sc_seed, cid, req_hash, dev["agree_pub"], sc_time=int(time.time()),
                group_id=b"signed-g", epoch=1, alg=3, filt="signed/#", signed=True,
                not_after=int(time.time()) + 3600,
                sender_id=dev["sid"] if m[4] == 1 else None, ms=b"\x5a" * 32)
        elif not m[3].startswith("e2e/"):
            resp = kr.response_seal(self.sc_seed, cid, req_hash, dev["agree_pub"], status=7,
                                    reason="no policy for the topic", sc_time=int(time.time()))
        else:
            resp = kr.response_seal(
                self.sc_seed, cid, req_hash, dev["agree_pub"], sc_time=int(time.time()),
                group_id=self.group, epoch=self.epoch, alg=24, filt="e2e/#", max_age=300,
                not_after=int(time.time()) + 3600,
                sender_id=dev["sid"] if m[4] == 1 else None, ms=self.ms)
        self.last = resp
        self.peer.publish(p.props["response_topic"], resp, qos=1, complete=False,
                          props={"correlation_data": p.props["correlation_data"]})

    def announce_next_epoch(self):
        self.epoch, self.ms = self.epoch + 1, os.urandom(32)
        msg = kr.epoch_build(self.sc_seed, self.group, self.epoch, "e2e/#", int(time.time()))
        self.peer.publish("$sc/epoch/" + self.group.hex(), msg, qos=1, retain=True,
                          complete=False)

    def run(self):
        while not self.stop.is_set():
            if self.rotate.is_set():
                self.rotate.clear()
                self.announce_next_epoch()
            try:
                p = self.peer.recv(timeout=0.2)
            except OSError:
                continue
            except Closed:
                return
            if p.type != PUBLISH:
                continue  # PUBACKs of our answers
            self.peer.send(self.peer.ack_bytes(PUBACK, p.pid))
            try:
                self.answer(p)
            except Exception as e:  # noqa: BLE001
                self.errors.append(repr(e))


class E2EClient(FileBrokerTest):
    ALLOW_ANONYMOUS = False
    CONFIG = "password_file {dir}/passwd\nacl_file {dir}/acl\nsc_username sc\n"
    FILES = {"acl": "pattern readwrite #\n"}

    def prepare(self):
        moat_passwd_file(self.path("passwd"),
                         [("alice", "a-pw"), ("bob", "b-pw"), ("sc", "sc-pw"), ("eve", "e-pw")])

    def setUp(self):
        super().setUp()
        self.moat = moat_tool()
        if not self.moat:
            self.skipTest("MOAT is not set (path to the moat tool)")
        sc_key = Ed25519PrivateKey.generate()
        self.devices = {}
        for cid, sid in (("dev-pub", b"\x01"), ("dev-sub", b"\x02"), ("dev-eve", b"\x03")):
            self.devices[cid] = make_bundle(self.path(cid), cid, self.port, sc_key)
            self.devices[cid]["sid"] = sid
        center = self.client("moat-sc", username="sc", password="sc-pw")
        self.assertEqual(center.subscribe(("$sc/req/+", 1)), [1])
        self.peers.remove(center)  # the stand-in's thread owns it
        self.sc = StandInSC(center, raw(sc_key), self.devices)
        self.sc.start()
        self.addCleanup(self.stop_sc)

    def stop_sc(self):
        self.sc.stop.set()
        self.sc.join(5)
        self.sc.peer.close()

    def pub(self, cid, user, topic, message, timeout=20):
        return subprocess.run([self.moat, "pub", "--e2e", self.path(cid), "-u", user, "-P",
                               user[0] + "-pw", "-q", "1", "-t", topic, "-m", message],
                              capture_output=True, text=True, timeout=timeout)

    def wait_requests(self, n, timeout=10):
        end = time.time() + timeout
        while len(self.sc.requests) < n and time.time() < end:
            time.sleep(0.05)
        self.assertGreaterEqual(len(self.sc.requests), n, self.sc.errors)

    def run_sub(self, count, during, topic="e2e/#"):
        """Runs `moat sub --e2e` for <count> messages on e2e/# while <during>() publishes,
        once its key was requested and its SUBSCRIBE sent; returns (stdout, stderr)."""
        sub = subprocess.Popen([self.moat, "sub", "--e2e", self.path("dev-sub"), "-u", "bob",
                                "-P", "b-pw", "-q", "1", "-t", topic, "-C", str(count), "-W",
                                "20"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            self.wait_requests(1)  # the subscriber's key (intent subscribe)
            self.assertEqual(self.sc.requests[0], ("dev-sub", topic, 2))
            time.sleep(0.5)  # its SUBSCRIBE follows the key
            during()
            out, err = sub.communicate(timeout=20)
        finally:
            if sub.poll() is None:
                sub.kill()
                sub.communicate()
        self.assertEqual(sub.returncode, 0, err)
        return out, err

    def publish_ok(self, topic, message):
        r = self.pub("dev-pub", "alice", topic, message)
        self.assertEqual(r.returncode, 0, r.stderr)

    def test_pub_to_sub_end_to_end(self):
        spy = self.client("spy", username="eve", password="e-pw")
        self.assertEqual(spy.subscribe(("e2e/#", 1)), [1])

        def during():
            forged = self.client("forger", username="eve", password="e-pw")
            forged.publish("e2e/temp", b"\xd0\x84not-cose", qos=1)
            spy.expect_publish()
            self.publish_ok("e2e/temp", "secret-plaintext-42")

        out, err = self.run_sub(1, during)
        self.assertEqual(out, "secret-plaintext-42\n")
        self.assertIn("refused: ", err)  # the forged message, reported and skipped
        self.assertIn(("dev-pub", "e2e/temp", 1), self.sc.requests)
        got = spy.expect_publish()  # a subscriber without the key: COSE bytes only
        self.assertEqual(got.topic, "e2e/temp")
        self.assertEqual(got.props.get("content_type"), CT_ENCRYPT0)
        self.assertEqual(got.payload[0], 0xd0)  # CBOR tag 16, COSE_Encrypt0
        self.assertNotIn(b"secret-plaintext-42", got.payload)
        self.assertNotIn(b"plaintext", got.payload)
        self.assertEqual(self.sc.errors, [])
        # the key cache is at rest in the bundle, encrypted
        with open(self.path("dev-pub/state/keys.cache"), "rb") as f:
            cache = f.read()
        self.assertNotIn(self.sc.ms, cache)
        self.assertNotIn(b"e2e/#", cache)
        # the second publish uses the cached key: no further request
        n = len(self.sc.requests)
        self.publish_ok("e2e/temp", "again")
        self.assertEqual(len(self.sc.requests), n)
        self.assertNotEqual(spy.expect_publish().payload, got.payload)

    def test_new_epoch_announced_and_fetched(self):
        def during():
            self.publish_ok("e2e/x", "in epoch 1")
            self.sc.rotate.set()  # retained $sc/epoch/<group>: epoch 2
            self.wait_requests(3)  # the subscriber asks for the new key at once
            self.assertEqual(self.sc.requests[2], ("dev-sub", "e2e/#", 2))
            time.sleep(0.3)
            # a new publisher sees the announcement and seals in epoch 2, or seals in epoch 1,
            # which the subscriber still opens within the grace window
            self.publish_ok("e2e/x", "after the rotation")

        out, _ = self.run_sub(2, during)
        self.assertEqual(out, "in epoch 1\nafter the rotation\n")
        self.assertEqual(self.sc.errors, [])

    def test_signed_topic(self):
        spy = self.client("spy", username="eve", password="e-pw")
        self.assertEqual(spy.subscribe(("signed/#", 1)), [1])
        out, _ = self.run_sub(1, lambda: self.publish_ok("signed/alarm", "tamper!"),
                              topic="signed/#")
        self.assertEqual(out, "tamper!\n")
        got = spy.expect_publish()
        self.assertEqual(got.props.get("content_type"), 'application/cose; cose-type="cose-sign1"')
        self.assertEqual(got.payload[0], 0xd2)  # CBOR tag 18, COSE_Sign1
        # signed by the publisher's sign.key (checked by python3-cryptography), around an Encrypt0
        kid, inner = kr.sign1_open(got.payload, self.devices["dev-pub"]["sign_pub"], got.topic)
        self.assertEqual((kid, inner.tag), ("dev-pub", 16))
        self.assertNotIn(b"tamper!", got.payload)
        self.assertEqual(self.sc.errors, [])

    def test_replayed_response_refused(self):
        self.publish_ok("e2e/a", "first")
        self.sc.replay = True  # the next request gets the first answer again
        r = self.pub("dev-pub", "alice", "other/b", "second")
        self.assertEqual(r.returncode, 1)
        self.assertIn("key response refused", r.stderr)
        self.assertEqual(len(self.sc.requests), 2)
        self.assertEqual(self.sc.errors, [])

    def test_denied_key_reports_status_and_reason(self):
        self.sc.denied.add("dev-eve")
        r = self.pub("dev-eve", "eve", "e2e/a", "x")
        self.assertEqual(r.returncode, 1)
        self.assertIn("denied: attribute site=lab required", r.stderr)
        r = self.pub("dev-pub", "alice", "nopolicy/a", "x")
        self.assertEqual(r.returncode, 1)
        self.assertIn("bad-request: no policy for the topic", r.stderr)

    def test_message_without_key_is_reported_with_its_topic(self):
        self.sc.silent.add("dev-sub")
        sub = subprocess.Popen([self.moat, "sub", "--e2e", self.path("dev-sub"), "-u", "bob",
                                "-P", "b-pw", "-q", "1", "-t", "e2e/#", "-C", "1", "-W", "4"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            self.wait_requests(1)
            time.sleep(6)  # its unanswered key request times out (5 s), then it subscribes
            self.publish_ok("e2e/held", "never-opened")
            out, err = sub.communicate(timeout=20)
        finally:
            if sub.poll() is None:
                sub.kill()
                sub.communicate()
        self.assertEqual(out, "")
        self.assertIn("no answer from the Security Center", err)
        self.assertIn("refused: e2e/held: no answer from the Security Center", err)


if __name__ == "__main__":
    import unittest
    unittest.main()
