"""libmoat over mutual TLS, end to end with `moat pub` / `moat sub --cafile --cert --key`.

The harness listener is a TLS listener with require_certificate true (the
certificates of tests/data/make_certs.sh); a second, plain listener lets the
Python collector watch what arrives. A device certificate gets through and a
subscriber receives; a wrong CA is refused by the client with "certificate
verify failed"; a missing or unknown client certificate is refused by the
broker and the client says why; a server certificate that does not name the
host is refused unless --insecure (which still verifies the chain); and QoS 1
messages in a --queue-file survive a broker restart, the client reconnecting
over TLS.
"""
import os
import shutil
import signal
import subprocess
import tempfile
import time
import unittest

import moattest
from moattest import Broker, BrokerTest, Peer
from test_client_queue import Collector
from tlstest import make_certs

COUNT = 200


def setUpModule():
    if moattest.is_mosquitto():
        raise unittest.SkipTest("checks moatd's log; mosquitto (run as root) cannot read "
                                "the 0700 certificate dirs")
    if not os.environ.get("MOAT"):
        raise unittest.SkipTest("MOAT is not set (path to the moat tool)")


def sign_server(certs, name, san):
    """<certs>/<name>.crt/.key: a server certificate for <san> (e.g.
    "DNS:other.example") signed by the test CA."""
    key, csr, ext = (os.path.join(certs, name + e) for e in (".key", ".csr", ".ext"))
    with open(ext, "w") as f:
        f.write("basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n"
                "extendedKeyUsage=serverAuth\nsubjectAltName=%s\n" % san)
    for argv in (["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt",
                  "ec_paramgen_curve:P-256", "-out", key],
                 ["openssl", "req", "-new", "-key", key, "-subj", "/CN=" + name, "-out", csr],
                 ["openssl", "x509", "-req", "-in", csr, "-CA", os.path.join(certs, "ca.crt"),
                  "-CAkey", os.path.join(certs, "ca.key"), "-CAcreateserial", "-days", "30",
                  "-extfile", ext, "-out", os.path.join(certs, name + ".crt")]):
        subprocess.run(argv, check=True, timeout=30, capture_output=True)


def mtls_config(certs, server="server"):
    return ("certfile {0}/{1}.crt\nkeyfile {0}/{1}.key\ncafile {0}/ca.crt\n"
            "require_certificate true\n".format(certs, server))


