"""Authorization with an acl_file: SUBSCRIBE, PUBLISH, Will, delivery,
retained messages, shared subscriptions, topic aliases, $SYS, patterns, and
SIGHUP reloads that take rights away (CVE-2021-34434).

Clients name their ACL user with an unchecked username (allow_anonymous true
and no password file), so each test chooses its identity freely."""

from moattest import main, CONNACK, PUBACK, PUBREC, PUBREL, PUBCOMP, Peer, free_port
from authkit import FileBrokerTest

NOT_AUTHORIZED = 0x87

ACL = """\
# anonymous clients
topic read pub/#

user alice
topic readwrite a/#
topic deny a/secret
topic write w/#
topic read r/#

user bob
topic readwrite a/#
topic readwrite b/#
topic readwrite r/#

user carol
topic read #

pattern readwrite c/%c/#
pattern read u/%u/#
"""


class Acl(FileBrokerTest):
    ALLOW_ANONYMOUS = True
    CONFIG = "acl_file {dir}/acl\n"
    FILES = {"acl": ACL}

    def alice(self, cid="alice", version=5, **kw):
        return self.client(cid, version=version, username="alice", **kw)

    def bob(self, cid="bob", version=5, **kw):
        return self.client(cid, version=version, username="bob", **kw)

    # ---- SUBSCRIBE ---------------------------------------------------------
    def test_subscribe_denied_per_filter_v5(self):
        a = self.alice()
        self.assertEqual(a.subscribe("a/x", "b/x", "a/#", "a/secret", "r/+", qos=1),
                         [1, NOT_AUTHORIZED, NOT_AUTHORIZED, NOT_AUTHORIZED, 1])
        b = self.bob()
        b.publish("b/x", b"no", qos=1)
        b.publish("a/secret", b"no", qos=1)
        b.publish("a/x", b"yes", qos=1)
        got = a.drain_publishes()
        self.assertEqual([(p.topic, p.payload) for p in got], [("a/x", b"yes")])

    def test_subscribe_denied_v311_0x80(self):
        a = self.alice(version=4)
        self.assertEqual(a.subscribe("b/x", "a/x", qos=1), [0x80, 1])
        self.bob().publish("b/x", b"no", qos=1)
        a.expect_nothing(0.6)

    # ---- PUBLISH -----------------------------------------------------------
    def test_publish_denied_v5_qos1_puback_0x87(self):
        b = self.bob()
        b.subscribe("b/#", "a/#", qos=1)
        a = self.alice()
        pid = a.pid()
        a.send(a.publish_bytes("b/x", b"no", qos=1, pid=pid))
        ack = a.expect(PUBACK)
        self.assertEqual((ack.pid, ack.rc), (pid, NOT_AUTHORIZED))
        a.publish("b/y", b"no0", qos=0)
        a.publish("a/x", b"yes", qos=1)
        got = b.drain_publishes()
        self.assertEqual([(p.topic, p.payload) for p in got], [("a/x", b"yes")])

    def test_publish_denied_v311_dropped(self):
        b = self.bob()
        b.subscribe("b/#", "a/#", qos=1)
        a = self.alice(version=4)
        a.publish("b/x", b"no", qos=1)   # acknowledged (v3 cannot refuse) but dropped
        a.publish("b/y", b"no0", qos=0)
        a.publish("a/x", b"yes", qos=1)
        got = b.drain_publishes()
        self.assertEqual([(p.topic, p.payload) for p in got], [("a/x", b"yes")])
        a.ping()

    def test_deny_wins_over_allow(self):
        b = self.bob()
        b.subscribe("a/#", qos=1)
        a = self.alice()
        pid = a.pid()
        a.send(a.publish_bytes("a/secret", b"no", qos=1, pid=pid))
        self.assertEqual(a.expect(PUBACK).rc, NOT_AUTHORIZED)
        self.assertEqual(a.subscribe("a/secret", "#", qos=0), [NOT_AUTHORIZED, NOT_AUTHORIZED])
        b.expect_nothing(0.5)

    def test_write_only_and_read_only_rules(self):
        a = self.alice()
        self.assertEqual(a.subscribe("w/x", qos=1), [NOT_AUTHORIZED])
        b = self.bob()
        b.subscribe("r/x", qos=1)
        pid = a.pid()
        a.send(a.publish_bytes("r/x", b"no", qos=1, pid=pid))
        self.assertEqual(a.expect(PUBACK).rc, NOT_AUTHORIZED)
        b.expect_nothing(0.4)

    # ---- patterns ------------------------------------------------------------
    def test_pattern_client_id_and_username(self):
        a = self.alice("dev7")
        self.assertEqual(a.subscribe("c/dev7/#", "c/dev8/#", "u/alice/+", "u/bob/+", qos=1),
                         [1, NOT_AUTHORIZED, 1, NOT_AUTHORIZED])
        c = self.client("carol", username="carol")
        c.subscribe("c/#", qos=1)
        b = self.bob("dev8")
        pid = b.pid()
        b.send(b.publish_bytes("c/dev7/x", b"no", qos=1, pid=pid))
        self.assertEqual(b.expect(PUBACK).rc, NOT_AUTHORIZED)
        b.publish("c/dev8/x", b"own", qos=1)
        got = c.drain_publishes()
        self.assertEqual([(p.topic, p.payload) for p in got], [("c/dev8/x", b"own")])
        self.assertEqual(a.drain_publishes(), [])

    def test_anonymous_section(self):
        p = self.client("anon")
        self.assertEqual(p.subscribe("pub/x", "a/x", qos=1), [1, NOT_AUTHORIZED])
        pid = p.pid()
        p.send(p.publish_bytes("pub/x", b"no", qos=1, pid=pid))
        self.assertEqual(p.expect(PUBACK).rc, NOT_AUTHORIZED)

    def test_sys_not_granted_by_hash(self):
        """carol has `topic read #`; that does not give $SYS."""
        c = self.client("carol", username="carol")
        self.assertEqual(c.subscribe("$SYS/#", "$SYS/broker/uptime", "#", qos=0),
                         [NOT_AUTHORIZED, NOT_AUTHORIZED, 0])
        self.assertEqual(c.drain_publishes(quiet_s=1.2), [])
        self.assertEqual(self.client("z", username="zed").subscribe("$SYS/#", qos=0),
                         [NOT_AUTHORIZED])

    # ---- Will ----------------------------------------------------------------
    def test_will_to_denied_topic_refused_at_connect(self):
        p = self.peer()
        p.send(p.connect_bytes("w1", username="alice", will={"topic": "b/will", "payload": b"x"}))
        self.assertEqual(p.expect(CONNACK).rc, NOT_AUTHORIZED)
        p.expect_closed()
        q = self.peer(4)
        q.send(q.connect_bytes("w2", username="alice", will={"topic": "r/will", "payload": b"x"}))
        self.assertEqual(q.expect(CONNACK).rc, 5)
        # an allowed Will is accepted and published
        b = self.bob()
        b.subscribe("a/will", qos=1)
        ok = self.alice("w3", will={"topic": "a/will", "payload": b"gone", "qos": 1})
        ok.sock.close()
        self.assertEqual(b.expect_publish(timeout=3).payload, b"gone")

    # ---- shared subscriptions, retained, aliases -------------------------------
    def test_shared_subscription_to_denied_filter_refused(self):
        """moquette#919: a refused $share/g/filter is never added, so it never
        receives a message."""
        a = self.alice()
        self.assertEqual(a.subscribe("$share/g/b/x", "$share/g/a/x", qos=1),
                         [NOT_AUTHORIZED, 1])
        b = self.bob()
        for i in range(4):
            b.publish("b/x", b"no%d" % i, qos=1)
        b.publish("a/x", b"yes", qos=1)
        got = a.drain_publishes()
        self.assertEqual([(p.topic, p.payload) for p in got], [("a/x", b"yes")])

    def test_retained_on_denied_topic_not_sent(self):
        b = self.bob()
        b.publish("b/ret", b"secret", qos=1, retain=True)
        b.publish("a/ret", b"open", qos=1, retain=True)
        a = self.alice()
        self.assertEqual(a.subscribe("b/ret", "a/ret", qos=1), [NOT_AUTHORIZED, 1])
        got = a.drain_publishes()
        self.assertEqual([(p.topic, p.payload) for p in got], [("a/ret", b"open")])

    def test_topic_alias_cannot_reach_denied_topic(self):
        """nanomq#2343: an alias set on an allowed topic, then reused with a
        denied topic name or re-pointed at one, is checked after resolution."""
        b = self.bob()
        b.subscribe("a/#", "b/#", qos=1)
        a = self.client("alias", username="alice", props={"topic_alias_maximum": 0})
        a.publish("a/x", b"one", qos=1, props={"topic_alias": 1})
        a.publish("", b"two", qos=1, props={"topic_alias": 1})
        pid = a.pid()
        a.send(a.publish_bytes("b/x", b"no", qos=1, pid=pid, props={"topic_alias": 1}))
        self.assertEqual(a.expect(PUBACK).rc, NOT_AUTHORIZED)
        # the alias now names b/x (set by the refused PUBLISH) or was not changed;
        # either way nothing reaches b/x
        pid = a.pid()
        a.send(a.publish_bytes("", b"three", qos=1, pid=pid, props={"topic_alias": 1}))
        self.assertIn(a.expect(PUBACK).rc, (0, NOT_AUTHORIZED))
        got = b.drain_publishes()
        self.assertNotIn("b/x", [p.topic for p in got])
        self.assertEqual([p.payload for p in got if p.topic == "a/x"][:2], [b"one", b"two"])

    # ---- identity change of a persistent session -----------------------------
    def resume_as_alice(self, cid):
        """A session subscribed to b/# as bob, taken offline."""
        s = self.client(cid, username="bob", clean=False, props={"session_expiry": 60})
        s.subscribe("b/#", qos=1)
        s.disconnect()

    def test_session_resumed_by_other_user_gets_no_new_message(self):
        """A session subscribed as bob, resumed by alice (same client id): alice
        has no read right on b/#, so nothing published afterwards reaches her."""
        self.resume_as_alice("shared-id")
        a = self.peer()
        a.connect("shared-id", clean=False, username="alice", props={"session_expiry": 60})
        self.bob("pub").publish("b/y", b"live", qos=1)
        self.assertEqual(a.drain_publishes(), [])

    def test_session_resumed_by_other_user_gets_no_queued_message(self):
        """Messages queued for bob's offline session are checked against the
        identity that receives them: alice gets none."""
        self.resume_as_alice("shared-id")
        self.bob("pub").publish("b/x", b"queued", qos=1)
        a = self.peer()
        a.connect("shared-id", clean=False, username="alice", props={"session_expiry": 60})
        self.assertEqual(a.drain_publishes(), [])

    # ---- SIGHUP ----------------------------------------------------------------
    def test_reload_revokes_existing_subscription(self):
        """CVE-2021-34434: after an ACL change, nothing more is delivered on a
        subscription the new rules do not allow."""
        b = self.bob()
        b.subscribe("b/#", qos=1)
        p = self.bob("pub")
        p.publish("b/x", b"before", qos=1)
        self.assertEqual(b.expect_publish().payload, b"before")
        self.write_file("acl", ACL.replace("topic readwrite b/#\n", "topic write b/#\n"))
        self.reload()
        p.publish("b/x", b"after", qos=1)
        self.assertEqual(b.drain_publishes(), [])
        self.assertEqual(b.subscribe("b/#", qos=1), [NOT_AUTHORIZED])

    def test_reload_revokes_offline_session_subscription(self):
        s = self.client("off", username="bob", clean=False, props={"session_expiry": 60})
        s.subscribe("b/#", "a/#", qos=1)
        s.disconnect()
        self.write_file("acl", ACL.replace("topic readwrite b/#\n", ""))
        self.reload()
        p = self.bob("pub")
        p.publish("b/x", b"revoked", qos=1)
        p.publish("a/x", b"kept", qos=1)
        r = self.peer()
        self.assertEqual(r.connect("off", clean=False, username="bob",
                                   props={"session_expiry": 60}).session_present, 1)
        p.publish("b/y", b"revoked2", qos=1)
        got = r.drain_publishes()
        self.assertEqual([(m.topic, m.payload) for m in got], [("a/x", b"kept")])

    def test_qos2_awaiting_pubrel_across_revoke(self):
        """mosquitto 2.0.12 changelog: an incomplete inbound QoS 2 message must not
        get through after its sender's rights were revoked. moatd routes a QoS 2
        message when the PUBLISH arrives (checked then); after the revoke and a
        reconnect the PUBREL only completes it, and a new PUBLISH is refused."""
        c = self.client("carol", username="carol")
        c.subscribe("b/#", qos=2)
        b = self.client("q2", username="bob", clean=False, props={"session_expiry": 60})
        pid = b.pid()
        b.send(b.publish_bytes("b/x", b"first", qos=2, pid=pid))
        self.assertEqual(b.expect(PUBREC).pid, pid)
        self.assertEqual([m.payload for m in c.drain_publishes()], [b"first"])
        b.sock.close()
        self.write_file("acl", ACL.replace("topic readwrite b/#\n", ""))
        self.reload()
        r = self.peer()
        self.assertEqual(r.connect("q2", clean=False, username="bob",
                                   props={"session_expiry": 60}).session_present, 1)
        r.send(r.ack_bytes(PUBREL, pid))
        self.assertEqual(r.expect(PUBCOMP).pid, pid)
        pid2 = r.pid() + 1
        r.send(r.publish_bytes("b/x", b"second", qos=2, pid=pid2))
        rec = r.expect(PUBREC)
        self.assertEqual((rec.pid, rec.rc), (pid2, NOT_AUTHORIZED))
        self.assertEqual(c.drain_publishes(), [])

    def test_reload_with_broken_acl_keeps_old_rules(self):
        self.write_file("acl", ACL + "topic frobnicate x/#\n")
        self.reload(expect_ok=False)
        a = self.alice()
        self.assertEqual(a.subscribe("a/x", "b/x", qos=1), [1, NOT_AUTHORIZED])

    def test_reload_grants_new_right(self):
        a = self.alice()
        self.assertEqual(a.subscribe("b/x", qos=1), [NOT_AUTHORIZED])
        self.write_file("acl", ACL.replace("topic read r/#\n", "topic read r/#\ntopic read b/#\n"))
        self.reload()
        self.assertEqual(a.subscribe("b/x", qos=1), [1])


