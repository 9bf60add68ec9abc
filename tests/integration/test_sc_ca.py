"""moat-sc's CA against a real moatd: `moat-sc init`, a broker certificate and
device credential bundles from `moat-sc thing add` (key made by moat-sc, or a
CSR made with openssl), a TLS listener with cafile = the SC CA,
require_certificate and crlfile = `moat-sc crl`. A device is accepted; after
`moat-sc thing revoke`, `moat-sc crl` and SIGHUP the same device is refused
while another one still connects. Also the registry's JSON view and the CLI's
refusals. Python 3 standard library only."""
import json
import os
import shutil
import signal
import ssl
import stat
import subprocess
import tempfile
import time
import unittest

import moattest
from moattest import BrokerTest
from tlstest import TlsPeer, tls_refused

HERE = os.path.dirname(os.path.abspath(__file__))
MOAT_SC = os.environ.get("MOAT_SC") or os.path.join(HERE, "..", "..", "build", "dev", "bin",
                                                    "moat-sc")


def setUpModule():
    if moattest.is_mosquitto():
        raise unittest.SkipTest("checks moatd's reload log")
    if not os.path.exists(MOAT_SC):
        raise unittest.SkipTest("moat-sc not built (set MOAT_SC)")


def sc(base, *args, check=True):
    """Runs moat-sc with --dir <base>/sc; returns the CompletedProcess."""
    p = subprocess.run([MOAT_SC, "--dir", os.path.join(base, "sc")] + list(args),
                       capture_output=True, text=True, timeout=60)
    if check and p.returncode != 0:
        raise AssertionError("moat-sc %s: %s" % (" ".join(args), p.stderr))
    return p


