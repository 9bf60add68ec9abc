"""The cluster over a NATS server in operator mode (decentralized JWT auth,
docs/cluster.md, "Configuration"): two nodes with cluster_credentials (a user
JWT and nkey seed the test makes itself, natsjwt.py) carry messages and
retained messages between them, and `moat ctl cluster status --creds`
reads the cluster; a node without credentials, or with a user signed by a
key the server does not trust, does not start and names cluster_credentials.
A connection whose CONNECT reaches NATS without its signature (what libnats
before 3.10 sends when the signature's first byte is 0, one connection in
256) is tried again; three refusals in a row stop the node."""
import os
import re
import shutil
import socket
import tempfile
import threading
import time
import unittest

import natsjwt
from moattest import Broker
from test_cluster import CROSS_S, ClusterBase, NatsServer
from test_cluster_status import run_ctl

HINT = "check cluster_credentials"
AUTH_TRIES = 3	# NATS_AUTH_TRIES (src/cluster/nats_security.h)


class SignatureDroppingProxy:
    """A TCP proxy on a free loopback port in front of nats-server on
    <port>: the first CONNECT of each of its first <drop> connections loses
    its "sig" field, as libnats 3.4.1 sends it for a signature starting
    with a zero byte (nats.c PR 705)."""

    def __init__(self, port, drop):
        self.target = port
        self.drop = drop
        self.connections = 0
        self.socks = []
        self.srv = socket.create_server(("127.0.0.1", 0))
        self.port = self.srv.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                client, _ = self.srv.accept()
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", self.target), timeout=10)
            server.settimeout(None)
            self.socks += [client, server]
            self.connections += 1
            strip = self.connections <= self.drop
            threading.Thread(target=self._pipe, args=(server, client, False), daemon=True).start()
            threading.Thread(target=self._pipe, args=(client, server, strip), daemon=True).start()

    @staticmethod
    def _pipe(src, dst, strip):
        buf = b""
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if strip:
                    buf += data
                    if b"\r\n" not in buf:
                        continue
                    line, rest = buf.split(b"\r\n", 1)
                    data = re.sub(rb'"sig":"[^"]*",', b"", line) + b"\r\n" + rest
                    strip = False
                dst.sendall(data)
        except OSError:
            pass
        for sock in (src, dst):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def close(self):
        self.srv.close()
        for sock in self.socks:
            sock.close()


class CredsCluster(ClusterBase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="moattest-jwt-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.trust = natsjwt.Trust()
        operator = self.write("operator.jwt", self.trust.operator_jwt)
        self.nats_conf = self.write("nats.conf", self.trust.server_config(operator))
        self.creds = self.write("node.creds", self.trust.user_creds("moat-node"))
        self.node_config_a = self.node_config_b = "cluster_credentials %s\n" % self.creds
        super().setUp()

    def write(self, name, text):
        path = os.path.join(self.dir, name)
        with open(path, "w") as f:
            f.write(text)
        os.chmod(path, 0o600)
        return path

    def make_nats(self):
        return NatsServer(extra_args=["-c", self.nats_conf])

    def url(self):
        return "nats://127.0.0.1:%d" % self.nats.port

    def test_messages_and_retained_cross_with_credentials(self):
        for qos in (0, 1, 2):
            got = self.cross("creds/%d" % qos, b"m%d" % qos, qos=qos)
            self.assertEqual((got.payload, got.qos), (b"m%d" % qos, qos))
        pub = self.client("a", "retainer")
        pub.publish("creds/retained", b"kept", qos=1, retain=True)
        late = self.client("b", "late")
        deadline_s = 10
        for _ in range(deadline_s * 4):
            late.subscribe(("creds/retained", 1))
            try:
                got = late.expect_publish(timeout=0.25)
                break
            except OSError:
                late.unsubscribe("creds/retained")
        else:
            self.fail("node b never had the retained message set on node a")
        self.assertEqual((got.payload, got.retain), (b"kept", True))

    def test_ctl_cluster_status_with_credentials(self):
        out = run_ctl(self.nats.port, "--creds", self.creds, "--json")
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn(b'"a"', out.stdout)
        self.assertIn(b'"b"', out.stdout)
        self.assertEqual(run_ctl(self.nats.port).returncode, 1)

    def test_node_without_credentials_is_refused(self):
        self.refused(self.url(), "", HINT)

    def test_connection_without_its_signature_is_tried_again(self):
        proxy = SignatureDroppingProxy(self.nats.port, drop=AUTH_TRIES - 1)
        self.addCleanup(proxy.close)
        node = Broker("cluster_url nats://127.0.0.1:%d\ncluster_name test\nnode_name c\n"
                      "cluster_credentials %s\n" % (proxy.port, self.creds))
        self.addCleanup(node.cleanup)
        self.addCleanup(node.stop, check=False)
        node.start()
        deadline = time.monotonic() + CROSS_S
        while "joined cluster test" not in node.log():
            self.assertLess(time.monotonic(), deadline, node.log())
            time.sleep(0.1)
        self.assertEqual(proxy.connections, AUTH_TRIES)
        node.stop(check=True)

    def test_refused_every_time_stops_the_node(self):
        proxy = SignatureDroppingProxy(self.nats.port, drop=AUTH_TRIES)
        self.addCleanup(proxy.close)
        self.refused("nats://127.0.0.1:%d" % proxy.port,
                     "cluster_credentials %s\n" % self.creds, HINT)
        self.assertEqual(proxy.connections, AUTH_TRIES)

    def test_user_signed_by_an_unknown_account_is_refused(self):
        stranger = natsjwt.NKey(natsjwt.PREFIX_ACCOUNT)
        creds = self.write("stranger.creds", self.trust.user_creds("moat-node", signer=stranger))
        self.refused(self.url(), "cluster_credentials %s\n" % creds, HINT)


if __name__ == "__main__":
    unittest.main()
