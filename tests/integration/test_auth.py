"""Authentication at CONNECT: anonymous access, password files (`moat passwd`,
Debian's mosquitto_passwd), delayed refusals per address, unsafe identities
with an ACL, JWTs as passwords, per-address connection limits, SIGHUP reload
of the password file."""
import atexit
import os
import shutil
import signal
import subprocess
import tempfile
import time
import unittest

import moattest
from moattest import BrokerTest, main
from authkit import (FileBrokerTest, Keys, hs256_token, moat_tool, moat_passwd_file,
                     mosquitto_passwd_file, none_token, MOSQUITTO_PASSWD)

OK, BAD_USER_PASS, NOT_AUTHORIZED, CLIENT_ID_INVALID = 0x00, 0x86, 0x87, 0x85
RATE_EXCEEDED = 0x9F


class AnonymousDefault(BrokerTest):
    ALLOW_ANONYMOUS = None  # no allow_anonymous line: the default applies

    def test_anonymous_refused_by_default_v5(self):
        p = self.peer(5)
        self.assertEqual(p.connect("anon", expect_rc=None).rc, NOT_AUTHORIZED)
        p.expect_closed()

    def test_anonymous_refused_by_default_v311(self):
        p = self.peer(4)
        self.assertEqual(p.connect("anon", expect_rc=None).rc, 5)
        p.expect_closed()


class AnonymousAllowed(BrokerTest):
    ALLOW_ANONYMOUS = True

    def test_anonymous_allowed_when_configured(self):
        a = self.client("anon-sub")
        a.subscribe("t", qos=1)
        b = self.client("anon-pub", version=4)
        b.publish("t", b"hi", qos=1)
        self.assertEqual(a.expect_publish().payload, b"hi")


class _PasswdFiles:
    """Password files made once per process (argon2id hashing takes a while)."""
    dir = None

    @classmethod
    def get(cls):
        if cls.dir is None:
            if not moat_tool() or not os.path.exists(moat_tool()):
                raise unittest.SkipTest("moat tool not found (set MOAT or MOATD)")
            cls.dir = tempfile.mkdtemp(prefix="moatpw-")
            atexit.register(shutil.rmtree, cls.dir, True)
            moat_passwd_file(os.path.join(cls.dir, "moat.pw"),
                             [("alice", "pencil"), ("bob", "correct horse")])
            moat_passwd_file(os.path.join(cls.dir, "scram.pw"), [("dev", "s3cret")], scram=True)
            if os.path.exists(MOSQUITTO_PASSWD):
                mosquitto_passwd_file(os.path.join(cls.dir, "mosq.pw"),
                                      [("alice", "pencil"), ("bob", "correct horse")])
        return cls.dir