def wait_for_log(broker, text, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in broker.log():
            return
        time.sleep(0.05)
    raise AssertionError("%r not in the broker log:\n%s" % (text, broker.log()[-4000:]))


class ScCa(BrokerTest):

    @classmethod
    def setUpClass(cls):
        cls.base = tempfile.mkdtemp(prefix="moattest-sc-")
        b = cls.base
        sc(b, "init", "--name", "itest")
        sc(b, "thing", "add", "broker-1", "--broker", "--san", "IP:127.0.0.1",
           "--san", "DNS:localhost", "--out", os.path.join(b, "broker"))
        for dev in ("dev-1", "dev-2"):
            sc(b, "thing", "add", dev, "--attr", "role=sensor", "--attr", "site=plant-7",
               "--out", os.path.join(b, dev))
        # dev-3 makes its own key; its CSR asks for another name
        d3 = os.path.join(b, "dev-3")
        os.mkdir(d3, 0o700)
        subprocess.run(["openssl", "req", "-new", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:P-256", "-nodes", "-subj", "/CN=not-dev-3",
                        "-keyout", os.path.join(d3, "own.key"), "-out",
                        os.path.join(d3, "req.csr")], check=True, capture_output=True, timeout=30)
        sc(b, "thing", "add", "dev-3", "--csr", os.path.join(d3, "req.csr"), "--out", d3)
        sc(b, "crl", "--out", os.path.join(b, "crl.pem"))
        cls.CONFIG = ("certfile {0}/broker/cert.pem\nkeyfile {0}/broker/key.pem\n"
                      "cafile {0}/sc/ca.pem\ncrlfile {0}/crl.pem\nrequire_certificate true\n"
                      "use_identity_as_username true\n").format(b)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.base, ignore_errors=True)

    def ctx(self, dev, key="key.pem"):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.load_verify_locations(os.path.join(self.base, dev, "ca.pem"))
        ctx.load_cert_chain(os.path.join(self.base, dev, "cert.pem"),
                            os.path.join(self.base, dev, key))
        return ctx

    def connect(self, dev, key="key.pem"):
        p = TlsPeer(self.port, self.ctx(dev, key))
        self.peers.append(p)
        p.connect(dev)
        return p

    def test_bundle_files_and_modes(self):
        d = os.path.join(self.base, "dev-1")
        self.assertEqual(sorted(os.listdir(d)), ["ca.pem", "cert.pem", "key.pem"])
        self.assertEqual(stat.S_IMODE(os.stat(os.path.join(d, "key.pem")).st_mode), 0o600)
        for key in ("ca.key", "token.key"):
            mode = os.stat(os.path.join(self.base, "sc", key)).st_mode
            self.assertEqual(stat.S_IMODE(mode), 0o600, key)
        self.assertEqual(stat.S_IMODE(os.stat(os.path.join(self.base, "sc")).st_mode), 0o700)
        # with a CSR no key is written, and the CN is the thing's name
        d3 = os.path.join(self.base, "dev-3")
        self.assertNotIn("key.pem", os.listdir(d3))
        subj = subprocess.run(["openssl", "x509", "-in", os.path.join(d3, "cert.pem"), "-noout",
                               "-subject"], capture_output=True, text=True, check=True).stdout
        self.assertIn("CN = dev-3", subj)

    def test_device_accepted_then_refused_after_revoke(self):
        p = self.connect("dev-1")
        p.disconnect()
        self.connect("dev-3", key="own.key").disconnect()
        out = sc(self.base, "thing", "revoke", "dev-1", "--reason", "key-compromise")
        self.assertIn("revoked", out.stdout)
        sc(self.base, "crl", "--out", os.path.join(self.base, "crl.pem"))
        self.broker.proc.send_signal(signal.SIGHUP)
        wait_for_log(self.broker, "certificates, key and CRL reloaded")
        why = tls_refused(self.port, self.ctx("dev-1"))
        self.assertIsNotNone(why, "a revoked device was accepted")
        wait_for_log(self.broker, "certificate revoked")
        # another device of the same CA still connects
        self.connect("dev-2").disconnect()
        show = json.loads(sc(self.base, "thing", "show", "dev-1", "--json").stdout)
        self.assertEqual(show["status"], "revoked")
        self.assertEqual(show["attrs"], {"role": "sensor", "site": "plant-7"})
        self.assertEqual(len(show["certs"]), 1)
        self.assertEqual(show["certs"][0]["reason"], 1)
        audit = json.loads(sc(self.base, "audit", "--tail", "3", "--json").stdout)
        self.assertEqual([a["action"] for a in audit][-2:], ["thing.revoke", "crl.issue"])

    def test_renewal_keeps_the_key_and_both_certificates_work(self):
        d = os.path.join(self.base, "dev-2")
        with open(os.path.join(d, "cert.pem")) as f:
            old = f.read()
        with open(os.path.join(d, "key.pem")) as f:
            key = f.read()
        shutil.copy(os.path.join(d, "cert.pem"), os.path.join(d, "old.pem"))
        sc(self.base, "thing", "renew", "dev-2", "--out", d)
        with open(os.path.join(d, "cert.pem")) as f:
            self.assertNotEqual(f.read(), old)
        with open(os.path.join(d, "key.pem")) as f:
            self.assertEqual(f.read(), key)
        self.connect("dev-2").disconnect()
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.load_verify_locations(os.path.join(d, "ca.pem"))
        ctx.load_cert_chain(os.path.join(d, "old.pem"), os.path.join(d, "key.pem"))
        p = TlsPeer(self.port, ctx)
        self.peers.append(p)
        p.connect("dev-2-old")
        show = json.loads(sc(self.base, "thing", "show", "dev-2", "--json").stdout)
        self.assertEqual(len(show["certs"]), 2)

    def test_cli_refusals(self):
        b = self.base
        p = sc(b, "thing", "add", "dev-2", "--out", os.path.join(b, "again"), check=False)
        self.assertEqual(p.returncode, 1)
        self.assertIn("exists", p.stderr)
        p = sc(b, "thing", "add", "bad/name", "--out", os.path.join(b, "bad"), check=False)
        self.assertNotEqual(p.returncode, 0)
        p = sc(b, "init", check=False)
        self.assertIn("initialized already", p.stderr)
        loose = os.path.join(b, "loose")
        os.mkdir(loose, 0o755)
        os.chmod(loose, 0o755)
        p = subprocess.run([MOAT_SC, "--dir", loose, "init"], capture_output=True, text=True,
                           timeout=30)
        self.assertEqual(p.returncode, 1)
        self.assertIn("chmod 700", p.stderr)
        # a weak CSR key is refused by name, and no thing is registered for it
        weak = os.path.join(b, "weak")
        os.mkdir(weak)
        subprocess.run(["openssl", "req", "-new", "-newkey", "rsa:1024", "-nodes", "-subj",
                        "/CN=weak", "-keyout", os.path.join(weak, "k"), "-out",
                        os.path.join(weak, "r.csr")], check=True, capture_output=True, timeout=30)
        p = sc(b, "thing", "add", "weak-1", "--csr", os.path.join(weak, "r.csr"), "--out", weak,
               check=False)
        self.assertEqual(p.returncode, 1)
        self.assertIn("RSA 1024", p.stderr)
        # so is a bad SAN, again before registering
        p = sc(b, "thing", "add", "broker-2", "--broker", "--san", "IP:nope", "--out",
               os.path.join(b, "b2"), check=False)
        self.assertEqual(p.returncode, 1)
        self.assertIn("IP:nope", p.stderr)
        names = [t["name"] for t in json.loads(sc(b, "thing", "list", "--json").stdout)]
        self.assertNotIn("weak-1", names)
        self.assertNotIn("broker-2", names)
        # attributes are replaced, and audited
        sc(b, "thing", "attrs", "dev-2", "--attr", "role=actuator")
        show = json.loads(sc(b, "thing", "show", "dev-2", "--json").stdout)
        self.assertEqual(show["attrs"], {"role": "actuator"})
        p = sc(b, "thing", "attrs", "dev-2", "--attr", "Bad=x", check=False)
        self.assertEqual(p.returncode, 1)
        self.assertIn("broker-1", names)
        p = subprocess.run([MOAT_SC, "--help"], capture_output=True, text=True, timeout=10)
        self.assertIn("serve [--broker HOST:PORT]", p.stdout)  # the daemon exists now


if __name__ == "__main__":
    unittest.main()
