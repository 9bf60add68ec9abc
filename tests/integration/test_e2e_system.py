"""The whole system, issue 6's "the broker cannot read": a real moatd, a real
`moat-sc serve`, `moat ctl` and `moat pub/sub --e2e`, with every byte the
broker routes and stores tapped.

moatd has a mutual-TLS listener (client certificates from the SC's CA; the
devices log in with SC access tokens bound to those certificates, so the
topic policies see their attributes) and a loopback plain listener where only
the SC logs in with a password. `moat-sc init` + `serve` run the SC;
`moat ctl policy set` writes the shared topic policy file, `moat ctl thing
create` makes the bundles (broker mqtts://, so `moat pub/sub --e2e` connect
with the bundle's TLS files). dev-1 (sensor) publishes, dev-2 (viewer)
subscribes, dev-3 (guest) satisfies no policy.

Taps: a TLS-terminating proxy between the devices and moatd (it presents the
broker's certificate to the device and the device's own certificate to
moatd, so it sees the MQTT bytes as moatd does), a TCP proxy on the SC's
connection, moatd's store (LMDB data.mdb), its log and its audit log. The
plaintext markers (32 random hex digits per message) appear in none of them,
while `moat sub --e2e` prints every one. Then: dev-3 is refused a key
("denied", key.refused in `moat ctl audit tail`) and a keyless subscriber
sees COSE bytes only; `moat ctl thing revoke dev-2` gets dev-2 disconnected
by moatd within 1 s, its reconnect and key request refused, and a message of
the next epoch does not open with dev-2's cached keys (`moat sub --e2e` on
its bundle against a bare broker), while an older one does; a signed tamper
alert from dev-1 makes the SC revoke it and rotate its group.

The tests share one system and run in name order (a_, b_, ...): revocation
and the alert change it for the tests after them."""
import base64
import hashlib
import json
import os
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import time
import unittest

import cbor2
from cryptography.hazmat.primitives.serialization import (Encoding, NoEncryption, PrivateFormat,
                                                          PublicFormat, load_pem_private_key,
                                                          load_pem_public_key)

import keyrel_oracle as kr
import moattest
from authkit import moat_passwd_file, moat_tool
from moattest import Broker, Peer, free_port
from test_operation import wait_for
from tlstest import TlsPeer

HERE = os.path.dirname(os.path.abspath(__file__))
MOAT_SC = os.environ.get("MOAT_SC") or os.path.join(HERE, "..", "..", "build", "dev", "bin",
                                                    "moat-sc")
NOT_AUTHORIZED = 0x87
CT_ENCRYPT0 = 'application/cose; cose-type="cose-encrypt0"'
TOPIC = "plant/1/temp"


def setUpModule():
    if moattest.is_mosquitto():
        raise unittest.SkipTest("the Security Center speaks to moatd")
    if not os.path.exists(MOAT_SC) or not moat_tool():
        raise unittest.SkipTest("moat-sc or moat not built (set MOAT_SC and MOAT)")


def run(argv, check=True, timeout=60):
    p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    if check and p.returncode != 0:
        raise AssertionError("%s: %s%s" % (" ".join(argv), p.stdout, p.stderr))
    return p


def jwk_thumbprint(pem_path):
    """RFC 7638 thumbprint of an Ed25519 public key (the SC's token kid)."""
    with open(pem_path, "rb") as f:
        raw = load_pem_public_key(f.read()).public_bytes(Encoding.Raw, PublicFormat.Raw)
    x = base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
    jwk = '{"crv":"Ed25519","kty":"OKP","x":"%s"}' % x
    return base64.urlsafe_b64encode(hashlib.sha256(jwk.encode()).digest()).rstrip(b"=").decode()


def pump(src, dst, record, lock):
    """Copies <src> to <dst> until either side closes, appending to <record>."""
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            with lock:
                record.append(data)
            dst.sendall(data)
    except OSError:
        pass
    for s in (src, dst):
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def finish(proc, timeout):
    """(stdout, stderr) of <proc> once it ends; killed after <timeout> seconds."""
    try:
        return proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.communicate()