class Placeholders(FileBrokerTest):
    """AWS IoT / nanomq#2344: ${clientid} and ${username} are not placeholders
    in moatd's ACL file: literal text, so they never inject a client's identity."""
    ALLOW_ANONYMOUS = True
    CONFIG = "acl_file {dir}/acl\n"
    FILES = {"acl": "pattern readwrite x/${clientid}/#\npattern readwrite y/${username}/#\n"
                    "pattern readwrite z/%c/#\n"}

    def test_dollar_brace_placeholders_are_literal(self):
        p = self.client("dev1", username="alice")
        self.assertEqual(p.subscribe("x/dev1/#", "y/alice/#", "x/+/#", "z/dev1/t", qos=1),
                         [NOT_AUTHORIZED, NOT_AUTHORIZED, NOT_AUTHORIZED, 1])


class SecondListener(FileBrokerTest):
    """CVE-2018-20145: the ACL applies on every listener, not only the first."""
    ALLOW_ANONYMOUS = True
    CONFIG = "acl_file {dir}/acl\n"
    FILES = {"acl": "user alice\ntopic readwrite a/#\n"}

    def setUp(self):
        self.port2 = free_port()
        self.CONFIG = Acl.CONFIG + "listener %d 127.0.0.1\n" % self.port2
        super().setUp()

    def test_acl_on_second_listener(self):
        for port in (self.port, self.port2):
            p = Peer(port)
            self.peers.append(p)
            p.connect("c%d" % port, username="alice")
            self.assertEqual(p.subscribe("a/x", "b/x", "#", qos=1), [1, NOT_AUTHORIZED, NOT_AUTHORIZED])
            pid = p.pid()
            p.send(p.publish_bytes("b/x", b"no", qos=1, pid=pid))
            self.assertEqual(p.expect(PUBACK).rc, NOT_AUTHORIZED)
            anon = Peer(port)
            self.peers.append(anon)
            anon.connect("anon%d" % port)
            self.assertEqual(anon.subscribe("a/x", qos=0), [NOT_AUTHORIZED])


class EmptyAcl(FileBrokerTest):
    """CVE-2018-12550: an empty or comment-only ACL file denies everything."""
    ALLOW_ANONYMOUS = True
    CONFIG = "acl_file {dir}/acl\n"
    FILES = {"acl": "# nothing allowed\n\n"}

    def test_empty_acl_denies_all(self):
        a = self.client("a", username="alice")
        self.assertEqual(a.subscribe("#", "x", qos=1), [NOT_AUTHORIZED, NOT_AUTHORIZED])
        pid = a.pid()
        a.send(a.publish_bytes("x", b"no", qos=1, pid=pid))
        self.assertEqual(a.expect(PUBACK).rc, NOT_AUTHORIZED)
        anon = self.client("anon")
        self.assertEqual(anon.subscribe("x", qos=0), [NOT_AUTHORIZED])


if __name__ == "__main__":
    main()
