"""Topic policies in the broker: the attribute policy engine the Security
Center releases keys by (src/policy) also decides PUBLISH, SUBSCRIBE and every
delivery, over the attributes and roles of the client's token, so broker
authorization and key release never disagree. Real moatd, tokens signed with
Ed25519 by python3-jwt, a JSON policy file (docs/e2e.md "Topic policies").
"""
import json
import os
import shutil
import subprocess
import tempfile
import time
import unittest

from authkit import FileBrokerTest, Keys
from moattest import PUBACK, Broker, is_mosquitto

NOT_AUTHORIZED = 0x87

POLICIES = {"policies": [
    {"filter": "plant/+/temp",
     "publish": "role == sensor && site == \"plant-7\"",
     "subscribe": "role in [historian, operator]"},
    {"filter": "plant/+/valve",
     "publish": "role == operator",
     "subscribe": "role == actuator && site == \"plant-7\""},
]}


class TopicPolicies(FileBrokerTest):
    ALLOW_ANONYMOUS = False
    CONFIG = ("auth_token_key {dir}/ed25519.pub.pem\nauth_token_audience moat-test\n"
              "topic_policy_file {dir}/policies.json\n")
    FILES = {"policies.json": json.dumps(POLICIES)}

    def prepare(self):
        self.keys = Keys(self.dir)

    def device(self, client_id, roles, **attrs):
        now = int(time.time())
        token = self.keys.token({"sub": client_id, "aud": "moat-test", "exp": now + 300, "iat": now,
                                 "roles": roles, "attrs": attrs})
        return self.client(client_id, username="t", password=token)

    def puback(self, p, topic):
        pid = p.publish(topic, b"21.5", qos=1, complete=False)
        ack = p.expect(PUBACK)
        self.assertEqual(ack.pid, pid)
        return ack.rc

    def test_publish_and_subscribe_follow_the_attributes(self):
        historian = self.device("hist", ["historian"])
        self.assertEqual(historian.subscribe(("plant/+/temp", 1), ("plant/+/valve", 1)),
                         [1, NOT_AUTHORIZED])
        sensor = self.device("s7", ["sensor"], site="plant-7")
        stranger = self.device("s8", ["sensor"], site="plant-8")
        self.assertLess(self.puback(sensor, "plant/7/temp"), 0x80)
        self.assertEqual(historian.expect_publish().topic, "plant/7/temp")
        self.assertEqual(self.puback(stranger, "plant/8/temp"), NOT_AUTHORIZED)
        self.assertEqual(self.puback(sensor, "plant/7/valve"), NOT_AUTHORIZED)
        # deny by default: no policy covers the topic
        self.assertEqual(self.puback(sensor, "elsewhere"), NOT_AUTHORIZED)
        historian.expect_nothing(0.3)

    def test_a_role_as_attribute_and_absent_attributes(self):
        operator = self.device("op", ["operator"])
        valve = self.device("v7", ["actuator"], site="plant-7")
        no_site = self.device("v0", ["actuator"])
        self.assertEqual(valve.subscribe(("plant/7/valve", 1)), [1])
        self.assertEqual(no_site.subscribe(("plant/7/valve", 1)), [NOT_AUTHORIZED])
        self.assertLess(self.puback(operator, "plant/7/valve"), 0x80)
        self.assertEqual(valve.expect_publish().topic, "plant/7/valve")


@unittest.skipIf(is_mosquitto(), "moatd's topic policies")
class BadPolicyFile(unittest.TestCase):
    def test_a_weak_algorithm_stops_the_start(self):
        d = tempfile.mkdtemp(prefix="moatpol-")
        self.addCleanup(shutil.rmtree, d, True)
        with open(os.path.join(d, "p.json"), "w") as f:
            json.dump({"policies": [{"filter": "a", "alg": "des"}]}, f)
        b = Broker("topic_policy_file %s/p.json\n" % d)
        self.addCleanup(b.cleanup)
        run = subprocess.run(b.command(), capture_output=True, text=True, timeout=20)
        self.assertNotEqual(run.returncode, 0)
        self.assertIn("policies[0].alg", run.stdout + run.stderr)
        self.assertIn("DES", run.stdout + run.stderr)


if __name__ == "__main__":
    unittest.main()
