"""The Security Center's reserved topics ($sc/...) in a real moatd.

A device publishes key requests only on $sc/req/<its own client id> and reads
answers only on $sc/resp/<its own client id>; only the identity named by
sc_username answers, and only it publishes $sc/revoked, $sc/keys and
$sc/epoch/<group>, which everyone may read. The ACL file cannot open or
close these rules (an ACL granting everything is in force here).
"""
import unittest

from authkit import FileBrokerTest, moat_passwd_file
from moattest import PUBACK, SUBACK

NOT_AUTHORIZED = 0x87


class ScTopics(FileBrokerTest):
    ALLOW_ANONYMOUS = False
    CONFIG = "password_file {dir}/passwd\nacl_file {dir}/acl\nsc_username sc\n"
    FILES = {"acl": "pattern readwrite #\npattern readwrite $sc/#\n"}

    def prepare(self):
        moat_passwd_file(self.path("passwd"), [("alice", "a-pw"), ("bob", "b-pw"), ("sc", "sc-pw")])

    def login(self, client_id, user):
        return self.client(client_id, username=user, password=user[0] + "-pw" if user != "sc" else "sc-pw")

    def puback(self, p, topic, payload=b"x", retain=False):
        pid = p.publish(topic, payload, qos=1, retain=retain, complete=False)
        ack = p.expect(PUBACK)
        self.assertEqual(ack.pid, pid)
        return ack.rc

    def test_key_request_and_answer_reach_only_their_parties(self):
        center = self.login("moat-sc", "sc")
        self.assertEqual(center.subscribe(("$sc/req/#", 1)), [1])
        dev1 = self.login("dev1", "alice")
        dev2 = self.login("dev2", "bob")
        self.assertEqual(dev1.subscribe(("$sc/resp/dev1", 1)), [1])
        self.assertEqual(dev2.subscribe(("$sc/resp/dev1", 1), ("$sc/resp/+", 1), ("$sc/#", 1)),
                         [NOT_AUTHORIZED] * 3)
        self.assertEqual(self.puback(dev1, "$sc/req/dev1", b"get-key"), 0)
        got = center.expect_publish()
        self.assertEqual((got.topic, got.payload), ("$sc/req/dev1", b"get-key"))
        self.assertEqual(self.puback(dev2, "$sc/req/dev1", b"forged"), NOT_AUTHORIZED)
        self.assertEqual(self.puback(center, "$sc/resp/dev1", b"sealed key"), 0)
        self.assertEqual(dev1.expect_publish().payload, b"sealed key")
        dev2.expect_nothing(0.5)
        center.expect_nothing(0.3)  # the forged request never arrived

    def test_only_the_center_announces_and_everyone_reads(self):
        dev1 = self.login("dev1", "alice")
        for topic in ("$sc/revoked", "$sc/keys", "$sc/epoch/g1", "$sc/resp/dev1", "$sc/other"):
            self.assertEqual(self.puback(dev1, topic, retain=True), NOT_AUTHORIZED, topic)
        center = self.login("moat-sc", "sc")
        # accepted (0x10: nobody subscribed yet; the message is retained)
        self.assertLess(self.puback(center, "$sc/keys", b"keys 7", retain=True), 0x80)
        self.assertLess(self.puback(center, "$sc/epoch/g1", b"epoch 3", retain=True), 0x80)
        self.assertEqual(self.puback(center, "$sc/other", b"?"), NOT_AUTHORIZED)
        dev2 = self.login("dev2", "bob")
        self.assertEqual(dev2.subscribe(("$sc/keys", 1), ("$sc/epoch/+", 1), ("$sc/revoked", 1)),
                         [1, 1, 1])
        got = sorted((m.topic, m.payload) for m in (dev2.expect_publish(), dev2.expect_publish()))
        self.assertEqual(got, [("$sc/epoch/g1", b"epoch 3"), ("$sc/keys", b"keys 7")])
        # $sc/revoked is for signed lists only (test_sc_revocation.py): "list 7" is refused
        self.assertEqual(self.puback(center, "$sc/revoked", b"list 7", retain=True), NOT_AUTHORIZED)


if __name__ == "__main__":
    unittest.main()
