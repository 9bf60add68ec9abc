"""Bridges and the broker's reserved areas (docs/bridge.md), without a real
remote broker: what a try_private client (mosquitto's bridge CONNECT, protocol
level 0x84) may publish under $SYS, and that nobody else can take over the
local session of a bridge configured in this broker."""

import time
import unittest

from moattest import Broker, BrokerTest, Peer, PUBACK, main, free_port
from authkit import FileBrokerTest, audit_lines

NOT_AUTHORIZED = 0x87
AREA = "$SYS/broker/connection/"


class NotifyMixin:
    def bridge_client(self, client_id, **kw):
        """A connected v3.1.1 client with mosquitto's bridge bit (try_private)."""
        p = self.peer(4)
        p.connect(client_id, version=0x84, **kw)
        return p

    def retained_notifications(self):
        w = self.client("notify-watch")
        w.subscribe(AREA + "#", qos=1)
        got = sorted((p.topic, p.payload) for p in w.drain_publishes())
        w.disconnect()
        return got


class TryPrivateAnonymous(NotifyMixin, BrokerTest):
    """allow_anonymous true, no ACL: an anonymous bridge gets no $SYS rights."""

    def test_anonymous_bridge_cannot_publish_notifications(self):
        b = self.bridge_client("site-a")
        b.publish(AREA + "site-a/state", b"1", qos=1, retain=True)
        b.publish(AREA + "other/state", b"1", qos=1, retain=True)
        self.assertEqual(self.retained_notifications(), [])

    def test_bridge_with_a_username_publishes_only_its_own(self):
        b = self.bridge_client("site-a", username="bridge")
        b.publish(AREA + "site-a/state", b"1", qos=1, retain=True)
        b.publish(AREA + "other/state", b"1", qos=1, retain=True)
        b.publish(AREA + "site-a", b"1", qos=1, retain=True)  # not under <id>/
        b.publish(AREA + "site-ab/state", b"1", qos=1, retain=True)
        b.publish("$SYS/broker/uptime", b"1", qos=1, retain=True)
        self.assertEqual(self.retained_notifications(), [(AREA + "site-a/state", b"1")])

    def test_plain_client_with_a_username_gets_no_notifications(self):
        c = self.client("site-a", version=4, username="bridge")
        c.publish(AREA + "site-a/state", b"1", qos=1, retain=True)
        self.assertEqual(self.retained_notifications(), [])

    def test_will_in_sys_only_for_a_bridge_on_its_own_notification(self):
        will = {"topic": "$SYS/broker/uptime", "payload": b"0", "qos": 1, "retain": True}
        p = self.peer(5)
        p.connect("plain", expect_rc=NOT_AUTHORIZED, will=will)
        p.expect_closed()
        own = dict(will, topic=AREA + "site-a/state")
        for kw in ({"will": own}, {"will": dict(own, topic=AREA + "other/state"), "username": "b"}):
            p = self.peer(4)
            p.connect("site-a", version=0x84, expect_rc=5, **kw)  # 3.1.1: not authorized
            p.expect_closed()
        b = self.bridge_client("site-a", username="bridge", will=own)
        b.close()  # without DISCONNECT: the Will is published
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not self.retained_notifications():
            time.sleep(0.1)
        self.assertEqual(self.retained_notifications(), [(AREA + "site-a/state", b"0")])


class TryPrivateAcl(NotifyMixin, FileBrokerTest):
    """An ACL that grants the area lets an anonymous bridge write its own part."""

    ALLOW_ANONYMOUS = True
    CONFIG = "acl_file {dir}/acl\n"
    FILES = {"acl": "topic readwrite $SYS/broker/connection/#\ntopic read $SYS/#\n"}

    def test_acl_granted_anonymous_bridge_publishes_only_its_own(self):
        b = self.bridge_client("site-a")
        b.publish(AREA + "site-a/state", b"1", qos=1, retain=True)
        b.publish(AREA + "other/state", b"1", qos=1, retain=True)
        self.assertEqual(self.retained_notifications(), [(AREA + "site-a/state", b"1")])


