"""moat-sc with its keys in PKCS#11 tokens (softhsm2, made in a temporary
directory as SECURITY-DESIGN.md 4.3 describes): `moat-sc init --pkcs11-module
... --ca-key-uri ... --token-key-uri ... --pin-file ...` records them in
DIR/sc.json; `thing add` then issues certificates signed in the token that
`openssl verify` accepts, `crl` writes a CRL that verifies, and a device
holding such a certificate publishes over mutual TLS to a moatd whose
certificate came from the same CA. Refusals: a PIN in the URI, a PIN file
others can read, a wrong PIN, no PIN. Skipped when softhsm2 or OpenSC's
pkcs11-tool is missing."""
import json
import os
import shutil
import stat
import subprocess
import tempfile
import unittest

import moattest
from moattest import BrokerTest, Peer

HERE = os.path.dirname(os.path.abspath(__file__))
MOAT_SC = os.environ.get("MOAT_SC") or os.path.join(HERE, "..", "..", "build", "dev", "bin",
                                                    "moat-sc")
MODULES = ("/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
           "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
           "/usr/lib/softhsm/libsofthsm2.so")
MODULE = next((m for m in MODULES if os.path.exists(m)), None)
CA_URI = "pkcs11:token=moat-ca;object=ca"
TOKEN_URI = "pkcs11:token=moat-tok;object=token"
PIN = "246810"


def setUpModule():
    if moattest.is_mosquitto():
        raise unittest.SkipTest("moat-sc and moatd only")
    if not os.path.exists(MOAT_SC):
        raise unittest.SkipTest("moat-sc not built (set MOAT_SC)")
    if MODULE is None or shutil.which("softhsm2-util") is None or \
            shutil.which("pkcs11-tool") is None:
        raise unittest.SkipTest("softhsm2 or pkcs11-tool not installed: apt-get install "
                                "softhsm2 opensc libengine-pkcs11-openssl")


def run(argv, env, check=True):
    p = subprocess.run(argv, capture_output=True, text=True, timeout=60, env=env)
    if check and p.returncode != 0:
        raise AssertionError("%s: %s%s" % (" ".join(argv), p.stdout, p.stderr))
    return p