class ClientTls(BrokerTest):

    @classmethod
    def setUpClass(cls):
        cls.certs = make_certs()
        sign_server(cls.certs, "other", "DNS:other.example")
        cls.plain_port = moattest.free_port()
        cls.CONFIG = mtls_config(cls.certs) + "listener %d 127.0.0.1\n" % cls.plain_port

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.certs, ignore_errors=True)

    def setUp(self):
        super().setUp()
        self.moat = os.environ["MOAT"]
        self.tmp = tempfile.mkdtemp(prefix="moat-ctls-")
        self.procs = []

    def tearDown(self):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        shutil.rmtree(self.tmp, ignore_errors=True)
        super().tearDown()

    def cert(self, name):
        return os.path.join(self.certs, name)

    def tls_args(self, ca="ca.crt", cert="client"):
        args = ["--cafile", self.cert(ca)]
        if cert is not None:
            args += ["--cert", self.cert(cert + ".crt"), "--key", self.cert(cert + ".key")]
        return args

    def pub(self, args, port=None, host="localhost"):
        return subprocess.run([self.moat, "pub", "-h", host, "-p", str(port or self.port)] +
                              args, capture_output=True, text=True, timeout=30)

    def watcher(self, topic="dev/t"):
        """A plain subscriber on the second listener."""
        p = Peer(self.plain_port)
        self.peers.append(p)
        p.connect("watcher")
        p.subscribe(topic, qos=1)
        return p

    def test_mutual_tls_pub_reaches_tls_sub(self):
        out = os.path.join(self.tmp, "sub.out")
        with open(out, "wb") as f:
            sub = subprocess.Popen([self.moat, "sub", "-h", "localhost", "-p", str(self.port),
                                    "-t", "dev/t", "-q", "1", "-C", "1", "-W", "20", "-i", "tls-sub"]
                                   + self.tls_args(), stdout=f, stderr=subprocess.STDOUT)
        self.procs.append(sub)
        # moat sub is connected once the broker routes to it
        deadline = time.monotonic() + 10
        while "tls-sub" not in self.broker.log() and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)  # its SUBSCRIBE follows the CONNECT
        r = self.pub(["-t", "dev/t", "-q", "1", "-m", "over mtls", "-i", "device-1"] +
                     self.tls_args())
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(sub.wait(timeout=20), 0)
        with open(out) as f:
            self.assertEqual(f.read().strip(), "over mtls")

    def test_default_port_with_cafile_is_8883(self):
        r = subprocess.run([self.moat, "pub", "-h", "127.0.0.1", "-t", "x", "-m", "x", "-d"] +
                           self.tls_args(), capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 1)
        self.assertIn("127.0.0.1:8883", r.stderr)

    def test_wrong_ca_refused_with_the_verify_error(self):
        w = self.watcher()
        r = self.pub(["-t", "dev/t", "-m", "x"] + self.tls_args(ca="wrongca.crt"))
        self.assertEqual(r.returncode, 1)
        self.assertIn("certificate verify failed: unknown CA", r.stderr)
        w.expect_nothing()

    def test_broker_refuses_without_a_client_certificate(self):
        w = self.watcher()
        r = self.pub(["-t", "dev/t", "-m", "x"] + self.tls_args(cert=None))
        self.assertEqual(r.returncode, 1)
        self.assertIn("certificate required", r.stderr)
        self.assertIn("no client certificate", self.broker.log())
        r = self.pub(["-t", "dev/t", "-m", "x"] + self.tls_args(cert="wrong"))
        self.assertEqual(r.returncode, 1)
        self.assertIn("unknown ca", r.stderr)
        w.expect_nothing()

    def test_key_not_matching_the_certificate_is_refused_before_connecting(self):
        r = self.pub(["-t", "dev/t", "-m", "x", "--cafile", self.cert("ca.crt"),
                      "--cert", self.cert("client.crt"), "--key", self.cert("wrong.key")])
        self.assertEqual(r.returncode, 1)
        self.assertIn("does not match", r.stderr)

    def test_wrong_host_name_refused_unless_insecure(self):
        other = Broker(mtls_config(self.certs, "other")).start()
        try:
            args = ["-t", "dev/t", "-q", "1", "-m", "insecure ok"] + self.tls_args()
            r = self.pub(args, port=other.port, host="127.0.0.1")
            self.assertEqual(r.returncode, 1)
            self.assertIn("certificate verify failed: IP address mismatch", r.stderr)
            r = self.pub(args, port=other.port, host="localhost")
            self.assertIn("certificate verify failed: hostname mismatch", r.stderr)
            # --insecure skips the name, never the chain
            r = self.pub(args[:-2] + self.tls_args(ca="wrongca.crt") + ["--insecure"],
                         port=other.port, host="127.0.0.1")
            self.assertIn("certificate verify failed: unknown CA", r.stderr)
            r = self.pub(args + ["--insecure"], port=other.port, host="127.0.0.1")
            self.assertEqual(r.returncode, 0, r.stderr)  # QoS 1: acknowledged
        finally:
            other.stop()
            other.cleanup()

    def test_queue_file_survives_a_broker_restart_over_tls(self):
        col = Collector(1)
        col.connect(self.plain_port)
        col.start()
        queue = os.path.join(self.tmp, "queue")
        log = os.path.join(self.tmp, "pub.log")
        with open(log, "wb") as err:
            pub = subprocess.Popen(
                [self.moat, "pub", "-h", "localhost", "-p", str(self.port), "-i", "tls-queue",
                 "-c", "-x", "300", "-t", "t", "-q", "1", "-m", "msg", "--queue-file", queue,
                 "--repeat", str(COUNT), "--interval-ms", "5", "--ack-timeout", "30"] +
                self.tls_args(), stdout=subprocess.DEVNULL, stderr=err)
        self.procs.append(pub)
        time.sleep(0.4)
        self.broker.stop(check=True)
        self.broker.cleanup()
        time.sleep(0.9)
        self.assertIsNone(pub.poll(), "moat pub ended while the broker was away")
        pub.send_signal(signal.SIGSTOP)
        try:
            self.broker = Broker(self.CONFIG, port=self.port).start()
            col.connect(self.plain_port)
        finally:
            pub.send_signal(signal.SIGCONT)
        rc = pub.wait(timeout=45)
        with open(log) as f:
            self.assertEqual(rc, 0, f.read()[-2000:])
        got = col.wait_quiet(COUNT)
        expected = ["msg %d" % i for i in range(1, COUNT + 1)]
        self.assertEqual([m for m in expected if m not in set(got)], [], "messages lost")
        self.assertEqual(os.path.getsize(queue), 8)  # all acknowledged


if __name__ == "__main__":
    unittest.main()
