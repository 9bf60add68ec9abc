"""SCRAM-SHA-256 through MQTT 5 enhanced authentication (AUTH packets): the
client proves it knows the password without sending it. The client side here
is written from RFC 5802/7677 with Python's hashlib, independently of
src/auth/scram.c."""
import base64
import hashlib
import hmac
import os
import subprocess

import moattest as mt

METHOD = "SCRAM-SHA-256"


def scram_entry(password, salt=b"moat-test-salt16", iterations=4096):
    salted = hashlib.pbkdf2_hmac("sha256", password, salt, iterations)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored = hashlib.sha256(client_key).digest()
    server = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
    b64 = lambda b: base64.b64encode(b).decode()
    return "$scram-sha-256$%d$%s$%s$%s" % (iterations, b64(salt), b64(stored), b64(server))


class ScramClient:
    def __init__(self, user, password):
        self.user, self.password = user, password
        self.nonce = base64.b64encode(os.urandom(18)).decode()
        self.first_bare = "n=%s,r=%s" % (user, self.nonce)

    def first(self):
        return ("n,," + self.first_bare).encode()

    def final(self, server_first):
        self.server_first = server_first.decode()
        attrs = dict(kv.split("=", 1) for kv in self.server_first.split(","))
        assert attrs["r"].startswith(self.nonce)
        salted = hashlib.pbkdf2_hmac("sha256", self.password, base64.b64decode(attrs["s"]),
                                     int(attrs["i"]))
        client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
        stored = hashlib.sha256(client_key).digest()
        without_proof = "c=biws,r=" + attrs["r"]
        self.auth_message = ",".join([self.first_bare, self.server_first, without_proof]).encode()
        sig = hmac.new(stored, self.auth_message, hashlib.sha256).digest()
        proof = bytes(a ^ b for a, b in zip(client_key, sig))
        server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
        self.expected_server_sig = hmac.new(server_key, self.auth_message, hashlib.sha256).digest()
        return (without_proof + ",p=" + base64.b64encode(proof).decode()).encode()


class TestScram(mt.BrokerTest):
    ALLOW_ANONYMOUS = False

    def setUp(self):
        self.pwfile = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                   ".scram-%d.pw" % os.getpid())
        with open(self.pwfile, "w") as f:
            f.write("alice:%s\n" % scram_entry(b"wonderland"))
        self.addCleanup(os.unlink, self.pwfile)
        self.CONFIG = "password_file %s\nauth_fail_delay_max 200\n" % self.pwfile
        super().setUp()

    def start(self, user, password, client_id="sc"):
        p = self.peer()
        client = ScramClient(user, password)
        p.send(p.connect_bytes(client_id, props={"auth_method": METHOD, "auth_data": client.first()}))
        return p, client

    def test_success_without_password_on_the_wire(self):
        p, client = self.start("alice", b"wonderland")
        auth = p.expect(mt.AUTH)
        self.assertEqual(auth.rc, 0x18)
        self.assertEqual(auth.props["auth_method"], METHOD)
        final = client.final(auth.props["auth_data"])
        self.assertNotIn(b"wonderland", final)
        p.send(mt.packet(mt.AUTH, 0, bytes([0x18]) + mt.props_block(
            {"auth_method": METHOD, "auth_data": final})))
        ack = p.expect(mt.CONNACK)
        self.assertEqual(ack.rc, 0)
        self.assertEqual(ack.props["auth_method"], METHOD)
        self.assertEqual(ack.props["auth_data"],
                         b"v=" + base64.b64encode(client.expected_server_sig))
        p.subscribe("s/t", qos=0)
        p.send(p.publish_bytes("s/t", b"hi", qos=0))
        self.assertEqual(p.expect_publish().payload, b"hi")   # the session works

    def test_wrong_password_refused(self):
        p, client = self.start("alice", b"queen")
        auth = p.expect(mt.AUTH)
        p.send(mt.packet(mt.AUTH, 0, bytes([0x18]) + mt.props_block(
            {"auth_method": METHOD, "auth_data": client.final(auth.props["auth_data"])})))
        ack = p.expect(mt.CONNACK, timeout=5)
        self.assertEqual(ack.rc, 0x86)

    def test_unknown_user_gets_a_challenge_then_refused(self):
        """Replies must not reveal which users exist: bob gets a server-first
        message like alice's and fails at the proof."""
        p, client = self.start("bob", b"wonderland")
        auth = p.expect(mt.AUTH)
        self.assertIn(b"i=4096", auth.props["auth_data"])
        p.send(mt.packet(mt.AUTH, 0, bytes([0x18]) + mt.props_block(
            {"auth_method": METHOD, "auth_data": client.final(auth.props["auth_data"])})))
        self.assertEqual(p.expect(mt.CONNACK, timeout=5).rc, 0x86)

    def test_other_method_refused_0x8c(self):
        p = self.peer()
        p.send(p.connect_bytes("x", props={"auth_method": "SCRAM-SHA-1", "auth_data": b"n,,n=a,r=b"}))
        ack = p.expect(mt.CONNACK)
        self.assertEqual(ack.rc, 0x8C)
        self.assertIn("SCRAM-SHA-256", ack.props.get("reason_string", ""))

    def test_publish_before_authentication_ends_is_protocol_error(self):
        p, _ = self.start("alice", b"wonderland")
        p.expect(mt.AUTH)
        p.send(p.publish_bytes("s/t", b"early", qos=0))
        p.expect_closed()

    def test_password_also_works_for_a_scram_entry(self):
        """A SCRAM entry is enough for plain CONNECT password logins too."""
        p = self.peer()
        self.assertEqual(p.connect("pw", username="alice", password="wonderland").rc, 0)
        q = self.peer()
        self.assertEqual(q.connect("pw2", username="alice", password="nope", expect_rc=None).rc, 0x86)

    def test_entry_written_by_moat_passwd(self):
        moat = os.environ.get("MOAT")
        if not moat:
            self.skipTest("MOAT is not set")
        subprocess.run([moat, "passwd", "-b", "--scram", self.pwfile, "carol", "c-pass"], check=True,
                       capture_output=True)
        self.broker.proc.send_signal(mt.signal.SIGHUP)
        mt.time.sleep(0.5)
        p, client = self.start("carol", b"c-pass")
        auth = p.expect(mt.AUTH)
        p.send(mt.packet(mt.AUTH, 0, bytes([0x18]) + mt.props_block(
            {"auth_method": METHOD, "auth_data": client.final(auth.props["auth_data"])})))
        self.assertEqual(p.expect(mt.CONNACK).rc, 0)

    def moat_pub(self, password, *extra):
        moat = os.environ.get("MOAT")
        if not moat:
            self.skipTest("MOAT is not set")
        return subprocess.run([moat, "pub", "-p", str(self.port), "-u", "alice", "-P", password,
                               "--scram", "-t", "s/cli", "-m", "by-scram", "-q", "1"] + list(extra),
                              capture_output=True, text=True, timeout=20)

    def test_moat_pub_scram(self):
        """libmoat and `moat pub --scram`: the AUTH exchange from the client side."""
        sub = self.peer()
        sub.connect("watch", username="alice", password="wonderland")
        sub.subscribe("s/cli", qos=1)
        r = self.moat_pub("wonderland")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(sub.expect_publish().payload, b"by-scram")
        r = self.moat_pub("wrong")
        self.assertNotEqual(r.returncode, 0)
        sub.expect_nothing(0.3)
