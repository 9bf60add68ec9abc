"""`moat ctl` end to end: `moat-sc init`, the admin channel served without
the daemon (sc_admin_serve, NULL hooks), and `moat ctl` driving it.

thing create writes a complete credential bundle (modes checked, cert.pem
verifies against ca.pem with `openssl verify`, the registry holds the
bundle's Ed25519/X25519 public keys; with --csr and --sign-pub/--agree-pub
the device keeps its private keys); list/show/update/revoke with --json;
policy set/show/list/delete (a weak alg refused by name); key rotate; token
issue: the token decodes with python3-jwt (EdDSA, at+jwt, kid, aud, iss,
cnf = SHA-256 of cert.pem's DER) and a real moatd configured with the SC's
token.pub and kid accepts it over mutual TLS with the bundle's certificate,
but not with another device's certificate; audit tail shows the ops with
their actor; a stopped SC gets a clear error."""
import base64
import hashlib
import json
import os
import shutil
import ssl
import stat
import subprocess
import tempfile
import unittest

import moattest
from moattest import Broker, free_port
from tlstest import TlsPeer

HERE = os.path.dirname(os.path.abspath(__file__))
BUILD = os.path.join(HERE, "..", "..", "build", "dev")
MOAT = os.environ.get("MOAT") or os.path.join(BUILD, "bin", "moat")
MOAT_SC = os.environ.get("MOAT_SC") or os.path.join(BUILD, "bin", "moat-sc")
SERVE = os.environ.get("SC_ADMIN_SERVE") or os.path.join(BUILD, "tests", "sc_admin_serve")
BAD_USER_PASS = 0x86


def setUpModule():
    for path in (MOAT, MOAT_SC, SERVE):
        if not os.path.exists(path):
            raise unittest.SkipTest("%s not built" % path)


def der_thumbprint(pem_path):
    """base64url(SHA-256(DER)) of a PEM certificate (RFC 8705 x5t#S256)."""
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding
    with open(pem_path, "rb") as f:
        der = x509.load_pem_x509_certificate(f.read()).public_bytes(Encoding.DER)
    return base64.urlsafe_b64encode(hashlib.sha256(der).digest()).rstrip(b"=").decode()


def raw_public_hex(key_path):
    """The raw public key (hex) of a PEM PKCS#8 Ed25519 or X25519 private key."""
    from cryptography.hazmat.primitives import serialization
    with open(key_path, "rb") as f:
        key = serialization.load_pem_private_key(f.read(), None)
    return key.public_key().public_bytes(serialization.Encoding.Raw,
                                         serialization.PublicFormat.Raw).hex()


