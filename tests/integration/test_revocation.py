"""Rights taken away by a reload (SIGHUP) apply to what was granted before:
retained messages whose author may no longer publish them (CVE-2018-12546),
subscriptions of connected and of offline sessions (CVE-2021-34434)."""
import os
import signal
import time

import moattest as mt

ACL_BEFORE = """user alice
topic readwrite r/#
user bob
topic read r/#
topic read q/#
"""
ACL_AFTER = """user alice
topic read r/#
user bob
topic read r/#
"""


class TestRevocation(mt.BrokerTest):

    def setUp(self):
        self.acl = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                ".revocation-%d.acl" % os.getpid())
        with open(self.acl, "w") as f:
            f.write(ACL_BEFORE)
        self.addCleanup(os.unlink, self.acl)
        self.CONFIG = "acl_file %s\n" % self.acl
        super().setUp()

    def reload(self, text):
        with open(self.acl, "w") as f:
            f.write(text)
        self.broker.proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 5
        while "reloaded the password" not in self.broker.log() and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.2)   # workers adopt the new set at their next pass

    def test_retained_message_of_revoked_author_not_delivered(self):
        alice = self.client("alice", username="alice")
        alice.publish("r/state", b"on", qos=1, retain=True)
        early = self.client("b1", username="bob")
        early.subscribe("r/#", qos=1)
        self.assertEqual(early.expect_publish().payload, b"on")
        self.reload(ACL_AFTER)   # alice may no longer write r/#
        late = self.client("b2", username="bob")
        late.subscribe("r/#", qos=1)
        late.expect_nothing(0.5)

    def test_subscription_revoked_for_connected_session(self):
        bob = self.client("b", username="bob")
        bob.subscribe("q/#", qos=1)
        self.reload(ACL_AFTER)   # bob may no longer read q/#
        self.assertIn("revoked", self.broker.log())
        # nothing matches any more: even with the ACL widened again no message arrives
        self.reload(ACL_BEFORE)
        alice = self.client("a", username="alice")
        alice.send(alice.publish_bytes("q/x", b"late", qos=0))
        bob.expect_nothing(0.5)

    def test_subscription_revoked_for_offline_session(self):
        bob = self.client("bo", username="bob", clean=False, props={"session_expiry": 60})
        bob.subscribe("q/#", qos=1)
        bob.disconnect()
        self.reload(ACL_AFTER)
        self.reload(ACL_BEFORE)   # the right comes back, the subscription does not
        again = self.peer()
        ack = again.connect("bo", username="bob", clean=False, props={"session_expiry": 60})
        self.assertEqual(ack.session_present, 1)
        alice = self.client("a", username="alice")
        alice.send(alice.publish_bytes("q/x", b"x", qos=0))
        again.expect_nothing(0.5)
