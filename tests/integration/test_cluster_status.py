"""The cluster's node status (docs/cluster.md, "Node status"): a real
nats-server -js and two nodes. `$SYS/broker/cluster/...` sums every node's
clients; `moat ctl cluster status` (text and --json, read from NATS) shows
the nodes with their clients, the streams and buckets (a share's consumer
with its filter), and a node consumer's lag that grows while its node is
stopped, then drains to its restored persistent session when it is back.
What NATS holds is printed with its control bytes escaped; the NATS
permissions docs/cli.md lists suffice, and an error NATS answers (a
permission missing, no JetStream) ends the command with status 1."""
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import unittest

from test_cluster import NATS_SERVER, ClusterBase
from test_cluster_shared import js_request
from moattest import Broker, free_port

MOAT = os.environ.get("MOAT", "moat")
# a node's status is written every 2 s and counts as silent after 10 s
SETTLE_S = 30.0


class ClusterStatusTest(ClusterBase):
    node_config_a = "sys_interval 1\n"

    def ctl(self, *args):
        out = run_ctl(self.nats.port, *args)
        self.assertEqual(out.returncode, 0, out.stderr.decode())
        return out.stdout.decode()

    def status(self):
        return json.loads(self.ctl("--json"))

    def wait_status(self, ok, what):
        deadline = time.monotonic() + SETTLE_S
        while time.monotonic() < deadline:
            st = self.status()
            if ok(st):
                return st
            time.sleep(0.5)
        self.fail("%s never showed: %s" % (what, json.dumps(st, indent=1)))

    @staticmethod
    def node(st, name):
        return next((n for n in st["nodes"] if n["node"] == name), None)

    @staticmethod
    def consumer(st, stream, name):
        s = next(s for s in st["streams"] if s["name"] == stream)
        return next((c for c in s.get("consumers", []) if c["name"] == name), None)

    def test_sys_totals_sum_every_node(self):
        sys_sub = self.client("a", "sys")
        sys_sub.subscribe(("$SYS/broker/cluster/#", 0))
        for i in range(2):
            self.client("b", "on-b-%d" % i)
        want = {"$SYS/broker/cluster/nodes": b"2",
                "$SYS/broker/cluster/clients/connected": b"3"}
        got = {}
        deadline = time.monotonic() + SETTLE_S
        while time.monotonic() < deadline and any(got.get(t) != v for t, v in want.items()):
            try:
                p = sys_sub.expect_publish(timeout=1.0)
                got[p.topic] = p.payload
            except socket.timeout:
                pass
        for t, v in want.items():
            self.assertEqual(got.get(t), v, t)
        self.assertIn("$SYS/broker/cluster/publish/messages/received", got)

    def test_ctl_status_shows_nodes_streams_and_lag(self):
        # node b keeps its persistent session, so its interest stays while it is down
        port = self.restart_with_store("b")
        self.client("a", "on-a")
        for i in range(2):
            self.client("b", "on-b-%d" % i)
        sub = self.client("b", "sub-b", clean=False, props=[("session_expiry", 600)])
        sub.subscribe(("lag/#", 1))
        self.link(sub, "lag/probe")
        st = self.wait_status(
            lambda st: (self.node(st, "a") or {}).get("clients") == 1 and
            (self.node(st, "b") or {}).get("clients") == 3,
            "node a with 1 client and b with 3")
        self.assertTrue(self.node(st, "a")["alive"] and self.node(st, "b")["alive"])
        names = [s["name"] for s in st["streams"]]
        self.assertEqual(names, ["test_msgs", "test_shares", "KV_test_retained",
                                 "KV_test_interest", "KV_test_nodes"])
        self.assertTrue(all(s["exists"] for s in st["streams"]))
        self.assertEqual(self.consumer(st, "test_msgs", "b")["pending"], 0)
        share = self.client("a", "share-a")
        share.subscribe(("$share/g/s/#", 1))
        st = self.wait_status(
            lambda st: any(c.get("share") == "$share/g/s/#"
                           for c in next(s for s in st["streams"]
                                         if s["name"] == "test_shares")["consumers"]),
            "the share's consumer")
        text = self.ctl()
        self.assertIn("cluster test", text)
        self.assertRegex(text, r"(?m)^b\s+alive\s+3\s")
        self.assertRegex(text, r"(?m)^test_msgs\s+messages\s+\d+")
        self.assertRegex(text, r"(?m)^\s+consumer b\s+pending 0\s")

        self.nodes["b"].stop(check=True)
        pub = self.client("a", "pub")
        for i in range(10):
            pub.publish("lag/x", b"%d" % i, qos=1)
        first = self.wait_status(
            lambda st: self.consumer(st, "test_msgs", "b")["pending"] >= 10, "a lag of 10")
        for i in range(10):
            pub.publish("lag/x", b"%d" % i, qos=1)
        later = self.wait_status(
            lambda st: self.consumer(st, "test_msgs", "b")["pending"] >= 20, "a lag of 20")
        self.assertGreater(self.consumer(later, "test_msgs", "b")["pending"],
                           self.consumer(first, "test_msgs", "b")["pending"])
        st = self.wait_status(lambda st: not self.node(st, "b")["alive"], "node b silent")
        self.assertTrue(self.node(st, "a")["alive"])
        self.assertRegex(self.ctl(), r"(?m)^b\s+silent\s")

        self.start_node("b", port=port)
        back = self.client("b", "sub-b", clean=False, props=[("session_expiry", 600)])
        self.assertEqual(len(back.drain_publishes(quiet_s=2.0)), 20)  # what waited for it
        self.wait_status(
            lambda st: self.node(st, "b")["alive"] and
            self.consumer(st, "test_msgs", "b")["pending"] == 0, "node b back, no lag")

    def test_ctl_escapes_control_bytes_from_nats(self):
        # a consumer whoever may write to NATS created, described with terminal controls
        described = "\x1b[2J\x85\x07x"
        config = {"durable_name": "odd", "description": described, "ack_policy": "explicit",
                  "filter_subject": "test.g.odd.>"}
        answer = js_request(self.nats.port, "$JS.API.CONSUMER.DURABLE.CREATE.test_shares.odd",
                            json.dumps({"stream_name": "test_shares", "config": config}).encode())
        self.assertNotIn("error", answer)
        escaped = r"\x1b[2J\xc2\x85\x07x"
        text = self.ctl()
        self.assertIn("share " + escaped, text)
        self.assertNotRegex(text, "[\x00-\x09\x0b-\x1f\x7f-\x9f]")
        self.assertEqual(self.consumer(self.status(), "test_shares", "odd")["share"], escaped)


