"""TLS listeners: protocol versions, cipher lists, renegotiation, mutual TLS with
certificate identities (CN, subject, capath, CRL), start-up checks of the PEM
files, SIGHUP reload of certificate, key, CA and CRL, the handshake timeout,
per-listener settings, and the warning for a plain listener reachable from the
network.

Certificates come from tests/data/make_certs.sh, generated once per class into
a temporary directory. The harness listener (`listener PORT 127.0.0.1`) is the
one the per-listener TLS options in CONFIG apply to.
"""
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import time
import unittest

import moattest
from moattest import Broker, BrokerTest, Closed
from tlstest import TlsPeer, client_ctx, make_certs, sign_client, tls_refused

START_TIMEOUT_S = 10


def setUpModule():
    if moattest.is_mosquitto():
        raise unittest.SkipTest(
            "these check moatd's messages, audit log and reload; and mosquitto, run as "
            "root, becomes user mosquitto, which cannot read the 0700 certificate dirs")


def wait_for_log(broker, text, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in broker.log():
            return
        time.sleep(0.05)
    raise AssertionError("%r not in the broker log:\n%s" % (text, broker.log()[-4000:]))


class CertsTest(BrokerTest):
    """BrokerTest with a class-wide certificate directory (self.certs) and TLS
    peers: peer()/client() connect with client_ctx(certs, PEER_CERT)."""

    PEER_CERT = None
    TLS_CONFIG = ""

    @classmethod
    def setUpClass(cls):
        cls.certs = make_certs()
        cls.CONFIG = cls.TLS_CONFIG.replace("@", cls.certs + "/")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.certs, ignore_errors=True)

    def ctx(self, cert=None, version=None):
        return client_ctx(self.certs, cert, version)

    def peer(self, version=5, ctx=None, **kw):
        p = TlsPeer(self.port, ctx or self.ctx(self.PEER_CERT), version=version, **kw)
        self.peers.append(p)
        return p


