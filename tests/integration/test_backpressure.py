"""Back-pressure: a publisher whose QoS 1/2 messages go to a session that is
falling behind is paused instead of the session's queue overflowing; a
subscriber that stops acknowledging is not waited for."""
import time

import moattest as mt

N = 300


class TestBackpressure(mt.BrokerTest):

    # high water min(5, 20 / 2): the queue of 20 overflows within one read
    # of the publisher's pipelined burst unless the publisher is paused
    CONFIG = "max_queued_messages 20\nqueue_high_water 5\n"

    def blast(self, topic, count, client_id="pub"):
        """A v3.1.1 publisher (no Receive Maximum to respect) that sends
        <count> QoS 1 messages in one go without waiting for acknowledgements."""
        pub = self.client(client_id, version=4)
        burst = b"".join(pub.publish_bytes(topic, b"%d" % i, qos=1, pid=i + 1)
                         for i in range(count))
        pub.send(burst)
        return pub

    def read_slowly(self, sub, count, delay_s):
        """Reads <count> PUBLISHes, acknowledging each after <delay_s>."""
        got = []
        for _ in range(count):
            p = sub.expect_publish(ack=False, timeout=5)
            time.sleep(delay_s)
            sub.send(sub.ack_bytes(mt.PUBACK, p.pid))
            got.append(p.payload)
        return got

    def expect_acks(self, pub, count, timeout):
        ids = set()
        deadline = time.monotonic() + timeout
        while len(ids) < count:
            left = deadline - time.monotonic()
            self.assertGreater(left, 0, "%d of %d PUBACKs" % (len(ids), count))
            ids.add(pub.expect(mt.PUBACK, timeout=left).pid)
        return ids

    def test_slow_subscriber_loses_nothing(self):
        sub = self.client("slow", props={"receive_maximum": 2})
        sub.subscribe("bp/t", qos=1)
        pub = self.blast("bp/t", N)
        got = self.read_slowly(sub, N, 0.002)
        self.assertEqual(got, [b"%d" % i for i in range(N)])
        sub.expect_nothing(0.3)
        self.assertEqual(self.expect_acks(pub, N, 5), set(range(1, N + 1)))

    def test_without_backpressure_the_full_queue_drops(self):
        """The control for the test above: with queue_high_water 0 (mosquitto's
        behaviour) the same burst overflows the queue of 20."""
        sub = self.client("slow", props={"receive_maximum": 2})
        sub.subscribe("bp/t", qos=1)
        self.expect_acks(self.blast("bp/t", N), N, 5)
        got = []
        while True:
            try:
                p = sub.expect_publish(ack=True, timeout=0.5)
            except mt.socket.timeout:
                break
            got.append(p.payload)
        self.assertLessEqual(len(got), 2 + 20)
        self.assertEqual(got, sorted(got, key=int))

    config_for_test_without_backpressure_the_full_queue_drops = "queue_high_water 0\n"

    def test_stuck_subscriber_does_not_stall_publisher_or_others(self):
        """A subscriber that acknowledges nothing holds the publisher back for
        about a second at most (BACKLOG_STUCK_MS); then its queue drops and the
        publisher and the other subscriber go on at full speed."""
        stuck = self.client("stuck", props={"receive_maximum": 1})
        stuck.subscribe("bp/t", qos=1)
        fast = self.client("fast")
        fast.subscribe("bp/t", qos=1)
        started = time.monotonic()
        pub = self.blast("bp/t", N)
        got = [fast.expect_publish(timeout=5).payload for _ in range(N)]
        self.assertEqual(got, [b"%d" % i for i in range(N)])
        self.assertEqual(len(self.expect_acks(pub, N, 5)), N)
        self.assertLess(time.monotonic() - started, 8)
        first = stuck.expect_publish(ack=False)
        self.assertEqual(first.payload, b"0")
        stuck.expect_nothing(0.3)   # its one slot stays taken

    def test_backpressure_across_workers(self):
        """The backlog counts messages still on their way between worker
        threads: two workers, the subscriber's session on one, many publishers
        spread over both, all pipelining."""
        sub = self.client("slow", props={"receive_maximum": 2})
        sub.subscribe("bp/t", qos=1)
        pubs = []
        for k in range(4):
            pub = self.client("pub%d" % k, version=4)
            pub.send(b"".join(pub.publish_bytes("bp/t", b"%d" % (k * 1000 + i), qos=1, pid=i + 1)
                              for i in range(N // 4)))
            pubs.append(pub)
        got = self.read_slowly(sub, N, 0.001)
        self.assertEqual(len(set(got)), N)
        for k in range(4):
            mine = [int(x) for x in got if int(x) // 1000 == k]
            self.assertEqual(mine, sorted(mine))   # per-publisher order kept
        sub.expect_nothing(0.3)
        for pub in pubs:
            self.assertEqual(len(self.expect_acks(pub, N // 4, 5)), N // 4)

    config_for_test_backpressure_across_workers = "threads 2\n"