class Ctl(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.base = tempfile.mkdtemp(prefix="moattest-ctl-")
        cls.sc_dir = os.path.join(cls.base, "sc")
        cls.sc("init", "--name", "ctl-test")
        cls.sc("thing", "add", "broker-1", "--broker", "--san", "IP:127.0.0.1",
               "--out", os.path.join(cls.base, "broker"))
        cls.serve = subprocess.Popen([SERVE, cls.sc_dir, "mqtts://127.0.0.1:8883", "broker-1"],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        line = cls.serve.stdout.readline()
        if line.strip() != "ready":
            raise AssertionError("sc_admin_serve: %s" % cls.serve.stderr.read())

    @classmethod
    def tearDownClass(cls):
        cls.serve.stdin.close()
        cls.serve.wait(timeout=30)
        cls.serve.stdout.close()
        cls.serve.stderr.close()
        shutil.rmtree(cls.base, ignore_errors=True)

    @classmethod
    def sc(cls, *args):
        p = subprocess.run([MOAT_SC, "--dir", cls.sc_dir] + list(args), capture_output=True,
                           text=True, timeout=60)
        if p.returncode != 0:
            raise AssertionError("moat-sc %s: %s" % (" ".join(args), p.stderr))
        return p

    def ctl(self, *args, check=True, json_out=False):
        argv = [MOAT, "ctl", "--sc-dir", self.sc_dir] + (["--json"] if json_out else [])
        p = subprocess.run(argv + list(args), capture_output=True, text=True, timeout=60)
        if check and p.returncode != 0:
            raise AssertionError("moat ctl %s: %s" % (" ".join(args), p.stderr))
        return json.loads(p.stdout) if json_out and p.stdout else p

    created_serials = []

    def create(self, name, *extra):
        out = os.path.join(self.base, name)
        r = self.ctl("thing", "create", name, "--attr", "role=sensor", "--attr", "site=plant-7",
                     *extra, "--out", out, json_out=True)
        self.assertTrue(r["ok"])
        self.created_serials.append(r["serial"])
        return out

    def test_thing_create_writes_a_complete_bundle(self):
        out = self.create("dev-1")
        self.assertEqual(stat.S_IMODE(os.stat(out).st_mode), 0o700)
        modes = {"key.pem": 0o600, "sign.key": 0o600, "agree.key": 0o600, "cert.pem": 0o644,
                 "ca.pem": 0o644, "sc.pub": 0o644, "bundle.json": 0o644}
        self.assertEqual(sorted(os.listdir(out)), sorted(modes))
        for name, mode in modes.items():
            self.assertEqual(stat.S_IMODE(os.stat(os.path.join(out, name)).st_mode), mode, name)
        with open(os.path.join(out, "bundle.json")) as f:
            self.assertEqual(json.load(f), {"client_id": "dev-1",
                                            "broker": "mqtts://127.0.0.1:8883"})
        with open(os.path.join(out, "sc.pub")) as f, \
                open(os.path.join(self.sc_dir, "token.pub")) as g:
            self.assertEqual(f.read(), g.read())
        v = subprocess.run(["openssl", "verify", "-CAfile", os.path.join(out, "ca.pem"),
                            os.path.join(out, "cert.pem")], capture_output=True, text=True)
        self.assertEqual(v.returncode, 0, v.stderr)
        show = self.ctl("thing", "show", "dev-1", json_out=True)
        self.assertTrue(show["ok"])
        self.assertIn(show["thing"]["certs"][0]["serial"], self.created_serials)
        keys = {k["kind"]: k["public_key"] for k in show["thing"]["keys"]}
        self.assertEqual(keys, {"ed25519-sign": raw_public_hex(os.path.join(out, "sign.key")),
                                "x25519-agree": raw_public_hex(os.path.join(out, "agree.key"))})
        self.assertEqual(show["thing"]["certs"][0]["x5t#S256"],
                         der_thumbprint(os.path.join(out, "cert.pem")))
        # the name is taken: refused, and the bundle directory keeps no new key
        again = os.path.join(self.base, "dev-1-again")
        p = self.ctl("thing", "create", "dev-1", "--out", again, check=False)
        self.assertEqual(p.returncode, 1)
        self.assertIn("dev-1", p.stderr)
        self.assertEqual(os.listdir(again), [])
        # a bundle directory with a key in it: refused, and that key is left alone
        with open(os.path.join(again, "sign.key"), "w") as f:
            f.write("precious")
        p = self.ctl("thing", "create", "dev-x", "--out", again, check=False)
        self.assertEqual(p.returncode, 1)
        self.assertEqual(os.listdir(again), ["sign.key"])
        with open(os.path.join(again, "sign.key")) as f:
            self.assertEqual(f.read(), "precious")
        self.assertEqual(self.ctl("thing", "show", "dev-x", check=False).returncode, 1)
        # a bundle directory whose parent is missing: the error says so
        p = self.ctl("thing", "create", "dev-y", "--out",
                     os.path.join(self.base, "no-such-dir", "dev-y"), check=False)
        self.assertEqual(p.returncode, 1)
        self.assertIn("its parent directory does not exist", p.stderr)

    def test_device_keeps_its_private_keys(self):
        own = os.path.join(self.base, "own")
        os.mkdir(own, 0o700)
        csr, key = os.path.join(own, "req.csr"), os.path.join(own, "tls.key")
        subprocess.run(["openssl", "req", "-new", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:P-256", "-nodes", "-subj", "/CN=x", "-keyout", key,
                        "-out", csr], check=True, capture_output=True, timeout=30)
        pubs = {}
        for alg in ("ed25519", "x25519"):
            priv = os.path.join(own, alg + ".key")
            subprocess.run(["openssl", "genpkey", "-algorithm", alg, "-out", priv], check=True,
                           capture_output=True)
            pubs[alg] = os.path.join(own, alg + ".pub")
            subprocess.run(["openssl", "pkey", "-in", priv, "-pubout", "-out", pubs[alg]],
                           check=True, capture_output=True)
        out = self.create("dev-own", "--csr", csr, "--sign-pub", pubs["ed25519"],
                          "--agree-pub", pubs["x25519"])
        self.assertEqual(sorted(os.listdir(out)),
                         ["bundle.json", "ca.pem", "cert.pem", "sc.pub"])
        show = self.ctl("thing", "show", "dev-own", json_out=True)
        keys = {k["kind"]: k["public_key"] for k in show["thing"]["keys"]}
        self.assertEqual(keys["ed25519-sign"],
                         raw_public_hex(os.path.join(own, "ed25519.key")))
        # an X25519 key offered as the signing key is refused by the SC
        p = self.ctl("thing", "create", "dev-bad", "--csr", csr, "--sign-pub", pubs["x25519"],
                     "--agree-pub", pubs["x25519"], "--out", os.path.join(self.base, "bad"),
                     check=False)
        self.assertEqual(p.returncode, 1)
        self.assertIn("not a PEM Ed25519 public key", p.stderr)

    def test_list_show_update_revoke_json(self):
        self.create("dev-2")
        listed = self.ctl("thing", "list", json_out=True)
        self.assertIn("dev-2", [t["name"] for t in listed["things"]])
        up = self.ctl("thing", "update", "dev-2", "--attr", "role=actuator", json_out=True)
        self.assertEqual(up["thing"]["attrs"], {"role": "actuator"})
        human = self.ctl("thing", "show", "dev-2").stdout
        self.assertIn("role=actuator", human)
        rev = self.ctl("thing", "revoke", "dev-2", "--reason", "key-compromise", json_out=True)
        self.assertEqual((rev["ok"], rev["revoked"], rev["daemon"]), (True, True, False))
        self.assertIn("nothing was pushed", rev["note"])
        show = self.ctl("thing", "show", "dev-2", json_out=True)
        self.assertEqual(show["thing"]["status"], "revoked")
        self.assertEqual(show["thing"]["certs"][0]["reason"], 1)
        p = self.ctl("thing", "revoke", "dev-2", check=False)
        self.assertEqual(p.returncode, 1)
        p = self.ctl("token", "issue", "dev-2", check=False)
        self.assertEqual(p.returncode, 1)
        self.assertIn("revoked", p.stderr)

    def test_policies(self):
        r = self.ctl("policy", "set", "plant/+/temp", "--publish", "role == sensor",
                     "--subscribe", "role in [historian, operator]", "--signed",
                     "--max-age", "300", json_out=True)
        self.assertTrue(r["ok"])
        self.assertEqual(r["policy"], {"filter": "plant/+/temp", "publish": "role == sensor",
                                       "subscribe": "role in [historian, operator]",
                                       "signed": True, "max_age_s": 300})
        p = self.ctl("policy", "set", "plant/+/hum", "--publish", "true", "--alg", "3des",
                     check=False)
        self.assertEqual(p.returncode, 1)
        self.assertIn("3DES", p.stderr)
        self.assertIn("use chacha20-poly1305 or aes-256-gcm", p.stderr)
        with open(os.path.join(self.sc_dir, "policies.json")) as f:
            doc = json.load(f)
        self.assertEqual([e["filter"] for e in doc["policies"]], ["plant/+/temp"])
        show = self.ctl("policy", "show", "plant/+/temp", json_out=True)
        self.assertEqual(show["policy"]["max_age_s"], 300)
        self.assertIn("plant/+/temp", self.ctl("policy", "list").stdout)
        self.assertIn("max_age_s  300", self.ctl("policy", "show", "plant/+/temp").stdout)
        self.ctl("policy", "set", "plant/+/hum", "--publish", "true")
        self.assertIn("max_age_s  none", self.ctl("policy", "show", "plant/+/hum").stdout)
        self.assertTrue(self.ctl("policy", "delete", "plant/+/hum", json_out=True)["ok"])
        rot = self.ctl("key", "rotate", "plant/+/temp", json_out=True)
        self.assertEqual((rot["ok"], rot["daemon"]), (True, False))
        self.assertEqual(self.ctl("key", "rotate", "nothing/#", check=False).returncode, 1)
        self.assertTrue(self.ctl("policy", "delete", "plant/+/temp", json_out=True)["ok"])
        self.assertEqual(self.ctl("policy", "list", json_out=True)["policies"], [])

    def test_token_is_accepted_by_moatd_over_mutual_tls(self):
        import jwt
        out = self.create("dev-3")
        other = self.create("dev-4")
        r = self.ctl("token", "issue", "dev-3", "--ttl", "600", json_out=True)
        token = r["token"]
        header = jwt.get_unverified_header(token)
        self.assertEqual((header["alg"], header["typ"], header["kid"]),
                         ("EdDSA", "at+jwt", r["kid"]))
        with open(os.path.join(out, "sc.pub"), "rb") as f:
            pub = f.read()
        claims = jwt.decode(token, pub, algorithms=["EdDSA"], audience="broker-1",
                            issuer="moat-sc")
        self.assertEqual((claims["sub"], claims["client_id"]), ("dev-3", "dev-3"))
        self.assertEqual(claims["exp"] - claims["iat"], 600)
        self.assertEqual(claims["roles"], ["sensor"])
        self.assertEqual(claims["attrs"], {"role": "sensor", "site": "plant-7"})
        self.assertEqual(claims["cnf"], {"x5t#S256": der_thumbprint(os.path.join(out,
                                                                                 "cert.pem"))})
        self.assertEqual(claims["jti"], r["jti"])
        self.assertEqual(self.ctl("token", "issue", "dev-3", "--ttl", "60",
                                  check=False).returncode, 1)
        if moattest.is_mosquitto():
            return
        port = free_port()
        b = self.base
        broker = Broker("auth_token_key %s/sc/token.pub %s\nauth_token_audience broker-1\n"
                        "auth_token_issuer moat-sc\nauth_fail_delay_max 200\n"
                        "listener %d 127.0.0.1\ncertfile %s/broker/cert.pem\n"
                        "keyfile %s/broker/key.pem\ncafile %s/sc/ca.pem\n"
                        "require_certificate true\n" % (b, r["kid"], port, b, b, b),
                        allow_anonymous=False)
        broker.start()
        self.addCleanup(broker.cleanup)
        self.addCleanup(broker.stop)

        def connack(bundle):
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.load_verify_locations(os.path.join(bundle, "ca.pem"))
            ctx.load_cert_chain(os.path.join(bundle, "cert.pem"),
                                os.path.join(bundle, "key.pem"))
            p = TlsPeer(port, ctx)
            try:
                return p.connect("dev-3", expect_rc=None, username="t", password=token).rc
            finally:
                p.close()

        self.assertEqual(connack(out), 0)
        # the same token presented with another device's certificate: refused
        self.assertEqual(connack(other), BAD_USER_PASS)

    def test_audit_tail_shows_the_ops_with_their_actor(self):
        self.create("dev-5")
        subprocess.run([MOAT, "ctl", "--sc-dir", self.sc_dir, "--actor", "alice", "token",
                        "issue", "dev-5"], check=True, capture_output=True, timeout=60)
        rows = self.ctl("audit", "tail", "-n", "6", json_out=True)["audit"]
        actions = [(a["actor"], a["action"], a.get("thing")) for a in rows]
        self.assertIn(("alice", "admin.token.issue", "dev-5"), actions)
        self.assertIn("admin.thing.create", [a[1] for a in actions])
        self.assertIn("admin.token.issue", self.ctl("audit", "tail").stdout)

    def test_unreachable_sc_is_named(self):
        p = subprocess.run([MOAT, "ctl", "--socket", os.path.join(self.base, "none.sock"),
                            "thing", "list"], capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 1)
        self.assertIn("cannot reach the Security Center at", p.stderr)
        self.assertIn("is `moat-sc serve` running?", p.stderr)


if __name__ == "__main__":
    unittest.main()