class PasswordFile(FileBrokerTest):
    ALLOW_ANONYMOUS = False
    CONFIG = "password_file {dir}/pw\nauth_fail_delay_max 200\n"
    PW = "moat.pw"

    def prepare(self):
        src = os.path.join(_PasswdFiles.get(), self.PW)
        if not os.path.exists(src):
            self.skipTest("no %s" % self.PW)
        shutil.copy(src, self.path("pw"))

    def test_right_password_accepted(self):
        for version in (5, 4):
            p = self.peer(version)
            p.connect("ok%d" % version, username="alice", password="pencil")
            p.ping()
            p.disconnect()
        p = self.client("ok-bob", username="bob", password="correct horse")
        p.ping()

    def test_wrong_password_refused(self):
        self.assertEqual(self.connack(5, username="alice", password="pencil2"), BAD_USER_PASS)
        self.assertEqual(self.connack(4, username="alice", password="Pencil"), 4)

    def test_unknown_user_refused(self):
        self.assertEqual(self.connack(5, username="mallory", password="pencil"), BAD_USER_PASS)
        self.assertEqual(self.connack(4, username="mallory", password="pencil"), 4)

    def test_username_without_password_refused(self):
        self.assertEqual(self.connack(5, username="alice"), BAD_USER_PASS)
        self.assertEqual(self.connack(4, username="alice"), 4)

    def test_no_credentials_refused(self):
        self.assertEqual(self.connack(5), NOT_AUTHORIZED)
        self.assertEqual(self.connack(4), 5)

    def test_takeover_with_password(self):
        """A second CONNECT with the same client id and a right password takes
        the session over (old connection: DISCONNECT 0x8E), whichever worker
        thread holds the session."""
        for i in range(8):
            old = self.client("same%d" % i, username="alice", password="pencil")
            new = self.peer()
            new.send(new.connect_bytes("same%d" % i, username="alice", password="pencil"))
            self.assertEqual(new.expect(moattest.CONNACK, timeout=5).rc, OK, "round %d" % i)
            old.expect_closed(disconnect_rc=0x8E)
            new.disconnect()

    def test_resume_session_with_password(self):
        """Reconnecting to an offline persistent session with a right password
        resumes it, whichever worker thread holds the session."""
        for i in range(8):
            kw = dict(clean=False, props={"session_expiry": 60}, username="alice",
                      password="pencil")
            self.client("keep%d" % i, **kw).disconnect()
            again = self.peer()
            again.send(again.connect_bytes("keep%d" % i, **kw))
            ack = again.expect(moattest.CONNACK, timeout=5)
            self.assertEqual((ack.rc, ack.session_present), (OK, 1), "round %d" % i)
            again.disconnect()

    def test_reload_removes_user(self):
        """SIGHUP: a user deleted from the password file cannot connect afterwards,
        the others still can."""
        self.client("before", username="bob", password="correct horse").disconnect()
        subprocess_ok = subprocess.run(
            [moat_tool(), "passwd", "-D", self.path("pw"), "bob"], capture_output=True, timeout=30)
        self.assertEqual(subprocess_ok.returncode, 0, subprocess_ok.stderr)
        self.reload()
        self.assertEqual(self.connack(5, "after", username="bob", password="correct horse"),
                         BAD_USER_PASS)
        self.client("alice-after", username="alice", password="pencil").ping()

    def test_broken_password_file_on_reload_keeps_old(self):
        self.write_file("pw", "alice:$argon2id$broken\n:::\n")
        self.reload(expect_ok=False)
        self.client("still", username="alice", password="pencil").ping()
        self.assertEqual(self.connack(5, username="alice", password="nope"), BAD_USER_PASS)


class PasswordFileWithAnonymous(FileBrokerTest):
    """allow_anonymous true next to a password file: clients without a username
    get in; a username still needs its right password."""
    ALLOW_ANONYMOUS = True
    CONFIG = "password_file {dir}/pw\nauth_fail_delay_max 200\n"

    def prepare(self):
        shutil.copy(os.path.join(_PasswdFiles.get(), "moat.pw"), self.path("pw"))

    def test_anonymous_and_password_together(self):
        self.client("anon").ping()
        self.assertEqual(self.connack(5, "x", username="alice", password="bad"), BAD_USER_PASS)
        self.assertEqual(self.connack(5, "y", username="nobody", password="pencil"),
                         BAD_USER_PASS)
        self.client("alice", username="alice", password="pencil").ping()

    def test_reload_adds_user(self):
        self.assertEqual(self.connack(5, "z", username="zoe", password="zz-top"), BAD_USER_PASS)
        subprocess.run([moat_tool(), "passwd", "-b", self.path("pw"), "zoe", "zz-top"],
                       check=True, capture_output=True, timeout=30)
        self.reload()
        self.client("z2", username="zoe", password="zz-top").ping()


class MosquittoPasswdFile(PasswordFile):
    """The same expectations with $7$ entries from Debian's mosquitto_passwd."""
    PW = "mosq.pw"

    test_reload_removes_user = None
    test_broken_password_file_on_reload_keeps_old = None