def run_ctl(port, *args, user=None):
    return subprocess.run(
        [MOAT, "ctl", "cluster", "status",
         "--nats", "nats://%s127.0.0.1:%d" % (user + "@" if user else "", port),
         "--cluster", "test"] + list(args),
        capture_output=True, timeout=60)


# what docs/cli.md says `moat ctl cluster status` needs, for cluster "test"
CTL_PUBLISH = ["$JS.API.STREAM.NAMES", "$JS.API.STREAM.INFO.*",
               "$JS.API.CONSUMER.LIST.test_msgs", "$JS.API.CONSUMER.LIST.test_shares",
               "$JS.API.CONSUMER.CREATE.KV_test_nodes", "$JS.API.CONSUMER.CREATE.KV_test_nodes.>",
               "$JS.API.CONSUMER.DELETE.KV_test_nodes.*", "$JS.API.DIRECT.GET.KV_test_nodes.>"]


@unittest.skipUnless(os.path.exists(NATS_SERVER), "nats-server is not installed (make deps)")
class ClusterStatusPermissionsTest(unittest.TestCase):
    """moat ctl cluster status with the NATS permissions docs/cli.md lists,
    with one of them missing, and against a server without JetStream."""

    def start_nats(self, *args):
        port = free_port()
        nats = subprocess.Popen([NATS_SERVER, "-a", "127.0.0.1", "-p", str(port)] + list(args),
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.addCleanup(nats.wait, 10)
        self.addCleanup(nats.terminate)
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                return port
            except OSError:
                self.assertLess(time.monotonic(), deadline, "nats-server did not listen")
                time.sleep(0.05)

    def test_documented_permissions_suffice_and_one_less_fails(self):
        store = tempfile.mkdtemp(prefix="moattest-nats-")
        self.addCleanup(shutil.rmtree, store, True)
        users = [{"user": "moat", "password": "moat-pw"},
                 {"user": "ctl", "password": "ctl-pw",
                  "permissions": {"publish": {"allow": CTL_PUBLISH},
                                  "subscribe": {"allow": ["_INBOX.>"]}}},
                 {"user": "less", "password": "less-pw",
                  "permissions": {"publish": {"allow": CTL_PUBLISH[:-1]},
                                  "subscribe": {"allow": ["_INBOX.>"]}}}]
        conf = os.path.join(store, "nats.conf")
        with open(conf, "w") as f:  # JSON is valid NATS configuration
            json.dump({"jetstream": {"store_dir": store}, "authorization": {"users": users}}, f)
        port = self.start_nats("-c", conf)
        node = Broker("cluster_url nats://moat:moat-pw@127.0.0.1:%d\ncluster_name test\n"
                      "node_name a\n" % port)
        self.addCleanup(node.cleanup)
        self.addCleanup(node.stop)
        node.start()
        deadline = time.monotonic() + SETTLE_S
        while True:
            out = run_ctl(port, "--json", user="ctl:ctl-pw")
            self.assertEqual(out.returncode, 0, out.stderr.decode())
            if [n["node"] for n in json.loads(out.stdout)["nodes"]] == ["a"]:
                break
            self.assertLess(time.monotonic(), deadline, "node a never showed")
            time.sleep(0.5)
        out = run_ctl(port, user="less:less-pw")  # cannot read a node's status
        self.assertEqual(out.returncode, 1, out.stdout.decode())
        self.assertIn("cannot read a node's status", out.stderr.decode())

    def test_nats_error_is_printed_with_status_1(self):
        # a NATS server without JetStream answers every JetStream request
        # with "no responders": an error, not "no node wrote its status yet"
        out = run_ctl(self.start_nats())
        self.assertEqual(out.returncode, 1, out.stdout.decode())
        self.assertIn("cannot read the nodes' bucket", out.stderr.decode())
        self.assertEqual(out.stdout, b"")

if __name__ == "__main__":
    unittest.main()
