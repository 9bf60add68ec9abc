"""Helpers shared by test_auth.py, test_acl.py and test_audit.py.

FileBrokerTest: a BrokerTest whose configuration may name files written per
test into a private directory (class attribute FILES and per-test
files_for_<test>: {name: text or bytes}); "{dir}" in CONFIG / config_for_<test>
is replaced by that directory. Also: password entries made with `moat passwd`
and Debian's mosquitto_passwd, JWTs made with python3-jwt, SIGHUP reload and
audit-log reading.
"""
import base64
import hashlib
import hmac
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

from moattest import BrokerTest, CONNACK, Closed, is_mosquitto

MOSQUITTO_PASSWD = "/usr/bin/mosquitto_passwd"


def moat_tool():
    """Path of the `moat` tool: $MOAT, else next to $MOATD."""
    path = os.environ.get("MOAT")
    if not path and os.environ.get("MOATD"):
        path = os.path.join(os.path.dirname(os.environ["MOATD"]), "moat")
    return path


def moat_passwd_file(path, users, scram=False):
    """Writes <path> with `moat passwd -b` for each (user, password)."""
    tool = moat_tool()
    first = True
    for user, password in users:
        args = [tool, "passwd"] + (["--scram"] if scram else []) + \
            (["-c"] if first else []) + ["-b", path, user, password]
        subprocess.run(args, check=True, capture_output=True, timeout=30)
        first = False


def mosquitto_passwd_file(path, users):
    """Writes <path> with Debian's mosquitto_passwd -b ($7$ entries)."""
    first = True
    for user, password in users:
        subprocess.run([MOSQUITTO_PASSWD] + (["-c"] if first else []) + ["-b", path, user, password],
                       check=True, capture_output=True, timeout=30)
        first = False


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unsigned_token(header, claims):
    return b64url(json.dumps(header).encode()) + "." + b64url(json.dumps(claims).encode())


def hs256_token(secret, claims):
    """HS256 token signed with <secret> bytes (PyJWT refuses a PEM key as secret)."""
    head = unsigned_token({"alg": "HS256", "typ": "JWT"}, claims)
    sig = hmac.new(secret, head.encode(), hashlib.sha256).digest()
    return head + "." + b64url(sig)


def none_token(claims):
    return unsigned_token({"alg": "none", "typ": "JWT"}, claims) + "."


class Keys:
    """Fresh Ed25519 and P-256 key pairs; pub PEMs written into a directory."""

    def __init__(self, directory):
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ec, ed25519
        self.ed = ed25519.Ed25519PrivateKey.generate()
        self.ec = ec.generate_private_key(ec.SECP256R1())
        self.other_ed = ed25519.Ed25519PrivateKey.generate()
        pub = serialization.PublicFormat.SubjectPublicKeyInfo
        enc = serialization.Encoding.PEM
        self.ed_pub_pem = self.ed.public_key().public_bytes(enc, pub)
        self.ec_pub_pem = self.ec.public_key().public_bytes(enc, pub)
        self.ed_path = os.path.join(directory, "ed25519.pub.pem")
        self.ec_path = os.path.join(directory, "p256.pub.pem")
        with open(self.ed_path, "wb") as f:
            f.write(self.ed_pub_pem)
        with open(self.ec_path, "wb") as f:
            f.write(self.ec_pub_pem)

    def token(self, claims, key="ed", headers=None):
        import jwt
        if key == "ed":
            return jwt.encode(claims, self.ed, algorithm="EdDSA", headers=headers)
        if key == "ec":
            return jwt.encode(claims, self.ec, algorithm="ES256", headers=headers)
        if key == "other":
            return jwt.encode(claims, self.other_ed, algorithm="EdDSA", headers=headers)
        raise ValueError(key)


class FileBrokerTest(BrokerTest):
    """Skipped with MOAT_TEST_BROKER=mosquitto: mosquitto 2.0.11 grants every
    SUBSCRIBE (SUBACK 0x00/0x01) and filters at delivery, accepts a Will to a
    denied topic, and reloads only on a readable config; these files assert
    moatd's documented rules (docs/acl.md, docs/security.md)."""
    FILES = {}

    def setUp(self):
        if is_mosquitto():
            self.skipTest("moatd's authentication and ACL semantics")
        self.dir = tempfile.mkdtemp(prefix="moatauth-")
        os.chmod(self.dir, 0o755)  # mosquitto run as root reads it as user mosquitto
        self.addCleanup(shutil.rmtree, self.dir, True)
        name = self._testMethodName
        files = dict(self.FILES)
        files.update(getattr(self, "files_for_" + name, {}))
        for fname, text in files.items():
            self.write_file(fname, text)
        self.prepare()
        self.CONFIG = self.CONFIG.replace("{dir}", self.dir)
        extra = getattr(self, "config_for_" + name, None)
        if extra is not None:
            setattr(self, "config_for_" + name, extra.replace("{dir}", self.dir))
        super().setUp()

    def prepare(self):
        """Hook: write further files into self.dir before the broker starts."""

    def path(self, fname):
        return os.path.join(self.dir, fname)

    def write_file(self, fname, text):
        mode = "wb" if isinstance(text, bytes) else "w"
        tmp = self.path(fname) + ".tmp"
        with open(tmp, mode) as f:
            f.write(text)
        os.replace(tmp, self.path(fname))

    def reload(self, expect_ok=True):
        """SIGHUP; waits for the broker's log line saying how the reload went."""
        marker = "reloaded the password, ACL and token files" if expect_ok else "reload failed"
        before = self.broker.log().count(marker)
        self.broker.proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            if self.broker.log().count(marker) > before:
                time.sleep(0.3)  # workers adopt the new rules on their next turn
                return
            time.sleep(0.05)
        self.fail("no %r in the broker log after SIGHUP:\n%s" % (marker, self.broker.log()[-3000:]))

    def connack(self, version=5, client_id="c", **kw):
        """Sends CONNECT and returns the CONNACK reason code (connection then
        closed by the test when refused)."""
        p = self.peer(version)
        p.send(p.connect_bytes(client_id, **kw))
        ack = p.expect(CONNACK, timeout=8)
        if ack.rc != 0:
            try:
                p.expect_closed()
            except (Closed, socket.timeout):
                pass
        return ack.rc

    def client_when_slot_free(self, client_id, timeout=3.0, **kw):
        """A connected peer, retrying while CONNACK says 0x9F: the harness's
        readiness probe may still hold a per-address slot for a moment."""
        deadline = time.monotonic() + timeout
        while True:
            p = self.peer()
            ack = p.connect(client_id, expect_rc=None, **kw)
            if ack.rc == 0:
                return p
            p.close()
            if ack.rc != 0x9F or time.monotonic() > deadline:
                raise AssertionError("CONNACK 0x%02x for %s" % (ack.rc, client_id))
            time.sleep(0.05)

    def timed_connack(self, version=5, client_id="c", **kw):
        p = self.peer(version)
        t0 = time.monotonic()
        p.send(p.connect_bytes(client_id, **kw))
        ack = p.expect(CONNACK, timeout=8)
        return ack.rc, time.monotonic() - t0, p


def audit_lines(path):
    """Parsed JSON lines of the audit log (every line must be JSON)."""
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]