class ScramEntryAsPassword(FileBrokerTest):
    ALLOW_ANONYMOUS = False
    CONFIG = "password_file {dir}/pw\nauth_fail_delay_max 200\n"

    def prepare(self):
        shutil.copy(os.path.join(_PasswdFiles.get(), "scram.pw"), self.path("pw"))

    def test_scram_entry_checks_plain_password(self):
        """docs/cli.md: a --scram entry also serves plain CONNECT passwords."""
        self.client("s", username="dev", password="s3cret").ping()
        self.assertEqual(self.connack(5, "s2", username="dev", password="wrong"), BAD_USER_PASS)


class RefusalDelay(FileBrokerTest):
    ALLOW_ANONYMOUS = False
    CONFIG = "password_file {dir}/pw\n"  # default auth_fail_delay_max: the backoff itself

    def prepare(self):
        shutil.copy(os.path.join(_PasswdFiles.get(), "moat.pw"), self.path("pw"))

    def test_refusal_delay_grows_per_address(self):
        times = []
        for i in range(3):
            rc, took, p = self.timed_connack(5, "bad%d" % i, username="alice", password="x%d" % i)
            self.assertEqual(rc, BAD_USER_PASS)
            p.close()
            times.append(took)
        # held 100 ms, 200 ms, 400 ms, plus the hash check each time: lower bounds
        # only (a loaded machine makes the hash check, never the delay, shorter)
        for took, held in zip(times, (0.1, 0.2, 0.4)):
            self.assertGreaterEqual(took, held * 0.9, times)
        # a fourth refusal is held ~800 ms; meanwhile a right password is answered at once
        bad = self.peer()
        t0 = time.monotonic()
        bad.send(bad.connect_bytes("bad3", username="alice", password="x3"))
        time.sleep(0.25)  # its hash check is done: it is now held, not yet answered
        rc, took, good = self.timed_connack(5, "good", username="bob", password="correct horse")
        self.assertEqual(rc, OK)
        self.assertEqual(bad.expect(moattest.CONNACK, timeout=8).rc, BAD_USER_PASS)
        bad_took = time.monotonic() - t0
        self.assertLess(took, 0.4, took)
        self.assertGreater(bad_took, 0.7, bad_took)
        good.ping()


class UnsafeIdentities(FileBrokerTest):
    """With an acl_file, + # / in a client id or username are refused at CONNECT
    (CVE-2017-7650)."""
    ALLOW_ANONYMOUS = True
    CONFIG = "acl_file {dir}/acl\nauth_fail_delay_max 200\n"
    FILES = {"acl": "pattern readwrite c/%c/#\npattern readwrite u/%u/#\n"}

    def test_wildcards_in_client_id_refused(self):
        for cid in ("a+b", "#", "a/b", "+"):
            self.assertEqual(self.connack(5, cid), CLIENT_ID_INVALID, cid)
        self.assertEqual(self.connack(4, "x/#"), 2)

    def test_wildcards_in_username_refused(self):
        for user in ("u+", "#", "a/b"):
            self.assertEqual(self.connack(5, "ok", username=user), BAD_USER_PASS, user)
        self.assertEqual(self.connack(4, "ok", username="#"), 4)

    def test_plain_identity_accepted(self):
        p = self.client("dev1", username="alice")
        self.assertEqual(p.subscribe("c/dev1/#", "u/alice/x", "c/dev2/#", qos=1),
                         [1, 1, NOT_AUTHORIZED])