class Tap(threading.Thread):
    """A proxy on a free loopback port in front of <target_port>, recording every
    byte both ways. With <server_ctx>, it terminates the devices' TLS and opens
    its own to moatd with the certificate of the device (by CN) from <bundles>."""

    def __init__(self, target_port, server_ctx=None, bundles=None):
        super().__init__(daemon=True)
        self.target, self.server_ctx, self.bundles = target_port, server_ctx, bundles
        self.lsock = socket.create_server(("127.0.0.1", 0))
        self.lsock.settimeout(0.2)
        self.port = self.lsock.getsockname()[1]
        self.records, self.lock, self.stop = [], threading.Lock(), threading.Event()
        self.socks, self.errors = [], []

    def data(self):
        with self.lock:
            return b"".join(self.records)

    def upstream(self, down):
        up = socket.create_connection(("127.0.0.1", self.target))
        if self.server_ctx is None:
            return down, up
        down = self.server_ctx.wrap_socket(down, server_side=True)
        cn = dict(x[0] for x in down.getpeercert()["subject"])["commonName"]
        b = self.bundles[cn]
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.load_verify_locations(os.path.join(b, "ca.pem"))
        ctx.load_cert_chain(os.path.join(b, "cert.pem"), os.path.join(b, "key.pem"))
        return down, ctx.wrap_socket(up, server_hostname="127.0.0.1")

    def serve(self, down):
        try:
            down.settimeout(10)
            down, up = self.upstream(down)
            down.settimeout(None)
        except (OSError, KeyError) as e:
            self.errors.append(repr(e))
            down.close()
            return
        self.socks += [down, up]
        threading.Thread(target=pump, args=(down, up, self.records, self.lock),
                         daemon=True).start()
        threading.Thread(target=pump, args=(up, down, self.records, self.lock),
                         daemon=True).start()

    def run(self):
        while not self.stop.is_set():
            try:
                down, _ = self.lsock.accept()
            except OSError:
                continue
            threading.Thread(target=self.serve, args=(down,), daemon=True).start()

    def close(self):
        self.stop.set()
        self.join(2)
        self.lsock.close()
        for s in self.socks:
            try:
                s.close()
            except OSError:
                pass


def kid_context(payload):
    """(group_id, epoch) of a COSE_Encrypt0 from its kid context (header 10)."""
    tag = cbor2.loads(payload)
    assert tag.tag == 16, "not a COSE_Encrypt0"
    prot = cbor2.loads(tag.value[0]) if tag.value[0] else {}
    ctx = prot.get(10, tag.value[1].get(10))
    return ctx[:8], int.from_bytes(ctx[8:12], "big")