class TlsVersions(CertsTest):
    """A TLS listener with the default tls_version (minimum TLS 1.2)."""

    TLS_CONFIG = "certfile @server.crt\nkeyfile @server.key\n"

    def round_trip(self, version):
        p = self.peer(ctx=self.ctx(version=version))
        self.assertEqual(p.connect("v-" + version.name).rc, 0)
        p.subscribe("tls/v", qos=1)
        q = self.peer(ctx=self.ctx(version=version))
        q.connect("pub-" + version.name)
        q.publish("tls/v", b"over " + version.name.encode(), qos=1)
        self.assertEqual(p.expect_publish().payload, b"over " + version.name.encode())
        return p

    def test_tls12_accepted(self):
        p = self.round_trip(ssl.TLSVersion.TLSv1_2)
        self.assertEqual(p.tls_version(), "TLSv1.2")
        cipher = p.sock.cipher()[0]
        self.assertTrue("GCM" in cipher or "CHACHA20" in cipher, cipher)

    def test_tls13_accepted(self):
        p = self.round_trip(ssl.TLSVersion.TLSv1_3)
        self.assertEqual(p.tls_version(), "TLSv1.3")

    config_for_test_large_messages_to_slow_reader = "max_inflight_messages 100\n"

    def test_large_messages_to_slow_reader(self):
        """60 QoS 1 messages of 100 kB to a subscriber that is not reading yet (6 MB
        due at once, over loopback's 4 MB send buffer): all arrive intact once it
        reads (TLS writes that hit a full socket are retried whole)."""
        sub = self.peer()
        sub.connect("slow-sub")
        sub.subscribe("bulk/t", qos=1)
        pub = self.peer()
        pub.connect("bulk-pub")
        sent = [os.urandom(100000) for _ in range(60)]
        for payload in sent:
            pub.publish("bulk/t", payload, qos=1)
        time.sleep(0.3)
        for i, want in enumerate(sent):
            got = sub.expect_publish(timeout=8).payload
            self.assertTrue(got == want, "message %d differs" % i)

    def test_shutdown_sends_disconnect_0x8b_over_tls(self):
        p = self.client("at-shutdown")
        self.broker.proc.send_signal(signal.SIGTERM)
        p.expect_closed(timeout=5, disconnect_rc=0x8B)
        self.broker.proc.wait(timeout=10)   # one SIGTERM only: exit 0 checked below
        self.broker.stop(check=True)

    def test_openssl_s_client_tls12_and_tls13(self):
        for flag, proto in (("-tls1_2", "TLSv1.2"), ("-tls1_3", "TLSv1.3")):
            with self.subTest(flag=flag):
                out = subprocess.run(
                    ["openssl", "s_client", "-connect", "127.0.0.1:%d" % self.port, flag,
                     "-CAfile", os.path.join(self.certs, "ca.crt"), "-verify_return_error"],
                    stdin=subprocess.DEVNULL, capture_output=True, timeout=START_TIMEOUT_S)
                text = out.stdout.decode("utf-8", "replace")
                self.assertEqual(out.returncode, 0, text + out.stderr.decode())
                self.assertIn("New, %s, Cipher is" % proto, text)
                self.assertIn("Verify return code: 0 (ok)", text)

    def test_client_renegotiation_refused(self):
        """TLS 1.2 client-initiated renegotiation (s_client's "R") is refused with
        a no_renegotiation alert; the broker keeps serving."""
        proc = subprocess.Popen(
            ["openssl", "s_client", "-connect", "127.0.0.1:%d" % self.port, "-tls1_2",
             "-CAfile", os.path.join(self.certs, "ca.crt")],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        try:
            time.sleep(0.5)
            proc.stdin.write(b"R\n")
            proc.stdin.flush()
            time.sleep(0.5)
            out = proc.communicate(timeout=START_TIMEOUT_S)[0].decode("utf-8", "replace")
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
        self.assertIn("RENEGOTIATING", out)
        self.assertIn("no renegotiation", out)
        self.assert_serves()

    def test_tls11_refused(self):
        # SECLEVEL=0 so that the client itself is willing to speak TLS 1.1: the
        # refusal must come from the broker (alert 70, protocol version).
        out = subprocess.run(
            ["openssl", "s_client", "-connect", "127.0.0.1:%d" % self.port, "-tls1_1",
             "-cipher", "DEFAULT:@SECLEVEL=0"],
            stdin=subprocess.DEVNULL, capture_output=True, timeout=START_TIMEOUT_S)
        text = (out.stdout + out.stderr).decode("utf-8", "replace")
        self.assertNotEqual(out.returncode, 0, text)
        self.assertIn("alert protocol version", text)
        self.assertNotIn("Cipher is ECDHE", text)
        self.assert_serves()

    @unittest.skipUnless(getattr(ssl, "HAS_SSLv3", False),
                         "this OpenSSL has no SSLv3 client; see test_tls_version_*_refused")
    def test_sslv3_client_refused(self):
        """SSLv3 is compiled out of Debian's OpenSSL: the tls_version sslv3 and
        tlsv1.1 start-up refusals (StartupFiles) stand for it. When the client
        has it, the broker must refuse it."""
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
        ctx.minimum_version = ctx.maximum_version = ssl.TLSVersion.SSLv3
        self.assertIsNotNone(tls_refused(self.port, ctx))

    def test_plain_mqtt_on_tls_listener_gets_no_connack(self):
        p = moattest.Peer(self.port)
        self.peers.append(p)
        p.send(p.connect_bytes("plain"))
        got = b""
        deadline = time.monotonic() + moattest.READ_TIMEOUT_S
        try:
            while True:
                p._fill(deadline)
        except Closed:
            pass
        got = p.buf
        # at most a TLS alert record (content type 0x15), never a CONNACK (0x20)
        self.assertFalse(got.startswith(b"\x20"), got)
        if got:
            self.assertEqual(got[0], 0x15, got)
        self.assert_serves()


class MixedListeners(CertsTest):
    """Per-listener settings: the harness's plain listener, a TLS listener and a
    WebSocket listener in one broker; TLS options stay on their own listener."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.tls_port, cls.ws_port = moattest.free_port(), moattest.free_port()
        cls.CONFIG = ("listener {1} 127.0.0.1\ncertfile {0}/server.crt\nkeyfile {0}/server.key\n"
                      "listener {2} 127.0.0.1\nprotocol websockets\n"
                      .format(cls.certs, cls.tls_port, cls.ws_port))

    def test_each_listener_speaks_its_own_protocol(self):
        plain = moattest.Peer(self.port)
        self.peers.append(plain)
        plain.connect("plain")
        plain.subscribe("mix/#", qos=1)
        t = TlsPeer(self.tls_port, self.ctx())
        self.peers.append(t)
        t.connect("tls")
        t.publish("mix/tls", b"from tls", qos=1)
        self.assertEqual(plain.expect_publish().payload, b"from tls")
        # the WebSocket listener answers an HTTP upgrade, not TLS
        ws = socket.create_connection(("127.0.0.1", self.ws_port), timeout=3)
        try:
            ws.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                       b"Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
                       b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                       b"Sec-WebSocket-Protocol: mqtt\r\n\r\n")
            self.assertTrue(ws.recv(4096).startswith(b"HTTP/1.1 101"))
        finally:
            ws.close()
        # and the plain listener is not TLS
        self.assertRaises((ssl.SSLError, ConnectionResetError, OSError),
                          TlsPeer, self.port, self.ctx(), timeout=2)
        log = self.broker.log()
        self.assertIn("listening on 127.0.0.1:%d (TLS, MQTT)" % self.tls_port, log)
        self.assertIn("listening on 127.0.0.1:%d (WebSocket)" % self.ws_port, log)


class Tls13Suites(CertsTest):
    TLS_CONFIG = ("certfile @server.crt\nkeyfile @server.key\n"
                  "ciphers_tls1.3 TLS_CHACHA20_POLY1305_SHA256\n")

    def test_ciphers_tls13_restricts_the_suite(self):
        p = self.peer(ctx=self.ctx(version=ssl.TLSVersion.TLSv1_3))
        p.connect("chacha")
        self.assertEqual(p.sock.cipher()[0], "TLS_CHACHA20_POLY1305_SHA256")


class CaPath(CertsTest):
    """capath (a hashed CA directory, `openssl rehash`) instead of cafile."""

    PEER_CERT = "client"
    TLS_CONFIG = ("certfile @server.crt\nkeyfile @server.key\ncapath @cadir\n"
                  "require_certificate true\nuse_identity_as_username true\n")

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cadir = os.path.join(cls.certs, "cadir")
        os.mkdir(cadir)
        shutil.copy(os.path.join(cls.certs, "ca.crt"), cadir)
        subprocess.run(["openssl", "rehash", cadir], check=True, capture_output=True,
                       timeout=30)

    def test_capath_verifies_clients(self):
        self.client("capath-good").disconnect()
        self.assertIsNotNone(tls_refused(self.port, self.ctx("wrong")))
        self.assertIsNotNone(tls_refused(self.port, self.ctx(None)))


class Tls13Only(CertsTest):
    TLS_CONFIG = "certfile @server.crt\nkeyfile @server.key\ntls_version tlsv1.3\n"

    def test_tls_version_tlsv13_refuses_tls12(self):
        why = tls_refused(self.port, self.ctx(version=ssl.TLSVersion.TLSv1_2))
        self.assertIsNotNone(why, "TLS 1.2 accepted by a tlsv1.3 listener")
        p = self.peer(ctx=self.ctx(version=ssl.TLSVersion.TLSv1_3))
        p.connect("v13")
        self.assertEqual(p.tls_version(), "TLSv1.3")


MTLS = ("certfile @server.crt\nkeyfile @server.key\ncafile @ca.crt\ncrlfile @crl.pem\n"
        "require_certificate true\nuse_identity_as_username true\n")


class MutualTlsAcl(CertsTest):
    """require_certificate + use_identity_as_username + crlfile, with an ACL that
    grants only user client1 (the good certificate's CN) its topics."""

    PEER_CERT = "client"
    TLS_CONFIG = MTLS + "acl_file @acl\naudit_log file @audit.log\n"

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        with open(os.path.join(cls.certs, "acl"), "w") as f:
            f.write("user client1\ntopic readwrite c1/#\ntopic readwrite fresh/#\n")

    def setUp(self):
        audit = os.path.join(self.certs, "audit.log")
        if os.path.exists(audit):
            os.unlink(audit)
        super().setUp()

    def audit_lines(self):
        with open(os.path.join(self.certs, "audit.log")) as f:
            return [json.loads(line) for line in f if line.strip()]

    def test_good_certificate_cn_is_username(self):
        # the username in CONNECT is ignored: the certificate names the user
        p = self.client("good", username="mallory")
        self.assertEqual(p.subscribe("c1/#", qos=1), [1])
        self.assertEqual(p.subscribe("other/#", qos=1), [0x87])
        q = self.client("good-pub")
        q.publish("c1/x", b"mine", qos=1)
        self.assertEqual(p.expect_publish().payload, b"mine")
        q.disconnect()
        p.disconnect()
        auth = [e for e in self.audit_lines() if e.get("event") == "auth"]
        self.assertTrue(auth, self.audit_lines())
        self.assertEqual(auth[0].get("username"), "client1", auth)
        self.assertEqual(auth[0].get("method"), "certificate", auth)
        self.assertEqual(auth[0].get("client_id"), "good", auth)
        self.assertNotIn("mallory", json.dumps(self.audit_lines()))

    def test_wildcard_or_slash_in_cn_refused_with_acl(self):
        """CN "evil/+x" would break %u/%c substitution: refused at CONNECT (0x86)."""
        sign_client(self.certs, "evil", "evil/+x")
        p = self.peer(ctx=self.ctx("evil"))
        p.connect("evil", expect_rc=0x86)
        p.expect_closed()
        deny = [e for e in self.audit_lines() if e.get("result") == "deny"]
        self.assertTrue(deny, self.audit_lines())
        self.assertEqual(deny[0].get("method"), "certificate")
        self.assert_serves()

    def check_refused(self, cert, alert, logged):
        """<cert> is refused with TLS alert <alert> (as the client reports it) and
        the broker logs "<logged>, closing"; it keeps serving the good cert."""
        why = tls_refused(self.port, self.ctx(cert))
        self.assertIsNotNone(why, "%s: CONNACK received" % cert)
        self.assertIn(alert, why.lower())
        wait_for_log(self.broker, "%s, closing" % logged)
        self.assert_serves()

    def test_no_certificate_refused(self):
        self.check_refused(None, "certificate required", "no client certificate")

    def test_wrong_ca_certificate_refused(self):
        self.check_refused("wrong", "unknown ca", "unknown CA")

    def test_expired_certificate_refused(self):
        self.check_refused("expired", "certificate expired", "certificate expired")

    def test_revoked_certificate_refused(self):
        self.check_refused("revoked", "certificate revoked", "certificate revoked")

    def test_refused_certificate_is_audited(self):
        """audit.h: "one JSON object per line for every authentication decision";
        a client certificate refused in the handshake is one."""
        self.assertIsNotNone(tls_refused(self.port, self.ctx("revoked")))
        wait_for_log(self.broker, "certificate revoked, closing")
        deny = [e for e in self.audit_lines() if e.get("result") == "deny"]
        self.assertTrue(deny, "no deny line in the audit log: %r" % self.audit_lines())
        self.assertIn("revoked", deny[0].get("reason", ""))

    def test_refusals_are_handshake_failures_on_tls12(self):
        """On TLS 1.2 the client sees the refusal in the handshake itself."""
        for cert in (None, "wrong", "expired", "revoked"):
            with self.subTest(cert=cert):
                why = tls_refused(self.port, self.ctx(cert, ssl.TLSVersion.TLSv1_2))
                self.assertIsNotNone(why)
                self.assertTrue(why.startswith("handshake"), why)
        self.assert_serves()


class MutualTlsNoAcl(CertsTest):
    """use_identity_as_username without an ACL: the audit log names client1."""

    PEER_CERT = "client"
    TLS_CONFIG = MTLS + "audit_log file @audit-noacl.log\n"

    def test_identity_in_audit_log(self):
        p = self.client("noacl")
        p.subscribe("any/topic", qos=1)
        p.disconnect()
        with open(os.path.join(self.certs, "audit-noacl.log")) as f:
            text = f.read()
        self.assertIn('"username":"client1"', text)
        self.assertIn('"method":"certificate"', text)

    def test_revoked_refused_without_acl(self):
        self.assertIsNotNone(tls_refused(self.port, self.ctx("revoked")))
        self.assert_serves()


class SubjectAsUsername(CertsTest):
    """use_subject_as_username: the whole subject, RFC 2253 as mosquitto prints it
    (`openssl x509 -subject -nameopt RFC2253`), is the username."""

    PEER_CERT = "client"
    TLS_CONFIG = ("certfile @server.crt\nkeyfile @server.key\ncafile @ca.crt\n"
                  "require_certificate true\nuse_subject_as_username true\n"
                  "audit_log file @audit-subject.log\n")

    def test_subject_is_username(self):
        self.client("subj").disconnect()
        with open(os.path.join(self.certs, "audit-subject.log")) as f:
            auth = [json.loads(line) for line in f if '"event":"auth"' in line]
        want = subprocess.run(["openssl", "x509", "-in", os.path.join(self.certs, "client.crt"),
                               "-noout", "-subject", "-nameopt", "RFC2253"],
                              capture_output=True, text=True, check=True).stdout
        self.assertEqual(want.strip(), "subject=O=Moat Test,CN=client1")
        self.assertEqual(auth[-1].get("username"), "O=Moat Test,CN=client1", auth)


class CrlReload(CertsTest):
    """SIGHUP re-reads crlfile: a certificate revoked since start-up is refused on
    new connections; the connection it already has is not dropped."""

    PEER_CERT = "client"
    TLS_CONFIG = MTLS

    def test_sighup_reloads_crl(self):
        a = self.client("soon-revoked")
        a.subscribe("crl/#", qos=1)
        cnf = os.path.join(self.certs, "ca.cnf")
        for args in (["-revoke", os.path.join(self.certs, "client.crt")],
                     ["-gencrl", "-out", os.path.join(self.certs, "crl.pem.tmp")]):
            subprocess.run(["openssl", "ca", "-config", cnf] + args, check=True,
                           capture_output=True, timeout=30)
        os.replace(os.path.join(self.certs, "crl.pem.tmp"), os.path.join(self.certs, "crl.pem"))
        self.broker.proc.send_signal(signal.SIGHUP)
        wait_for_log(self.broker, "certificates, key and CRL reloaded")
        why = tls_refused(self.port, self.ctx("client"))
        self.assertIsNotNone(why, "a certificate revoked by the reloaded CRL was accepted")
        a.ping()
        a.send(a.publish_bytes("crl/x", b"still here", qos=1, pid=77))
        got = sorted([a.recv(), a.recv()], key=lambda p: p.type)   # in either order
        self.assertEqual((got[0].type, got[0].payload), (moattest.PUBLISH, b"still here"))
        self.assertEqual((got[1].type, got[1].pid), (moattest.PUBACK, 77))


class TlsHandshakeTimeout(CertsTest):
    """A client that never finishes the TLS handshake is closed by connect_timeout."""

    TLS_CONFIG = "certfile @server.crt\nkeyfile @server.key\nconnect_timeout 1\n"

    def closed_within(self, first_bytes, limit_s):
        sk = socket.create_connection(("127.0.0.1", self.port), timeout=limit_s)
        try:
            if first_bytes:
                sk.sendall(first_bytes)
            start = time.monotonic()
            try:
                while sk.recv(4096):
                    pass
            except socket.timeout:
                self.fail("still open after %.1f s" % limit_s)
            except ConnectionResetError:
                pass
            return time.monotonic() - start
        finally:
            sk.close()

    def test_silent_tcp_client_closed(self):
        self.assertLess(self.closed_within(b"", 4.0), 4.0)

    def test_partial_client_hello_closed(self):
        # a TLS record header announcing 512 bytes of ClientHello, then nothing
        self.assertLess(self.closed_within(b"\x16\x03\x01\x02\x00\x01", 4.0), 4.0)
        self.assert_serves()

    def peer(self, version=5, ctx=None, **kw):
        return super().peer(version, ctx or client_ctx(self.certs), **kw)


class CertificateLoginWithoutAnonymous(CertsTest):
    """allow_anonymous false: certificate users still log in; on a second, plain
    listener of the same broker an anonymous client is refused."""

    ALLOW_ANONYMOUS = False
    PEER_CERT = "client"

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.plain_port = moattest.free_port()
        cls.CONFIG = MTLS.replace("@", cls.certs + "/") + \
            "listener %d 127.0.0.1\nauth_fail_delay_max 200\n" % cls.plain_port

    def test_certificate_user_in_anonymous_refused(self):
        p = self.client("cert-user")
        p.subscribe("cl/#", qos=1)
        anon = moattest.Peer(self.plain_port)
        self.peers.append(anon)
        self.assertIn(anon.connect("anon", expect_rc=None).rc, (0x87, 0x86))
        anon.expect_closed()
        p.ping()


class SighupReload(BrokerTest):
    """SIGHUP re-reads certfile/keyfile: new connections get the new certificate,
    an existing one keeps working."""

    @classmethod
    def setUpClass(cls):
        cls.old, cls.new = make_certs(), make_certs()
        cls.live = os.path.join(cls.old, "live")
        os.mkdir(cls.live)
        cls.CONFIG = "certfile %s/server.crt\nkeyfile %s/server.key\nthreads 4\n" % (
            cls.live, cls.live)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.old, ignore_errors=True)
        shutil.rmtree(cls.new, ignore_errors=True)

    def install(self, src):
        for name in ("server.crt", "server.key"):
            shutil.copy(os.path.join(src, name), os.path.join(self.live, name + ".tmp"))
            os.replace(os.path.join(self.live, name + ".tmp"), os.path.join(self.live, name))

    def setUp(self):
        self.install(self.old)
        super().setUp()

    def peer(self, version=5, **kw):
        p = TlsPeer(self.port, client_ctx(self.old, verify=False), version=version, **kw)
        self.peers.append(p)
        return p

    def der(self, d):
        with open(os.path.join(d, "server.crt")) as f:
            return ssl.PEM_cert_to_DER_cert(f.read())

    def test_sighup_new_cert_for_new_connections_old_kept(self):
        a = self.client("before")
        a.subscribe("hup/#", qos=1)
        self.assertEqual(a.server_cert_der(), self.der(self.old))
        self.install(self.new)
        self.broker.proc.send_signal(signal.SIGHUP)
        wait_for_log(self.broker, "certificates, key and CRL reloaded")
        b = self.client("after")
        self.assertEqual(b.server_cert_der(), self.der(self.new))
        for i in range(8):      # whichever of the 4 workers takes the connection
            n = self.client("after-%d" % i)
            self.assertEqual(n.server_cert_der(), self.der(self.new), i)
        # verified against the new CA, hostname included
        c = TlsPeer(self.port, client_ctx(self.new))
        self.peers.append(c)
        c.connect("after-verified")
        # the connection made before the reload still works both ways
        a.ping()
        b.publish("hup/1", b"after reload", qos=1)
        self.assertEqual(a.expect_publish().payload, b"after reload")
        b.subscribe("hup2/#", qos=1)
        a.publish("hup2/x", b"from old conn", qos=1)
        self.assertEqual(b.expect_publish().payload, b"from old conn")

    def test_rapid_sighups_do_not_kill_the_broker(self):
        """SIGHUPs arriving while a reload runs (logrotate plus a deploy, say)
        must queue or merge, never take the default action (terminate)."""
        a = self.client("hup-storm")
        for _ in range(50):
            if not self.broker.alive():
                break
            self.broker.proc.send_signal(signal.SIGHUP)
            time.sleep(0.002)
        time.sleep(0.3)
        self.assertTrue(self.broker.alive(), "broker died (exit %s) after repeated SIGHUP:\n%s"
                        % (self.broker.proc.poll(), self.broker.log()[-2000:]))
        a.ping()
        self.client("after-storm").ping()

    def test_sighup_with_mismatched_key_keeps_old_cert(self):
        a = self.client("keep-mismatch")
        shutil.copy(os.path.join(self.new, "server.crt"), os.path.join(self.live, "server.crt"))
        self.broker.proc.send_signal(signal.SIGHUP)
        wait_for_log(self.broker, "TLS reload failed")
        self.assertIn("does not match", self.broker.log())
        a.ping()
        self.assertEqual(self.client("still-old-2").server_cert_der(), self.der(self.old))

    def test_sighup_with_broken_key_keeps_old_cert(self):
        a = self.client("keep")
        with open(os.path.join(self.live, "server.key"), "w") as f:
            f.write("")
        self.broker.proc.send_signal(signal.SIGHUP)
        wait_for_log(self.broker, "TLS reload failed")
        self.assertIn("server.key", self.broker.log())
        a.ping()
        b = self.client("still-old")
        self.assertEqual(b.server_cert_der(), self.der(self.old))


class SighupCaReload(SighupReload):
    """SIGHUP re-reads cafile too: after the CA changes, clients of the new CA
    are accepted on new connections and those of the old CA refused."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.CONFIG = ("certfile {0}/server.crt\nkeyfile {0}/server.key\ncafile {0}/ca.crt\n"
                      "require_certificate true\nuse_identity_as_username true\n"
                      .format(cls.live))

    def install(self, src):
        super().install(src)
        shutil.copy(os.path.join(src, "ca.crt"), os.path.join(self.live, "ca.tmp"))
        os.replace(os.path.join(self.live, "ca.tmp"), os.path.join(self.live, "ca.crt"))

    def peer(self, version=5, **kw):
        p = TlsPeer(self.port, client_ctx(self.old, "client"), version=version, **kw)
        self.peers.append(p)
        return p

    def test_sighup_new_cert_for_new_connections_old_kept(self):
        pass    # SighupReload's; here the old client certificate stops working

    def test_sighup_reloads_cafile(self):
        a = self.client("old-ca-client")
        self.assertIsNotNone(tls_refused(self.port, client_ctx(self.old, "wrong")))
        self.install(self.new)
        self.broker.proc.send_signal(signal.SIGHUP)
        wait_for_log(self.broker, "certificates, key and CRL reloaded")
        n = TlsPeer(self.port, client_ctx(self.new, "client"))
        self.peers.append(n)
        n.connect("new-ca-client")
        why = tls_refused(self.port, client_ctx(self.new, "wrong"))
        self.assertIsNotNone(why)
        old_client = client_ctx(self.old, "client")
        old_client.check_hostname, old_client.verify_mode = False, ssl.CERT_NONE
        self.assertIsNotNone(tls_refused(self.port, old_client),
                             "a client of the replaced CA was accepted after reload")
        a.ping()


class StartupFiles(unittest.TestCase):
    """Bad TLS files or settings stop start-up with exit 1 and a message naming
    the file (or option)."""

    @classmethod
    def setUpClass(cls):
        if moattest.is_mosquitto():
            raise unittest.SkipTest("moatd's start-up messages")
        cls.certs = make_certs()
        cls.empty = os.path.join(cls.certs, "empty.pem")
        open(cls.empty, "w").close()
        cls.junk = os.path.join(cls.certs, "junk.pem")
        with open(cls.junk, "w") as f:
            f.write("this is not PEM\n")
        cls.missing = os.path.join(cls.certs, "missing.pem")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.certs, ignore_errors=True)

    def setUp(self):
        name = self._testMethodName
        if name in moattest.PENDING and not os.environ.get("MOAT_TEST_PENDING"):
            self.skipTest("PENDING: " + moattest.PENDING[name])

    def c(self, name):
        return os.path.join(self.certs, name)

    def refused(self, config, *needles):
        b = Broker(config)
        try:
            b.start(wait=False)
            try:
                code = b.proc.wait(timeout=START_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                b.stop(check=False)
                self.fail("broker started with:\n%s" % config)
            log = b.log()
            b.stop(check=False)
            self.assertEqual(code, 1, log)
            for n in needles:
                self.assertIn(n, log)
            self.assertNotIn("AddressSanitizer", log)
            return log
        finally:
            b.cleanup()

    def tls(self, cert=None, key=None, ca=None, extra=""):
        return "certfile %s\nkeyfile %s\n%s%s" % (
            cert or self.c("server.crt"), key or self.c("server.key"),
            "cafile %s\nrequire_certificate true\n" % ca if ca else "", extra)

    def test_missing_cafile(self):
        self.refused(self.tls(ca=self.missing), "cafile", self.missing)

    def test_empty_cafile(self):
        self.refused(self.tls(ca=self.empty), "cafile", self.empty)

    def test_junk_cafile(self):
        self.refused(self.tls(ca=self.junk), "cafile", self.junk)

    def test_missing_certfile(self):
        self.refused(self.tls(cert=self.missing), "certfile", self.missing)

    def test_empty_certfile(self):
        self.refused(self.tls(cert=self.empty), "certfile", self.empty)

    def test_junk_certfile(self):
        self.refused(self.tls(cert=self.junk), "certfile", self.junk)

    def test_directory_as_certfile(self):
        self.refused(self.tls(cert=self.certs), "certfile", self.certs)

    def test_missing_keyfile(self):
        self.refused(self.tls(key=self.missing), "keyfile", self.missing)

    def test_empty_keyfile(self):
        self.refused(self.tls(key=self.empty), "keyfile", self.empty)

    def test_mismatched_keyfile(self):
        self.refused(self.tls(key=self.c("client.key")), "keyfile", self.c("client.key"))

    def test_missing_crlfile(self):
        self.refused(self.tls(ca=self.c("ca.crt"), extra="crlfile %s\n" % self.missing),
                     "crlfile", self.missing)

    def test_keyfile_without_certfile(self):
        self.refused("keyfile %s\n" % self.c("server.key"), "certfile")

    def test_tls_version_tlsv11_refused(self):
        self.refused(self.tls(extra="tls_version tlsv1.1\n"), "tls_version")

    def test_tls_version_sslv3_refused(self):
        self.refused(self.tls(extra="tls_version sslv3\n"), "tls_version")

    def test_tls_version_tlsv1_refused(self):
        self.refused(self.tls(extra="tls_version tlsv1\n"), "tls_version")

    def test_non_aead_ciphers_refused(self):
        for ciphers in ("ECDHE-ECDSA-AES128-SHA256", "ECDHE-ECDSA-AES128-SHA",
                        "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-SHA384",
                        "AES128-SHA"):
            with self.subTest(ciphers=ciphers):
                self.refused(self.tls(extra="ciphers %s\n" % ciphers), "ciphers")

    def test_bad_ciphers_tls13_refused_naming_the_option(self):
        log = self.refused(self.tls(extra="ciphers_tls1.3 TLS_NOT_A_SUITE\n"), "TLS_NOT_A_SUITE")
        self.assertIn("ciphers_tls1.3", log)

    def test_missing_capath(self):
        self.refused(self.tls(extra="capath %s\nrequire_certificate true\n" % self.missing),
                     "capath", self.missing)

    def test_aead_ciphers_accepted(self):
        """The control: an AEAD-only list starts, and serves TLS 1.2 with it."""
        b = Broker(self.tls(extra="ciphers ECDHE-ECDSA-AES256-GCM-SHA384\n"))
        try:
            b.start()
            p = TlsPeer(b.port, client_ctx(self.certs, version=ssl.TLSVersion.TLSv1_2))
            try:
                p.connect("aead")
                self.assertEqual(p.sock.cipher()[0], "ECDHE-ECDSA-AES256-GCM-SHA384")
            finally:
                p.close()
            b.stop(check=True)
        finally:
            b.cleanup()


class PlainListenerWarning(unittest.TestCase):
    WARNING = "plain TCP and reachable from the network"

    def started_log(self, address, config=""):
        port = moattest.free_port()
        b = Broker("listener %d %s\n%s" % (port, address, config), port=port,
                   with_listener=False)
        try:
            b.start()
            time.sleep(0.2)
            log = b.log()
            b.stop(check=True)
            return log
        finally:
            b.cleanup()

    def test_plain_listener_on_all_addresses_warns(self):
        if moattest.is_mosquitto():
            self.skipTest("moatd's warning")
        log = self.started_log("0.0.0.0")
        self.assertIn(self.WARNING, log)

    def test_plain_listener_without_address_warns(self):
        if moattest.is_mosquitto():
            self.skipTest("moatd's warning")
        self.assertIn(self.WARNING, self.started_log(""))

    def test_plain_listener_on_loopback_does_not_warn(self):
        log = self.started_log("127.0.0.1")
        self.assertIn("listening on 127.0.0.1", log)
        self.assertNotIn(self.WARNING, log)

    def test_tls_listener_on_all_addresses_does_not_warn(self):
        certs = make_certs()
        try:
            log = self.started_log("0.0.0.0", "certfile %s/server.crt\nkeyfile %s/server.key\n"
                                   % (certs, certs))
        finally:
            shutil.rmtree(certs, ignore_errors=True)
        self.assertIn("TLS", log)
        self.assertNotIn(self.WARNING, log)


if __name__ == "__main__":
    moattest.main()
