"""Interop over TLS and WebSockets: Debian's mosquitto_pub / mosquitto_sub with
client certificates (mTLS) and with a password file written by Debian's
mosquitto_passwd, and MQTT.js (mqttjs_ws_test.js) over ws:// and wss://.

Certificates come from tests/data/make_certs.sh, once per class. Each test's
broker config is the class CONFIG plus config_for_<test>, with "@" standing
for the certificate directory; the TLS options apply to the harness listener.
"""
import os
import shutil
import subprocess
import sys
import unittest

import interop

sys.path.insert(0, os.path.join(interop.HERE, "..", "integration"))
import moattest  # noqa: E402
import tlstest  # noqa: E402

PUB = "/usr/bin/mosquitto_pub"
PASSWD = "/usr/bin/mosquitto_passwd"
WS_SCRIPT = os.path.join(interop.HERE, "mqttjs_ws_test.js")
MQTT_JS = os.path.join(interop.HERE, "node_modules", "mqtt", "package.json")

SERVER = "certfile @server.crt\nkeyfile @server.key\n"
MTLS = (SERVER + "cafile @ca.crt\ncrlfile @crl.pem\nrequire_certificate true\n"
        "use_identity_as_username true\n")


class CertsInteropTest(interop.InteropTest):
    CONFIG = ""
    ALLOW_ANONYMOUS = True

    @classmethod
    def setUpClass(cls):
        cls.certs = tlstest.make_certs()

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.certs, ignore_errors=True)

    def c(self, name):
        return os.path.join(self.certs, name)

    def setUp(self):
        if not os.environ.get("MOATD"):
            self.fail("MOATD is not set (path to moatd); run through ctest")
        config = self.CONFIG + getattr(self, "config_for_" + self._testMethodName, "")
        self.use_brokers([moattest.Broker(config.replace("@", self.certs + "/"),
                                          allow_anonymous=self.ALLOW_ANONYMOUS)])

    def tls_peer(self, cert="client"):
        p = tlstest.TlsPeer(self.port, tlstest.client_ctx(self.certs, cert))
        self.peers.append(p)
        p.connect("")
        return p

    def fails(self, argv, timeout=interop.WAIT_S):
        """Runs argv (bounded); asserts a non-zero exit; returns stdout+stderr."""
        p = self.spawn(argv)
        try:
            out, err = p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            out, err = p.communicate()
            self.fail("%s did not finish: %r %r" % (argv, out, err))
        self.assertNotEqual(p.returncode, 0, "%s succeeded: %r" % (argv, out))
        return (out + err).decode("utf-8", "replace")


class MosquittoClientsTls(CertsInteropTest):
    CONFIG = MTLS + "acl_file @acl\n"

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        with open(os.path.join(cls.certs, "acl"), "w") as f:
            f.write("user client1\ntopic readwrite mt/#\n")

    def tls_args(self, cert="client"):
        args = ["--cafile", self.c("ca.crt")]
        if cert is not None:
            args += ["--cert", self.c(cert + ".crt"), "--key", self.c(cert + ".key")]
        return args

    def pub(self, version, cert="client", *args):
        return [PUB, "-h", "127.0.0.1", "-p", str(self.port), "-V", version] + \
            self.tls_args(cert) + list(args)

    def test_mtls_pub_and_sub(self):
        """mosquitto_pub/sub with --cafile/--cert/--key: CN client1 is the user the
        ACL grants mt/#."""
        for version in ("mqttv311", "mqttv5"):
            with self.subTest(version=version):
                topic = "mt/" + version
                sub = self.mosquitto_sub(version, *self.tls_args(), "-q", "1", "-t", topic,
                                         "-C", "1", "-W", "10", "-F", "%t|%q|%p")
                self.run_ok(self.pub(version, "client", "-q", "1", "-t", topic, "-m", "mtls"))
                self.assertEqual(self.mosquitto_output(sub), ["%s|1|mtls" % topic])

    def test_mtls_acl_applies_to_certificate_user(self):
        """Outside mt/# the certificate user is refused: SUBACK failure for v5."""
        sub = self.spawn(["stdbuf", "-oL", interop.MOSQUITTO_SUB, "-h", "127.0.0.1", "-p",
                          str(self.port), "-V", "mqttv5", "-d", "-t", "other/t", "-C", "1",
                          "-W", "3"] + self.tls_args())
        out, _ = sub.communicate(timeout=interop.WAIT_S)
        text = out.decode("utf-8", "replace")
        self.assertIn("received SUBACK", text)
        self.assertIn("Subscribed (mid: 1): 135", text)

    def test_mtls_refuses_missing_wrong_expired_revoked(self):
        for cert in (None, "wrong", "expired", "revoked"):
            with self.subTest(cert=cert):
                self.fails(self.pub("mqttv311", cert, "-t", "mt/x", "-m", "no"))
        p = self.tls_peer()
        p.subscribe("mt/#", qos=1)
        p.expect_nothing(timeout=0.5)    # none of the refused clients published