class Tokens(FileBrokerTest):
    ALLOW_ANONYMOUS = False
    CONFIG = ("auth_token_key {dir}/ed25519.pub.pem\nauth_token_key {dir}/p256.pub.pem\n"
              "auth_token_audience moat-test\nauth_token_leeway 0\nauth_fail_delay_max 200\n"
              "acl_file {dir}/acl\n")
    FILES = {"acl": "pattern readwrite sites/%{site}/#\n"
                    "user plain\ntopic read plain/#\n"
                    "role sensors\ntopic readwrite sensors/#\n"}

    def prepare(self):
        self.keys = Keys(self.dir)

    def claims(self, **kw):
        c = {"sub": "dev1", "aud": "moat-test", "exp": int(time.time()) + 300,
             "iat": int(time.time())}
        c.update(kw)
        return c

    def token_rc(self, token, version=5, client_id="dev1"):
        return self.connack(version, client_id, username="tok", password=token)

    def test_eddsa_token_accepted(self):
        p = self.client("dev1", username="ignored", password=self.keys.token(self.claims()))
        p.ping()

    def test_es256_token_accepted(self):
        p = self.client("dev1", version=4, username="x",
                        password=self.keys.token(self.claims(), key="ec"))
        p.ping()

    def test_expired_token_refused(self):
        t = self.keys.token(self.claims(exp=int(time.time()) - 60))
        self.assertEqual(self.token_rc(t), BAD_USER_PASS)
        self.assertEqual(self.token_rc(t, version=4), 4)

    def test_wrong_key_refused(self):
        self.assertEqual(self.token_rc(self.keys.token(self.claims(), key="other")), BAD_USER_PASS)

    def test_alg_none_refused(self):
        self.assertEqual(self.token_rc(none_token(self.claims())), BAD_USER_PASS)

    def test_hs256_with_public_key_refused(self):
        for pem in (self.keys.ed_pub_pem, self.keys.ec_pub_pem):
            self.assertEqual(self.token_rc(hs256_token(pem, self.claims())), BAD_USER_PASS)

    def test_wrong_audience_refused(self):
        self.assertEqual(self.token_rc(self.keys.token(self.claims(aud="other"))), BAD_USER_PASS)

    def test_tampered_token_refused(self):
        t = self.keys.token(self.claims())
        head, body, sig = t.split(".")
        forged = __import__("authkit").unsigned_token(
            {"alg": "EdDSA", "typ": "JWT"}, self.claims(sub="admin")).split(".")[1]
        self.assertEqual(self.token_rc(head + "." + forged + "." + sig), BAD_USER_PASS)

    def test_token_roles_grant_acl_role(self):
        t = self.keys.token(self.claims(roles=["sensors"]))
        p = self.client("dev1", username="x", password=t)
        self.assertEqual(p.subscribe("sensors/#", "plain/#", "other", qos=1),
                         [1, NOT_AUTHORIZED, NOT_AUTHORIZED])
        pub = self.client("dev1-pub", username="x",
                          password=self.keys.token(self.claims(roles=["sensors"])))
        pub.publish("sensors/t1", b"21.5", qos=1)
        self.assertEqual(p.expect_publish().payload, b"21.5")
        # without the role claim the same user gets nothing
        q = self.client("dev2", username="x", password=self.keys.token(self.claims(sub="dev2")))
        self.assertEqual(q.subscribe("sensors/#", qos=1), [NOT_AUTHORIZED])

    def test_token_attributes_fill_acl_patterns(self):
        """attrs {"site": "s1"} let the holder use sites/s1/#, and nothing of
        another site; a token without the attribute gets neither."""
        p = self.client("dev1", username="x", password=self.keys.token(self.claims(attrs={"site": "s1"})))
        self.assertEqual(p.subscribe("sites/s1/#", "sites/s2/#", qos=0), [0, NOT_AUTHORIZED])
        p.send(p.publish_bytes("sites/s1/t", b"ok", qos=0))
        self.assertEqual(p.expect_publish().payload, b"ok")
        p.send(p.publish_bytes("sites/s2/t", b"no", qos=1, pid=9))
        self.assertEqual(p.expect(moattest.PUBACK).rc, NOT_AUTHORIZED)
        q = self.client("dev3", username="x", password=self.keys.token(self.claims(sub="dev3")))
        self.assertEqual(q.subscribe("sites/s1/#", qos=1), [NOT_AUTHORIZED])

    def test_token_username_claim_names_the_user(self):
        """The CONNECT username is ignored; the token's sub is the ACL user."""
        p = self.client("dev1", username="dev1",
                        password=self.keys.token(self.claims(sub="plain")))
        self.assertEqual(p.subscribe("plain/x", qos=1), [1])

    def test_token_client_id_mismatch_refused(self):
        t = self.keys.token(self.claims(client_id="dev1"))
        self.assertEqual(self.token_rc(t, client_id="dev9"), NOT_AUTHORIZED)
        self.client("dev1", username="x", password=t).ping()

    def test_token_without_exp_refused(self):
        c = self.claims()
        del c["exp"]
        self.assertEqual(self.token_rc(self.keys.token(c)), BAD_USER_PASS)

    def test_token_kid_naming_no_key_refused(self):
        t = self.keys.token(self.claims(), headers={"kid": "nope"})
        self.assertEqual(self.token_rc(t), BAD_USER_PASS)

    config_for_test_token_issuer_checked = "auth_token_issuer https://issuer.test\n"

    def test_token_issuer_checked(self):
        self.assertEqual(self.token_rc(self.keys.token(self.claims(iss="https://evil.test"))),
                         BAD_USER_PASS)
        self.assertEqual(self.token_rc(self.keys.token(self.claims())), BAD_USER_PASS)
        self.client("dev1", username="x",
                    password=self.keys.token(self.claims(iss="https://issuer.test"))).ping()

    def test_token_expiry_closes_v311(self):
        t = self.keys.token(self.claims(exp=int(time.time()) + 2))
        p = self.client("dev1", version=4, username="x", password=t, keepalive=60)
        t0 = time.monotonic()
        p.expect_closed(timeout=6)
        self.assertLess(time.monotonic() - t0, 4.5)

    def test_token_expiry_disconnects_0xa0(self):
        t = self.keys.token(self.claims(exp=int(time.time()) + 2))
        p = self.client("dev1", username="x", password=t, keepalive=60)
        p.expect_closed(timeout=6, disconnect_rc=0xA0)


