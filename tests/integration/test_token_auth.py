"""Token authentication beyond the CONNECT password.

Tokens bound to a client certificate (RFC 8705 `cnf` / `x5t#S256`): accepted
only on a TLS connection that presented that very certificate, so a stolen
token is useless without the device's key. The `moat-jwt` MQTT 5
authentication method and re-authentication (AUTH 0x19) with a fresh token
before the old one expires. Real moatd with a TLS listener (mutual TLS) and a
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
from moattest import AUTH, Broker, Peer, free_port, is_mosquitto, packet, props_block

BAD_USER_PASS = 0x86
NOT_AUTHORIZED = 0x87
MAX_CONNECT_TIME = 0xA0


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
        # the TLS listener opens after the main one (seen refused once in CI)
        self.broker.wait_ready(port=self.tls_port)

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


@unittest.skipIf(is_mosquitto(), "moatd's moat-jwt method")
class ReAuthentication(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="moatreauth-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.keys = Keys(self.dir)
        self.broker = Broker("auth_token_key %s\nauth_token_audience moat-test\n"
                             "auth_token_leeway 0\nauth_fail_delay_max 200\n" % self.keys.ed_path,
                             allow_anonymous=False)
        self.broker.start()
        self.addCleanup(self.broker.cleanup)
        self.addCleanup(self.broker.stop)

    def token(self, life_s, user="dev1", key="ed"):
        now = int(time.time())
        return self.keys.token({"sub": user, "aud": "moat-test", "exp": now + life_s, "iat": now},
                               key=key)

    def connect(self, token):
        p = Peer(self.broker.port)
        self.addCleanup(p.close)
        ack = p.connect("dev1", props={"auth_method": "moat-jwt",
                                       "auth_data": token.encode()})
        self.assertEqual(ack.props.get("auth_method"), "moat-jwt")
        return p

    def reauth(self, p, token, method="moat-jwt", rc=0x19):
        body = bytes([rc]) + props_block({"auth_method": method,
                                          "auth_data": token.encode()})
        p.send(packet(AUTH, 0, body))

    def test_moat_jwt_method_at_connect(self):
        p = self.connect(self.token(300))
        p.ping()
        bad = Peer(self.broker.port)
        self.addCleanup(bad.close)
        ack = bad.connect("dev1", expect_rc=None,
                          props={"auth_method": "moat-jwt",
                                 "auth_data": self.token(300, key="other").encode()})
        self.assertEqual(ack.rc, BAD_USER_PASS)

    def test_reauthentication_extends_the_session_past_the_first_token(self):
        first_exp = time.time() + 4
        p = self.connect(self.token(4))
        self.reauth(p, self.token(300))
        ok = p.expect(AUTH)
        self.assertEqual((ok.rc, ok.props.get("auth_method")), (0, "moat-jwt"))
        time.sleep(max(0, first_exp - time.time()) + 1.5)	# past the first token's exp
        p.ping()	# still connected

    def test_without_reauthentication_the_session_ends_at_exp(self):
        p = self.connect(self.token(2))
        p.expect_closed(timeout=6, disconnect_rc=MAX_CONNECT_TIME)

    def test_reauthentication_as_another_user_disconnects(self):
        p = self.connect(self.token(300))
        self.reauth(p, self.token(300, user="intruder"))
        p.expect_closed(disconnect_rc=NOT_AUTHORIZED)
        self.assertIn("names another user", self.broker.log())

    def test_reauthentication_with_a_bad_token_disconnects(self):
        p = self.connect(self.token(300))
        self.reauth(p, self.token(300, key="other"))
        p.expect_closed(disconnect_rc=NOT_AUTHORIZED)

    def test_reauthentication_with_another_method_is_a_protocol_error(self):
        p = self.connect(self.token(300))
        self.reauth(p, self.token(300), method="SCRAM-SHA-256")
        p.expect_closed(disconnect_rc=0x82)


if __name__ == "__main__":
    unittest.main()