class MosquittoPasswdOverTls(CertsInteropTest):
    """Server-only TLS and a password file from Debian's mosquitto_passwd."""

    ALLOW_ANONYMOUS = False
    CONFIG = SERVER + "password_file @passwd\nauth_fail_delay_max 200\n"

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        path = os.path.join(cls.certs, "passwd")
        subprocess.run([PASSWD, "-c", "-b", path, "alice", "s3cret pass"], check=True,
                       timeout=30, capture_output=True)
        subprocess.run([PASSWD, "-b", path, "bob", "other"], check=True, timeout=30,
                       capture_output=True)

    def cmd(self, version, user, password, *args):
        return [PUB, "-h", "127.0.0.1", "-p", str(self.port), "-V", version, "--cafile",
                self.c("ca.crt"), "-u", user, "-P", password] + list(args)

    def test_password_file_over_tls(self):
        for version in ("mqttv311", "mqttv5"):
            with self.subTest(version=version):
                topic = "pw/" + version
                sub = self.mosquitto_sub(version, "--cafile", self.c("ca.crt"), "-u", "bob",
                                         "-P", "other", "-q", "1", "-t", topic, "-C", "1",
                                         "-W", "10", "-F", "%t|%p")
                self.run_ok(self.cmd(version, "alice", "s3cret pass", "-q", "1", "-t", topic,
                                     "-m", "hashed by mosquitto_passwd"))
                self.assertEqual(self.mosquitto_output(sub),
                                 ["%s|hashed by mosquitto_passwd" % topic])

    def test_wrong_password_and_plain_tcp_refused(self):
        out = self.fails(self.cmd("mqttv5", "alice", "wrong", "-t", "pw/x", "-m", "no"))
        self.assertRegex(out, "(?i)bad user name or password")
        out = self.fails(self.cmd("mqttv311", "alice", "wrong", "-t", "pw/x", "-m", "no"))
        self.assertRegex(out, "(?i)refused|not authori[sz]ed|bad user")
        # the right password without TLS: the listener speaks only TLS
        self.fails([PUB, "-h", "127.0.0.1", "-p", str(self.port), "-u", "alice", "-P",
                    "s3cret pass", "-t", "pw/x", "-m", "no"])


class MqttJsWebSockets(CertsInteropTest):
    CONFIG = "protocol websockets\n"
    config_for_test_wss_pubsub = SERVER
    config_for_test_wss_mtls_pubsub = MTLS
    config_for_test_wss_require_certificate_refuses_no_cert = MTLS

    def setUp(self):
        self.node = shutil.which("node")
        self.assertIsNotNone(self.node, "node is not installed (make deps installs nodejs)")
        self.assertTrue(os.path.exists(MQTT_JS), "MQTT.js is missing: %s not found "
                        "(run `npm ci` in tests/interop, or `make deps`)" % MQTT_JS)
        super().setUp()

    def node_ws(self, mode, scheme, version, cert=None, ok=True):
        env = {}
        if scheme == "wss":
            env["MOAT_CA"] = self.c("ca.crt")
        if cert is not None:
            env["MOAT_CERT"], env["MOAT_KEY"] = self.c(cert + ".crt"), self.c(cert + ".key")
        url = "%s://127.0.0.1:%d" % (scheme, self.port)
        return self.run_ok([self.node, WS_SCRIPT, mode, url, str(version)], env=env)

    def test_ws_pubsub(self):
        for version in (4, 5):
            with self.subTest(version=version):
                self.assertIn("ok pubsub", self.node_ws("pubsub", "ws", version))

    def test_wss_pubsub(self):
        for version in (4, 5):
            with self.subTest(version=version):
                self.assertIn("ok pubsub", self.node_ws("pubsub", "wss", version))

    def test_wss_mtls_pubsub(self):
        for version in (4, 5):
            with self.subTest(version=version):
                self.assertIn("ok pubsub", self.node_ws("pubsub", "wss", version, "client"))

    def test_wss_require_certificate_refuses_no_cert(self):
        for version in (4, 5):
            with self.subTest(version=version):
                self.assertIn("refused", self.node_ws("refused", "wss", version))
        for cert in ("wrong", "revoked"):
            with self.subTest(cert=cert):
                self.assertIn("refused", self.node_ws("refused", "wss", 5, cert))


if __name__ == "__main__":
    unittest.main()
