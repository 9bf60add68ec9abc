"""Tokens bound to a client certificate (RFC 8705 `cnf` / `x5t#S256`).

A token whose `cnf` names a certificate thumbprint is accepted only on a TLS
connection that presented that very certificate: a stolen token is useless
without the device's key. Real moatd with a TLS listener (mutual TLS) and a
plain one; tokens signed with Ed25519 by python3-jwt.
"""
import base64
import hashlib
import os
import shutil
import tempfile
import time
import unittest

import tlstest
from authkit import Keys
from moattest import Broker, Peer, free_port, is_mosquitto

BAD_USER_PASS = 0x86


def thumbprint(certs, name):
    """base64url(SHA-256(DER)) of <certs>/<name>.crt, as RFC 8705 §3.1 writes it."""
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding
    with open(os.path.join(certs, name + ".crt"), "rb") as f:
        der = x509.load_pem_x509_certificate(f.read()).public_bytes(Encoding.DER)
    return base64.urlsafe_b64encode(hashlib.sha256(der).digest()).rstrip(b"=").decode()


@unittest.skipIf(is_mosquitto(), "moatd's token verification")
class TokenBinding(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.certs = tlstest.make_certs()
        tlstest.sign_client(cls.certs, "other", "client2")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.certs, ignore_errors=True)

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="moatbind-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.keys = Keys(self.dir)
        self.tls_port = free_port()
        c = self.certs
        self.broker = Broker(
            "auth_token_key %s\nauth_token_audience moat-test\nauth_fail_delay_max 200\n"
            "listener %d 127.0.0.1\ncertfile %s/server.crt\nkeyfile %s/server.key\n"
            "cafile %s/ca.crt\nrequire_certificate true\n"
            % (self.keys.ed_path, self.tls_port, c, c, c), allow_anonymous=False)
        self.broker.start()
        self.addCleanup(self.broker.cleanup)
        self.addCleanup(self.broker.stop)

    def token(self, cnf=None):
        claims = {"sub": "dev1", "aud": "moat-test", "exp": int(time.time()) + 300,
                  "iat": int(time.time())}
        if cnf is not None:
            claims["cnf"] = {"x5t#S256": cnf}
        return self.keys.token(claims)

    def connack_tls(self, cert, token):
        p = tlstest.TlsPeer(self.tls_port, tlstest.client_ctx(self.certs, cert=cert))
        try:
            return p.connect("dev1", expect_rc=None, username="t", password=token).rc
        finally:
            p.close()

    def test_token_bound_to_the_presented_certificate_is_accepted(self):
        self.assertEqual(self.connack_tls("client", self.token(thumbprint(self.certs, "client"))), 0)

    def test_token_bound_to_another_certificate_is_refused(self):
        stolen = self.token(thumbprint(self.certs, "other"))
        self.assertEqual(self.connack_tls("client", stolen), BAD_USER_PASS)
        self.assertIn("bound to another client certificate", self.broker.log())

    def test_bound_token_without_tls_is_refused(self):
        p = Peer(self.broker.port)
        try:
            ack = p.connect("dev1", expect_rc=None, username="t",
                            password=self.token(thumbprint(self.certs, "client")))
            self.assertEqual(ack.rc, BAD_USER_PASS)
        finally:
            p.close()

    def test_unbound_token_still_works_on_both_listeners(self):
        self.assertEqual(self.connack_tls("other", self.token()), 0)
        p = Peer(self.broker.port)
        try:
            self.assertEqual(p.connect("dev1", expect_rc=None, username="t",
                                       password=self.token()).rc, 0)
        finally:
            p.close()


if __name__ == "__main__":
    unittest.main()