class Signals(FileBrokerTest):
    ALLOW_ANONYMOUS = True
    CONFIG = "password_file {dir}/pw\nacl_file {dir}/acl\naudit_log file {dir}/audit.log\n"
    FILES = {"acl": "topic readwrite #\n"}

    def prepare(self):
        shutil.copy(os.path.join(_PasswdFiles.get(), "moat.pw"), self.path("pw"))

    def test_sighup_while_reloading_keeps_broker(self):
        """SIGHUPs in quick succession (one arriving while the previous reload
        runs) reload again; none may kill the broker."""
        for _ in range(100):
            self.broker.proc.send_signal(signal.SIGHUP)
            time.sleep(0.001)
        time.sleep(0.5)
        self.assertTrue(self.broker.alive(), "broker died:\n" + self.broker.log()[-2000:])
        self.assert_serves()


class PerAddressLimits(FileBrokerTest):
    ALLOW_ANONYMOUS = True
    config_for_test_max_connections_per_address = "max_connections_per_address 2\n"
    # the harness's readiness probe (one TCP connection) counts as the first
    config_for_test_connection_rate_per_address = "connection_rate_per_address 4\n"

    def test_max_connections_per_address(self):
        a = self.client_when_slot_free("a")
        b = self.client_when_slot_free("b")
        self.assertEqual(self.peer().connect("c", expect_rc=None).rc, RATE_EXCEEDED)
        b.disconnect()
        self.client_when_slot_free("d").ping()
        a.ping()

    def test_connection_rate_per_address(self):
        # a burst of 8 (sent within milliseconds, so no slow start-up under
        # load lets the rate refill): at most 4 in 10 s are admitted
        peers = [self.peer() for _ in range(8)]
        for i, p in enumerate(peers):
            p.send(p.connect_bytes("r%d" % i))
        rcs = [p.expect(moattest.CONNACK).rc for p in peers]
        self.assertLessEqual(rcs.count(0), 4, rcs)
        self.assertGreaterEqual(rcs.count(RATE_EXCEEDED), 4, rcs)
        self.assertEqual(rcs.count(0) + rcs.count(RATE_EXCEEDED), 8, rcs)
        for p, rc in zip(peers, rcs):
            if rc == RATE_EXCEEDED:
                p.expect_closed()


if __name__ == "__main__":
    main()
