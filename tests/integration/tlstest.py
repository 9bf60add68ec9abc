"""TLS helpers for the integration tests: test certificates and a TLS Peer.

make_certs() runs tests/data/make_certs.sh into a fresh temporary directory
(ca.crt, server.*, client.* CN client1, expired.*, revoked.* + crl.pem,
wrong.* signed by wrongca.crt). TlsPeer is moattest.Peer over a TLS socket.
Python 3 standard library only.
"""
import os
import socket
import ssl
import subprocess
import tempfile

import moattest

HERE = os.path.dirname(os.path.abspath(__file__))
MAKE_CERTS = os.path.join(HERE, "..", "data", "make_certs.sh")


def make_certs():
    """A temporary directory holding freshly generated test PKI material."""
    d = tempfile.mkdtemp(prefix="moattest-certs-")
    subprocess.run(["sh", MAKE_CERTS, d], check=True, timeout=60,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return d


def sign_client(certs, name, cn):
    """<certs>/<name>.crt/.key: a client certificate with common name <cn> (any
    characters) signed by the test CA of make_certs()."""
    key, csr, cnf = (os.path.join(certs, name + ext) for ext in (".key", ".csr", ".req"))
    with open(cnf, "w") as f:
        f.write("[req]\nprompt = no\ndistinguished_name = dn\n[dn]\nCN = %s\n" % cn)
    for argv in (["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt",
                  "ec_paramgen_curve:P-256", "-out", key],
                 ["openssl", "req", "-new", "-key", key, "-config", cnf, "-out", csr],
                 ["openssl", "ca", "-batch", "-config", os.path.join(certs, "ca.cnf"),
                  "-extensions", "client", "-in", csr, "-out",
                  os.path.join(certs, name + ".crt"), "-days", "30", "-notext"]):
        subprocess.run(argv, check=True, timeout=30, capture_output=True)


def client_ctx(certs, cert=None, version=None, verify=True):
    """A client SSLContext trusting <certs>/ca.crt (verify=False: trusts anything),
    presenting <certs>/<cert>.crt/.key when cert is given, and pinned to one
    ssl.TLSVersion when version is given."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if verify:
        ctx.load_verify_locations(os.path.join(certs, "ca.crt"))
    else:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if cert is not None:
        ctx.load_cert_chain(os.path.join(certs, cert + ".crt"),
                            os.path.join(certs, cert + ".key"))
    if version is not None:
        ctx.minimum_version = ctx.maximum_version = version
    return ctx


class TlsPeer(moattest.Peer):
    """moattest.Peer whose socket is wrapped in TLS (handshake done on creation)."""

    def __init__(self, port, ctx, version=5, timeout=moattest.READ_TIMEOUT_S):
        super().__init__(port, version=version, timeout=timeout)
        try:
            self.sock = ctx.wrap_socket(self.sock, server_hostname="127.0.0.1")
        except BaseException:
            self.sock.close()
            raise

    def _fill(self, deadline):
        try:
            super()._fill(deadline)
        except ssl.SSLZeroReturnError:
            raise moattest.Closed("TLS close_notify")
        except ssl.SSLError as e:
            raise moattest.Closed("TLS error: %s" % e)

    def disconnect(self, rc=0, props=None):
        """DISCONNECT, then wait for the broker to close. No half-close: an
        SSLSocket's shutdown() drops TLS and later reads would see ciphertext."""
        body = b""
        if self.version == 5 and (rc or props):
            body = bytes([rc]) + moattest.props_block(props)
        self.send(moattest.packet(moattest.DISCONNECT, 0, body))
        try:
            self.expect_closed()
        finally:
            self.close()

    def tls_version(self):
        return self.sock.version()

    def server_cert_der(self):
        return self.sock.getpeercert(binary_form=True)


def tls_refused(port, ctx, client_id="refused"):
    """Tries a TLS handshake plus CONNECT with <ctx>. Returns a description of
    how the broker refused (handshake alert, close before CONNACK); returns
    None when a CONNACK came back. A read timeout is not a refusal: it raises."""
    try:
        p = TlsPeer(port, ctx)
    except ssl.SSLError as e:
        return "handshake: %s" % e
    except (ConnectionResetError, BrokenPipeError) as e:
        return "handshake: %r" % e
    try:
        # TLS 1.3: the client finishes its handshake before the server has
        # checked the client certificate; the refusal comes with the first read.
        try:
            p.send(p.connect_bytes(client_id))
        except (ssl.SSLError, ConnectionResetError, BrokenPipeError) as e:
            return "send: %s" % e
        try:
            p.recv()
        except moattest.Closed as e:
            return "closed: %s" % e
        except socket.timeout:
            raise AssertionError("neither refused nor answered within the read timeout")
        return None
    finally:
        p.close()
