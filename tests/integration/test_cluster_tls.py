"""The cluster over a NATS server that demands TLS with client certificates
(docs/cluster.md, "Configuration"): two nodes with cluster_tls_cafile,
cluster_tls_certfile and cluster_tls_keyfile carry messages between them,
opaque binary payloads (as end-to-end sealed envelopes are) arrive byte for
byte; a node without a client certificate, or trusting another CA, does not
start and says why."""
import os
import shutil
import unittest

import tlstest
from test_cluster import ClusterBase, NatsServer


class TlsCluster(ClusterBase):
    def setUp(self):
        self.certs = tlstest.make_certs()
        self.addCleanup(shutil.rmtree, self.certs, True)
        c = lambda name: os.path.join(self.certs, name)  # noqa: E731
        self.nats_args = ["--tlsverify", "--tlscert", c("server.crt"), "--tlskey", c("server.key"),
                          "--tlscacert", c("ca.crt")]
        self.node_config_a = self.node_config_b = (
            "cluster_tls_cafile %s\ncluster_tls_certfile %s\ncluster_tls_keyfile %s\n"
            % (c("ca.crt"), c("client.crt"), c("client.key")))
        super().setUp()

    def make_nats(self):
        return NatsServer(extra_args=self.nats_args)

    def node_config(self, name):
        return super().node_config(name).replace("nats://", "tls://")

    def test_messages_cross_over_tls_unchanged(self):
        payload = os.urandom(4096)  # e.g. a sealed envelope: opaque to the broker
        for qos in (0, 1, 2):
            got = self.cross("tls/%d" % qos, payload, qos=qos)
            self.assertEqual((got.payload, got.qos), (payload, qos))

    def test_node_without_client_certificate_is_refused(self):
        self.refused(self.tls_url(), "cluster_tls_cafile %s\n" % os.path.join(self.certs, "ca.crt"),
                     "cluster_tls_")

    def test_node_trusting_another_ca_is_refused(self):
        c = lambda name: os.path.join(self.certs, name)  # noqa: E731
        self.refused(self.tls_url(),
                     "cluster_tls_cafile %s\ncluster_tls_certfile %s\ncluster_tls_keyfile %s\n"
                     % (c("wrongca.crt"), c("client.crt"), c("client.key")), "cluster_tls_")

    def tls_url(self):
        return "tls://127.0.0.1:%d" % self.nats.port


if __name__ == "__main__":
    unittest.main()