class ScPkcs11(BrokerTest):

    @classmethod
    def setUpClass(cls):
        cls.base = b = tempfile.mkdtemp(prefix="moattest-p11-")
        cls.plain = moattest.free_port()  # a plain listener for the watcher
        os.mkdir(os.path.join(b, "tokens"))
        conf = os.path.join(b, "softhsm2.conf")
        with open(conf, "w") as f:
            f.write("directories.tokendir = %s/tokens\nobjectstore.backend = file\n"
                    "log.level = ERROR\n" % b)
        cls.env = dict(os.environ, SOFTHSM2_CONF=conf)
        cls.env.pop("MOAT_SC_PIN", None)
        for label, key_type, name, key_id in (("moat-ca", "EC:prime256v1", "ca", "01"),
                                              ("moat-tok", "EC:edwards25519", "token", "02")):
            run(["softhsm2-util", "--init-token", "--free", "--label", label, "--pin", PIN,
                 "--so-pin", "13579"], cls.env)
            run(["pkcs11-tool", "--module", MODULE, "--token-label", label, "-l", "--pin", PIN,
                 "--keypairgen", "--key-type", key_type, "--label", name, "--id", key_id],
                cls.env)
        cls.pin_file = os.path.join(b, "pin")
        with open(os.open(cls.pin_file, os.O_WRONLY | os.O_CREAT, 0o600), "w") as f:
            f.write(PIN + "\n")
        cls.sc(cls, "init", "--name", "hsm", "--pkcs11-module", MODULE, "--pin-file",
               cls.pin_file, "--ca-key-uri", CA_URI, "--token-key-uri", TOKEN_URI)
        cls.sc(cls, "thing", "add", "broker-1", "--broker", "--san", "IP:127.0.0.1",
               "--out", os.path.join(b, "broker"))
        cls.sc(cls, "thing", "add", "dev-1", "--out", os.path.join(b, "dev-1"))
        cls.CONFIG = ("certfile {0}/broker/cert.pem\nkeyfile {0}/broker/key.pem\n"
                      "cafile {0}/sc/ca.pem\nrequire_certificate true\n"
                      "listener {1} 127.0.0.1\n").format(b, cls.plain)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.base, ignore_errors=True)

    def sc(self, *args, check=True, env=None, sc_dir="sc"):
        return run([MOAT_SC, "--dir", os.path.join(self.base, sc_dir)] + list(args),
                   env or self.env, check)

    def path(self, *parts):
        return os.path.join(self.base, *parts)

    def test_init_records_the_tokens_not_the_pin(self):
        d = self.path("sc")
        self.assertEqual(sorted(os.listdir(d)),
                         ["ca.pem", "registry.db", "sc.json", "store.key", "token.pub"])
        # no signing key files; store.key (sealing the group keys at rest) stays a file
        self.assertEqual(stat.S_IMODE(os.stat(os.path.join(d, "sc.json")).st_mode), 0o600)
        with open(os.path.join(d, "sc.json")) as f:
            text = f.read()
        self.assertNotIn(PIN, text)
        self.assertEqual(json.loads(text), {"pkcs11": {
            "module": os.path.realpath(MODULE), "pin_file": self.pin_file,
            "ca_key": CA_URI, "token_key": TOKEN_URI}})
        # token.pub is the token's Ed25519 public key
        pub = run(["openssl", "pkey", "-pubin", "-in", os.path.join(d, "token.pub"), "-noout",
                   "-text"], self.env).stdout
        self.assertIn("ED25519", pub)

    def test_issued_certificate_and_crl_verify_with_openssl(self):
        ca = self.path("sc", "ca.pem")
        self.sc("thing", "add", "dev-2", "--out", self.path("dev-2"))
        cert = self.path("dev-2", "cert.pem")
        run(["openssl", "verify", "-CAfile", ca, cert], self.env)
        self.sc("thing", "revoke", "dev-2")
        self.sc("crl", "--out", self.path("crl.pem"))
        out = run(["openssl", "crl", "-in", self.path("crl.pem"), "-CAfile", ca, "-noout"],
                  self.env)
        self.assertIn("verify OK", out.stdout + out.stderr)
        p = run(["openssl", "verify", "-crl_check", "-CRLfile", self.path("crl.pem"), "-CAfile",
                 ca, cert], self.env, check=False)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("certificate revoked", p.stdout + p.stderr)

    def test_device_certificate_from_the_token_ca_publishes_over_mtls(self):
        moat = os.environ.get("MOAT")
        if not moat:
            self.skipTest("MOAT is not set (path to the moat tool)")
        w = Peer(self.plain)
        self.peers.append(w)
        w.connect("watcher")
        w.subscribe("dev/1", qos=1)
        dev = self.path("dev-1")
        run([moat, "pub", "-h", "127.0.0.1", "-p", str(self.port), "-i", "dev-1", "-t", "dev/1",
             "-q", "1", "-m", "signed in a token", "--cafile", os.path.join(dev, "ca.pem"),
             "--cert", os.path.join(dev, "cert.pem"), "--key", os.path.join(dev, "key.pem")],
            self.env)
        self.assertEqual(w.expect_publish().payload, b"signed in a token")

    def test_pin_refusals(self):
        bad = self.path("badpin")
        with open(os.open(bad, os.O_WRONLY | os.O_CREAT, 0o640), "w") as f:
            f.write("000000\n")
        os.chmod(bad, 0o640)
        for args, want in (
                (["--ca-key-uri", CA_URI + "?pin-value=" + PIN], "0600 file"),
                (["--pin-file", bad, "--ca-key-uri", CA_URI], "chmod 600"),
                (["--ca-key-uri", CA_URI], "MOAT_SC_PIN"),
                (["--pin-file", self.pin_file, "--ca-key-uri", "pkcs11:token=nope;object=ca"],
                 "nope")):
            with self.subTest(want=want):
                p = self.sc("init", "--pkcs11-module", MODULE, *args, check=False,
                            sc_dir="sc-" + want.split()[0])
                self.assertEqual(p.returncode, 1, p.stdout)
                self.assertIn(want, p.stderr)
        os.chmod(bad, 0o600)
        p = self.sc("init", "--pkcs11-module", MODULE, "--pin-file", bad, "--token-key-uri",
                    TOKEN_URI, check=False, sc_dir="sc-wrong")
        self.assertIn("wrong PIN", p.stderr)

    def test_pin_from_the_environment(self):
        self.sc("init", "--pkcs11-module", MODULE, "--ca-key-uri", CA_URI, sc_dir="sc-env",
                env=dict(self.env, MOAT_SC_PIN=PIN))
        with open(self.path("sc-env", "sc.json")) as f:
            self.assertNotIn("pin_file", json.load(f)["pkcs11"])
        self.assertIn("token.key", os.listdir(self.path("sc-env")))  # only the CA in the token
        p = self.sc("thing", "add", "dev-env", "--out", self.path("dev-env"), sc_dir="sc-env",
                    check=False)
        self.assertIn("MOAT_SC_PIN", p.stderr)
        self.sc("thing", "add", "dev-env", "--out", self.path("dev-env"), sc_dir="sc-env",
                env=dict(self.env, MOAT_SC_PIN=PIN))
        run(["openssl", "verify", "-CAfile", self.path("sc-env", "ca.pem"),
             self.path("dev-env", "cert.pem")], self.env)


if __name__ == "__main__":
    unittest.main()
