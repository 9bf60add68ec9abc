"""The cluster over a NATS server in operator mode (decentralized JWT auth,
docs/cluster.md, "Configuration"): two nodes with cluster_credentials (a user
JWT and nkey seed the test makes itself, natsjwt.py) carry messages and
retained messages between them, and `moat ctl cluster status --creds`
reads the cluster; a node without credentials, or with a user signed by a
key the server does not trust, does not start and names cluster_credentials."""
import os
import shutil
import sys
import tempfile
import unittest

import natsjwt
from test_cluster import ClusterBase, NatsServer
from test_cluster_status import run_ctl

HINT = "check cluster_credentials"


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

    def start_node(self, name, port=None):
        """A node with valid credentials is refused "Authentication
        Violation" about once in six runs when the machine is loaded (seen
        with nats-server 2.9.10: of two nodes sharing one creds file, one got
        in and one was refused; cause not found, docs/cluster.md "Tests"):
        such a start is tried again, at most twice, and said on stderr."""
        for attempt in range(3):
            try:
                return super().start_node(name, port)
            except AssertionError as e:
                if attempt == 2 or "Authentication Violation" not in str(e):
                    raise
                print("node %s refused by NATS with valid credentials; starting it again"
                      % name, file=sys.stderr)
                self.nodes.pop(name).cleanup()

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

    def test_user_signed_by_an_unknown_account_is_refused(self):
        stranger = natsjwt.NKey(natsjwt.PREFIX_ACCOUNT)
        creds = self.write("stranger.creds", self.trust.user_creds("moat-node", signer=stranger))
        self.refused(self.url(), "cluster_credentials %s\n" % creds, HINT)


if __name__ == "__main__":
    unittest.main()