class E2ESystem(unittest.TestCase):

    # ---- the system --------------------------------------------------------

    @classmethod
    def setUpClass(cls):
        cls.base = b = tempfile.mkdtemp(prefix="moattest-e2esys-")
        cls.sc_dir = os.path.join(b, "sc")
        cls.moat = moat_tool()
        cls.sc_cmd("init", "--name", "e2e-system")
        cls.sc_cmd("thing", "add", "broker-1", "--broker", "--san", "IP:127.0.0.1",
                   "--out", os.path.join(b, "broker"))
        with open(os.path.join(cls.sc_dir, "policies.json"), "w") as f:
            json.dump({"policies": [{"filter": "alerts/+/tamper", "publish": "true",
                                     "subscribe": "true"}]}, f)
        moat_passwd_file(os.path.join(b, "passwd"), [("sc", "sc-pw")])
        with open(os.path.join(b, "sc.pw"), "w") as f:
            f.write("sc-pw\n")
        cls.plain = free_port()
        cls.store = os.path.join(b, "store")
        cls.audit_log = os.path.join(b, "audit.log")
        config = ("certfile {b}/broker/cert.pem\nkeyfile {b}/broker/key.pem\n"
                  "cafile {sc}/ca.pem\nrequire_certificate true\n"
                  "password_file {b}/passwd\n"
                  "auth_token_key {sc}/token.pub {kid}\nauth_token_issuer moat-sc\n"
                  "auth_token_audience moat\n"
                  "sc_username sc\nsc_public_key {sc}/token.pub\n"
                  "topic_policy_file {sc}/policies.json\n"
                  "persistence true\npersistence_location {store}\n"
                  "audit_log file {audit}\n"
                  "listener {plain} 127.0.0.1\n").format(
                      b=b, sc=cls.sc_dir, kid=jwk_thumbprint(os.path.join(cls.sc_dir,
                                                                          "token.pub")),
                      store=cls.store, audit=cls.audit_log, plain=cls.plain)
        cls.broker = Broker(config, allow_anonymous=False).start()
        cls.bundles = {}
        server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        server_ctx.load_cert_chain(os.path.join(b, "broker", "cert.pem"),
                                   os.path.join(b, "broker", "key.pem"))
        server_ctx.load_verify_locations(os.path.join(cls.sc_dir, "ca.pem"))
        server_ctx.verify_mode = ssl.CERT_REQUIRED
        cls.dev_tap = Tap(cls.broker.port, server_ctx, cls.bundles)
        cls.sc_tap = Tap(cls.plain)
        cls.dev_tap.start()
        cls.sc_tap.start()
        cls.sc_logf = open(os.path.join(b, "sc.log"), "wb")
        cls.serve = subprocess.Popen(
            [MOAT_SC, "--dir", cls.sc_dir, "serve", "--broker", "127.0.0.1:%d" % cls.sc_tap.port,
             "--username", "sc", "--password-file", os.path.join(b, "sc.pw"), "--rate", "50/s",
             "--broker-url", "mqtts://127.0.0.1:%d" % cls.dev_tap.port],
            stdout=cls.sc_logf, stderr=subprocess.STDOUT,
            env=dict(os.environ, ASAN_OPTIONS=os.environ.get("ASAN_OPTIONS", "detect_leaks=1")))
        try:
            wait_for(lambda: "connected; serving" in cls.sc_log(), what="the SC serving")
            cls.ctl("policy", "set", "plant/#", "--publish", "role == sensor",
                    "--subscribe", "role in [sensor, viewer]")
            cls.broker.proc.send_signal(signal.SIGHUP)  # moatd reads the new policy file
            cls.tokens = {}
            for name, role in (("dev-1", "sensor"), ("dev-2", "viewer"), ("dev-3", "guest"),
                               ("spy", "viewer")):
                out = os.path.join(b, name)
                cls.ctl("thing", "create", name, "--attr", "role=" + role, "--attr",
                        "site=plant-7", "--out", out)
                cls.bundles[name] = out
                cls.tokens[name] = cls.ctl("token", "issue", name)["token"]
            time.sleep(0.3)
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        try:
            if cls.serve.poll() is None:
                cls.serve.send_signal(signal.SIGTERM)
                cls.serve.wait(timeout=15)
            cls.sc_logf.close()
            cls.dev_tap.close()
            cls.sc_tap.close()
            cls.broker.stop(check=True)
            text = cls.sc_log()
            for bad in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:"):
                assert bad not in text, text[-4000:]
            assert cls.serve.returncode == 0, text[-4000:]
        finally:
            cls.broker.cleanup()
            shutil.rmtree(cls.base, ignore_errors=True)

    @classmethod
    def sc_cmd(cls, *args):
        return run([MOAT_SC, "--dir", cls.sc_dir] + list(args))

    @classmethod
    def ctl(cls, *args, check=True):
        p = run([cls.moat, "ctl", "--sc-dir", cls.sc_dir, "--json"] + list(args), check=check)
        return json.loads(p.stdout) if p.stdout else {"ok": False, "stderr": p.stderr}

    @classmethod
    def sc_log(cls):
        with open(os.path.join(cls.base, "sc.log"), "rb") as f:
            return f.read().decode("utf-8", "replace")

    def path(self, *parts):
        return os.path.join(self.base, *parts)

    def audit(self, action, thing):
        rows = self.ctl("audit", "tail", "-n", "500")["audit"]
        return [r for r in rows if r.get("action") == action and r.get("thing") == thing]

    def e2e_argv(self, verb, name, *args):
        return [self.moat, verb, "--e2e", self.bundles[name], "-u", name, "-P",
                self.tokens[name], "-q", "1"] + list(args)

    def pub(self, name, message, topic=TOPIC, *extra):
        return run(self.e2e_argv("pub", name, "-t", topic, "-m", message, *extra), check=False)

    def tls_peer(self, name, port=None):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        b = self.bundles[name]
        ctx.load_verify_locations(os.path.join(b, "ca.pem"))
        ctx.load_cert_chain(os.path.join(b, "cert.pem"), os.path.join(b, "key.pem"))
        p = TlsPeer(port or self.broker.port, ctx)
        self.addCleanup(p.close)
        return p

    def spy(self, *filters):
        """A subscriber the policy lets read plant/# (a viewer) that never asks for a key."""
        p = self.tls_peer("spy")
        p.connect("spy", username="spy", password=self.tokens["spy"])
        self.assertEqual(p.subscribe(*[(f, 1) for f in filters]), [1] * len(filters))
        return p

    # ---- the tests, in order ----------------------------------------------

    def test_a_broker_cannot_read(self):
        spy = self.spy("plant/#")
        markers = [secrets.token_hex(16) for _ in range(3)]
        sub = subprocess.Popen(self.e2e_argv("sub", "dev-2", "-t", "plant/#", "-C", "3", "-W",
                                             "20"),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            wait_for(lambda: self.audit("key.released", "dev-2"), what="dev-2's key")
            time.sleep(0.5)  # its SUBSCRIBE follows the key
            for i, m in enumerate(markers):
                extra = ("-r",) if i == 2 else ()  # retained: moatd's store holds it
                r = self.pub("dev-1", "reading " + m, TOPIC, *extra)
                self.assertEqual(r.returncode, 0, r.stderr)
        finally:
            out, err = finish(sub, 20)
        self.assertEqual(sub.returncode, 0, err)
        # the subscriber with the key reads every message
        self.assertEqual(out.splitlines(), ["reading " + m for m in markers])
        # a subscriber without it gets COSE bytes only
        seen = [spy.expect_publish(timeout=5) for _ in markers]
        for p in seen:
            self.assertEqual(p.topic, TOPIC)
            self.assertEqual(p.props.get("content_type"), CT_ENCRYPT0)
            self.assertEqual(p.payload[0], 0xd0)
        time.sleep(0.5)  # the store commits the retained message
        with open(os.path.join(self.store, "data.mdb"), "rb") as f:
            store = f.read()
        wire = self.dev_tap.data() + self.sc_tap.data()
        # the taps and the store do see what moatd sees: topics and the sealed payloads
        self.assertIn(TOPIC.encode(), self.dev_tap.data())
        self.assertIn(b"$sc/req/dev-1", self.sc_tap.data())
        self.assertIn(seen[2].payload, store)
        for p in seen:
            self.assertIn(p.payload, wire)
        with open(self.audit_log, "rb") as f:
            logs = self.broker.log().encode() + f.read() + self.sc_log().encode()
        for m in markers:
            for where, data in (("the wire", wire), ("the store", store), ("the logs", logs)):
                self.assertNotIn(m.encode(), data, where)
                self.assertNotIn(m.upper().encode(), data, where)
            for p in seen:
                self.assertNotIn(m.encode(), p.payload)
        self.assertEqual(self.dev_tap.errors, [])

    def test_b_device_outside_the_policy_is_refused_a_key(self):
        r = self.pub("dev-3", "never " + secrets.token_hex(16))
        self.assertEqual(r.returncode, 1)
        self.assertIn("denied", r.stderr)
        refused = self.audit("key.refused", "dev-3")
        self.assertEqual(len(refused), 1, refused)
        detail = refused[0]["detail"]
        if isinstance(detail, str):
            detail = json.loads(detail)
        self.assertEqual((detail["status"], detail["topic"], detail["intent"]),
                         ("denied", TOPIC, "publish"))
        self.assertEqual(self.audit("key.released", "dev-3"), [])

    def test_c_revocation(self):
        spy = self.spy("plant/#", "$sc/epoch/+")
        spy.drain_publishes(quiet_s=0.5)  # the retained reading and epoch announcement
        # an epoch-1 message dev-2 has not seen yet
        old = "before " + secrets.token_hex(16)
        self.assertEqual(self.pub("dev-1", old).returncode, 0)
        old_msg = spy.expect_publish(timeout=5)
        group, epoch = kid_context(old_msg.payload)
        d2 = self.tls_peer("dev-2")
        d2.connect("dev-2", username="dev-2", password=self.tokens["dev-2"])
        released = len(self.audit("key.released", "dev-2"))
        t0 = time.monotonic()
        ctl = subprocess.Popen([self.moat, "ctl", "--sc-dir", self.sc_dir, "--json", "thing",
                                "revoke", "dev-2", "--reason", "key-compromise"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            d2.expect_closed(timeout=3, disconnect_rc=NOT_AUTHORIZED)
            closed_s = time.monotonic() - t0
        finally:
            out, err = finish(ctl, 30)
        r = json.loads(out)
        self.assertTrue(r["ok"], err)
        self.assertTrue(r.get("daemon"), r)
        print("\ndev-2 disconnected %.3f s after `moat ctl thing revoke` started" % closed_s)
        # the target is 1 s (the line above prints the time); the bound here
        # is loose because the sanitizer build on a loaded CI machine
        # pays for starting `moat ctl` too
        self.assertLessEqual(closed_s, 3.0)
        again = self.tls_peer("dev-2")
        self.assertEqual(again.connect("dev-2", expect_rc=None, username="dev-2",
                                       password=self.tokens["dev-2"]).rc, NOT_AUTHORIZED)
        # its key requests go nowhere: moatd refuses the connection they need
        r = run(self.e2e_argv("sub", "dev-2", "-t", "plant/#", "-C", "1", "-W", "5"),
                check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("not authorized", r.stderr.lower())
        self.assertEqual(len(self.audit("key.released", "dev-2")), released)
        self.assertEqual(self.ctl("thing", "show", "dev-2")["thing"]["status"], "revoked")
        # the group rotated: the announcement, and a publisher with no cached key seals epoch 2
        ann = spy.expect_publish(timeout=5)
        self.assertEqual(ann.topic, "$sc/epoch/" + group.hex())
        with open(os.path.join(self.sc_dir, "token.pub"), "rb") as f:
            sc_pub = load_pem_public_key(f.read()).public_bytes(Encoding.Raw, PublicFormat.Raw)
        self.assertEqual(kr.epoch_open(ann.payload, ann.topic, sc_pub)[:2], (group, epoch + 1))
        os.remove(self.path("dev-1", "state", "keys.cache"))
        new = "after " + secrets.token_hex(16)
        self.assertEqual(self.pub("dev-1", new).returncode, 0)
        new_msg = spy.expect_publish(timeout=5)
        self.assertEqual(kid_context(new_msg.payload), (group, epoch + 1))
        # dev-2's bundle, offline with its cached keys (a bare broker, no SC): the old
        # message opens, the new one does not
        bare = Broker("", allow_anonymous=True).start()
        try:
            sub = subprocess.Popen([self.moat, "sub", "--e2e", self.bundles["dev-2"], "-h",
                                    "127.0.0.1", "-p", str(bare.port), "-q", "1", "-t",
                                    "plant/#", "-W", "18"],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            err_lines = []
            reader = threading.Thread(target=lambda: err_lines.extend(sub.stderr), daemon=True)
            reader.start()
            try:
                # it refreshes its subscribe key first: nobody answers (5 s), then it subscribes
                deadline = time.monotonic() + 7
                while not any("no key yet" in x for x in err_lines) and \
                        time.monotonic() < deadline:
                    time.sleep(0.05)
                time.sleep(0.5)
                feeder = Peer(bare.port)
                self.addCleanup(feeder.close)
                feeder.connect("feeder")
                for m in (new_msg, old_msg):
                    feeder.publish(TOPIC, m.payload, qos=1,
                                   props={"content_type": CT_ENCRYPT0})
                out = sub.stdout.read()
                sub.wait(timeout=20)
                reader.join(5)
                err = "".join(err_lines)
            finally:
                if sub.poll() is None:
                    sub.kill()
                    sub.wait()
                sub.stdout.close()
                sub.stderr.close()
            bare.stop(check=True)
        finally:
            bare.cleanup()
        self.assertEqual(out, old + "\n", err)
        self.assertIn("refused: ", err)
        print("dev-2's cached keys on the epoch-%d message: %s" % (
            epoch + 1, [x for x in err.splitlines() if x.startswith("refused")]))
        self.assertNotIn(new.split()[1], out + err)

    def test_d_tamper_alert_revokes_and_rotates(self):
        spy = self.spy("$sc/epoch/+", "$sc/revoked")
        spy.drain_publishes(quiet_s=0.5)
        d1 = self.tls_peer("dev-1")
        d1.connect("dev-1", username="dev-1", password=self.tokens["dev-1"])
        with open(self.path("dev-1", "sign.key"), "rb") as f:
            seed = load_pem_private_key(f.read(), None).private_bytes(
                Encoding.Raw, PrivateFormat.Raw, NoEncryption())
        d1.publish("alerts/dev-1/tamper", kr.alert(seed, "dev-1", int(time.time()),
                                                   "case opened"), qos=1)
        d1.expect_closed(timeout=5, disconnect_rc=NOT_AUTHORIZED)
        got = {}
        deadline = time.monotonic() + 8
        while len(got) < 2 and time.monotonic() < deadline:
            p = spy.expect_publish(timeout=8)
            got[p.topic] = p
        self.assertIn("$sc/revoked", got)
        with open(os.path.join(self.sc_dir, "token.pub"), "rb") as f:
            sc_pub = load_pem_public_key(f.read()).public_bytes(Encoding.Raw, PublicFormat.Raw)
        _, revoked = kr.sign1_open(got["$sc/revoked"].payload, sc_pub, "$sc/revoked")
        self.assertIn("dev-1", revoked[4])
        ann = [p for t, p in got.items() if t.startswith("$sc/epoch/")]
        self.assertEqual(len(ann), 1, got.keys())
        _, epoch, filt = kr.epoch_open(ann[0].payload, ann[0].topic, sc_pub)
        self.assertEqual((filt, epoch), ("plant/#", 3))
        alerts = self.audit("tamper.alert", "dev-1")
        self.assertEqual(len(alerts), 1)
        self.assertIn("case opened", json.dumps(alerts[0]))
        show = self.ctl("thing", "show", "dev-1")
        self.assertEqual(show["thing"]["status"], "revoked")


if __name__ == "__main__":
    unittest.main()
