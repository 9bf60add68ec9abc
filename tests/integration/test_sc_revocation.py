"""Revocation pushed by the Security Center on $sc/revoked, in a real moatd.

The list is a COSE_Sign1 (Ed25519, external_aad ["moat/1", "$sc/revoked"])
built here with python3-cbor2 and python3-cryptography, signed with the key
whose public half is moatd's sc_public_key. A revoked client is disconnected
at once (DISCONNECT 0x87), its persistent session and subscriptions end, and
it is refused afterwards; lists with a bad signature or an old serial are
refused and not retained; the retained list survives a restart (persistence).
"""
import os
import time
import unittest

import cbor2
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from authkit import FileBrokerTest, moat_passwd_file
from moattest import PUBACK

NOT_AUTHORIZED = 0x87


def signed_list(key, serial, client_ids=(), kid=b"moat-sc"):
    payload = cbor2.dumps({1: serial, 2: int(time.time()), 3: int(time.time()) + 3600,
                           4: list(client_ids)})
    prot = cbor2.dumps({1: -8, 4: kid}, canonical=True)
    tbs = cbor2.dumps(["Signature1", prot, cbor2.dumps(["moat/1", "$sc/revoked"]), payload])
    return cbor2.dumps(cbor2.CBORTag(18, [prot, {}, payload, key.sign(tbs)]))


class Revocation(FileBrokerTest):
    ALLOW_ANONYMOUS = False
    CONFIG = ("password_file {dir}/passwd\nsc_username sc\nsc_public_key {dir}/sc.pub.pem\n"
              "persistence true\npersistence_location {dir}/store\n")

    def prepare(self):
        moat_passwd_file(self.path("passwd"), [("alice", "a-pw"), ("bob", "b-pw"), ("sc", "sc-pw")])
        self.key = Ed25519PrivateKey.generate()
        self.write_file("sc.pub.pem", self.key.public_key().public_bytes(
            Encoding.PEM, PublicFormat.SubjectPublicKeyInfo))

    def login(self, client_id, user, **kw):
        return self.client(client_id, username=user, password=user[0] + "-pw" if user != "sc" else "sc-pw",
                           **kw)

    def push(self, center, env):
        pid = center.publish("$sc/revoked", env, qos=1, retain=True, complete=False)
        ack = center.expect(PUBACK)
        self.assertEqual(ack.pid, pid)
        return ack.rc

    def test_revoked_client_is_disconnected_and_its_session_ends(self):
        dev1 = self.login("dev1", "alice", clean=False, props={"session_expiry": 3600})
        dev1.subscribe(("data/#", 1))
        dev2 = self.login("dev2", "bob")
        center = self.login("moat-sc", "sc")
        started = time.monotonic()
        self.assertLess(self.push(center, signed_list(self.key, 1, ["dev1"])), 0x80)
        dev1.expect_closed(timeout=1.0, disconnect_rc=NOT_AUTHORIZED)
        self.assertLess(time.monotonic() - started, 1.0)
        dev2.ping()	# others stay
        self.assertIn("client id revoked by the Security Center", self.broker.log())
        again = self.peer()
        ack = again.connect("dev1", expect_rc=None, clean=False, username="alice", password="a-pw",
                            props={"session_expiry": 3600})
        self.assertEqual(ack.rc, NOT_AUTHORIZED)
        # a newer list without dev1: it may come back, and its old session is gone
        self.assertLess(self.push(center, signed_list(self.key, 2, [])), 0x80)
        time.sleep(0.2)
        back = self.peer()
        ack = back.connect("dev1", clean=False, username="alice", password="a-pw",
                           props={"session_expiry": 3600})
        self.assertEqual(ack.session_present, 0)

    def test_forged_or_stale_lists_are_refused_and_not_retained(self):
        center = self.login("moat-sc", "sc")
        dev2 = self.login("dev2", "bob")
        forged = signed_list(Ed25519PrivateKey.generate(), 5, ["dev2"])
        self.assertEqual(self.push(center, forged), NOT_AUTHORIZED)
        self.assertLess(self.push(center, signed_list(self.key, 7, [])), 0x80)
        self.assertEqual(self.push(center, signed_list(self.key, 6, ["dev2"])), NOT_AUTHORIZED)
        dev2.ping()
        reader = self.login("reader", "alice")
        reader.subscribe(("$sc/revoked", 1))
        kept = reader.expect_publish()
        self.assertEqual(cbor2.loads(cbor2.loads(kept.payload).value[2])[1], 7)

    def test_the_retained_list_is_enforced_after_a_restart(self):
        center = self.login("moat-sc", "sc")
        self.assertLess(self.push(center, signed_list(self.key, 3, ["dev1"])), 0x80)
        center.close()
        self.broker.stop()
        self.broker.start()
        p = self.peer()
        self.assertEqual(p.connect("dev1", expect_rc=None, username="alice", password="a-pw").rc,
                         NOT_AUTHORIZED)
        self.assertIn("revocation list 3 restored", self.broker.log())


if __name__ == "__main__":
    unittest.main()