class BridgeLocalSession(BrokerTest):
    """A bridge whose remote is down: its local link is up, its session
    (local.site-bridge, persistent: cleansession false) is the link's alone."""

    CONFIG = ("persistence true\npersistence_location store\n"
              "connection site\naddress 127.0.0.1:%d\nremote_clientid site-bridge\n"
              "restart_timeout 1\nlocal_username bridge-local\n"
              "topic sensors/# out 1\n" % free_port())
    LINK_UP = "client local.site-bridge connected"

    def wait_link(self):
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.LINK_UP in self.broker.log():
                return
            time.sleep(0.1)
        self.fail("the bridge's local link did not connect:\n" + self.broker.log()[-4000:])

    def test_nobody_else_takes_the_local_session(self):
        self.wait_link()
        for version, kw, rc in ((5, {}, 0x87), (4, {}, 5), (5, {"username": "u"}, 0x87)):
            p = self.peer(version)
            p.connect("local.site-bridge", expect_rc=rc, clean=False, **kw)
            p.expect_closed()
        time.sleep(0.3)
        log = self.broker.log()
        self.assertEqual(log.count(self.LINK_UP), 1, log)	# never taken over
        self.assertNotIn("starts clean", log)
        self.assertIn("the client id of a bridge's local session", log)

    def test_restart_gives_the_restored_session_back_to_the_link(self):
        self.wait_link()
        self.broker.stop(check=True)
        self.broker.start()
        self.wait_link()	# not refused as a client's session
        self.assertNotIn("holds the bridge's local session", self.broker.log())


class BridgeScTopics(FileBrokerTest):
    """The local link is above the ACL, not above the Security Center's $sc/
    lock-down: a bridge configured to carry $sc/# out does not get it."""

    ALLOW_ANONYMOUS = True
    CONFIG = ("audit_log file {dir}/audit.log\n"
              "connection site\naddress 127.0.0.1:%d\nremote_clientid site-bridge\n"
              "restart_timeout 1\ntopic $sc/# out 1\ntopic sensors/# out 1\n" % free_port())

    def test_local_link_cannot_subscribe_to_sc(self):
        deadline = time.monotonic() + 10
        denied = []
        while time.monotonic() < deadline and not denied:
            time.sleep(0.1)
            denied = [e for e in audit_lines(self.path("audit.log"))
                      if e.get("event") == "acl" and e.get("client_id") == "local.site-bridge"
                      and e.get("topic") == "$sc/#"]
        self.assertEqual([e["result"] for e in denied], ["deny"], self.broker.log()[-3000:])


class BridgeFullStore(unittest.TestCase):
    """This broker's store is full when the bridge brings a QoS 1 message in:
    the local link is closed unacknowledged (sent again later), not answered
    0x97, which would make the bridge drop a message the remote broker was
    told is delivered."""

    def setUp(self):
        self.far = Broker("")
        self.addCleanup(self.far.cleanup)
        self.far.start()
        self.addCleanup(self.far.stop, False)
        self.near = Broker("persistence true\npersistence_location store\n"
                           "persistence_max_bytes 2000000\n"
                           "connection site\naddress 127.0.0.1:%d\nremote_clientid site-bridge\n"
                           "remote_username near\n"  # its notification Will is in $SYS: not anonymous
                           "restart_timeout 1\ntopic cmd/# in 1\n" % self.far.port)
        self.addCleanup(self.near.cleanup)
        self.near.start()
        self.addCleanup(self.near.stop, False)

    def wait_log(self, broker, text):
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if text in broker.log():
                return
            time.sleep(0.1)
        self.fail("%r not in the log:\n%s" % (text, broker.log()[-3000:]))

    def test_full_store_closes_the_local_link_instead_of_refusing(self):
        self.wait_log(self.far, "client site-bridge connected")
        self.wait_log(self.near, "client local.site-bridge connected")
        pub = Peer(self.near.port, version=5)
        self.addCleanup(pub.close)
        pub.connect("filler")
        for i in range(200):
            pid = pub.publish("fill/%d" % i, b"z" * 60000, qos=1, retain=True, complete=False)
            if pub.expect(PUBACK).rc == 0x97:
                break
            time.sleep(0.01)	# lets the commit thread measure the store's size
        else:
            self.fail("the store never reported full")
        far_pub = Peer(self.far.port, version=5)
        self.addCleanup(far_pub.close)
        far_pub.connect("far-pub")
        far_pub.publish("cmd/x", b"must not be lost", qos=1)
        self.wait_log(self.near, "the store is full")
        log = self.near.log()
        self.assertNotIn("refused a forwarded message", log)


if __name__ == "__main__":
    main()
