"""Graceful operation of moatd (issue 5): SIGTERM drains within
shutdown_timeout, -d daemonizes after the listeners are open, pid_file,
sd_notify readiness over $NOTIFY_SOCKET, JSON log lines and rate limits,
SIGHUP reloading the log settings."""
import json
import os
import signal
import socket
import subprocess
import tempfile
import time

import moattest as mt
from moattest import packet, s


def moatd():
    exe = os.environ.get("MOATD")
    if not exe or mt.is_mosquitto():
        raise mt.unittest.SkipTest("moatd only (MOATD not set, or another broker under test)")
    return exe


def refused(port):
    """Whether a TCP connection to the port is refused (nothing accepts)."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return False
    except ConnectionRefusedError:
        return True


def process_gone(pid):
    """True once <pid> exited (a zombie nobody reaped counts as gone)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except FileNotFoundError:
        return True


def wait_for(cond, timeout=10.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.05)
    raise AssertionError("timed out waiting for " + what)


def stuck_reader(test):
    """A v5 subscriber with a 4 KiB receive window that never reads, and 10 MiB
    of QoS 0 messages published to it: the kernel's buffers take at most 4 MiB,
    so moatd holds output for it (up to max_output_bytes, the rest dropped).
    The test's broker runs one worker: the deliveries are then made while the
    PUBLISHes are handled, so the answered PING means the output is held (with
    two workers they could still be in the owner's inbox at the next step)."""
    stuck = test.peer()
    stuck.sock.close()   # again, with a small receive window set before connecting
    stuck.sock = socket.socket()
    stuck.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stuck.sock.settimeout(mt.READ_TIMEOUT_S)
    stuck.sock.connect(("127.0.0.1", test.port))
    stuck.connect("stuck")
    stuck.subscribe("flood", qos=0)
    pub = test.client("flood-pub")
    payload = b"x" * 65536
    for _ in range(160):
        pub.send(pub.publish_bytes("flood", payload, qos=0))
    pub.ping()   # every PUBLISH before it was handled
    return stuck


class Shutdown(mt.BrokerTest):
    CONFIG = "shutdown_timeout 3\nthreads 1\n"

    def setUp(self):
        moatd()
        super().setUp()

    def test_sigterm_v5_gets_0x8b_v311_eof_exit_zero(self):
        v5 = self.client("v5-client")
        v3 = self.client("v3-client", version=4)
        t0 = time.monotonic()
        self.broker.proc.send_signal(signal.SIGTERM)
        v5.expect_closed(timeout=5, disconnect_rc=0x8B)
        self.assertIsNone(v3.expect_closed(timeout=5), "a 3.1.1 client gets no DISCONNECT")
        self.broker.proc.wait(timeout=10)
        self.assertLess(time.monotonic() - t0, 3.0, "no pending output: no reason to wait")
        self.assertEqual(self.broker.proc.returncode, 0)
        self.assertTrue(refused(self.port))

    def test_stuck_reader_bounded_by_shutdown_timeout(self):
        """A subscriber that never reads keeps output pending: moatd still exits 0
        within shutdown_timeout (3 s), the listener refuses connections from the
        signal on, and a reading v5 client gets its DISCONNECT at once."""
        stuck_reader(self)
        reader = self.client("reader")
        t0 = time.monotonic()
        self.broker.proc.send_signal(signal.SIGTERM)
        reader.expect_closed(timeout=2, disconnect_rc=0x8B)
        self.assertTrue(self.broker.alive(), "still draining the stuck reader")
        self.assertTrue(refused(self.port), "listener accepts after SIGTERM")
        self.broker.proc.wait(timeout=10)
        took = time.monotonic() - t0
        self.assertEqual(self.broker.proc.returncode, 0)
        self.assertGreater(took, 2.0, "gave up on the stuck reader before shutdown_timeout")
        self.assertLess(took, 3.0 + 3.5, "shutdown_timeout not respected")


class ShutdownWills(mt.BrokerTest):
    CONFIG = "threads 4\n"

    def setUp(self):
        moatd()
        super().setUp()

    def test_wills_at_shutdown_reach_offline_sessions_cleanly(self):
        """At SIGTERM the Wills of connected clients, delayed ones too, are
        published (as mosquitto does) into offline persistent sessions, across
        workers, with a clean exit 0 and no sanitizer report."""
        for i in range(8):   # spread over the 4 workers
            sub = self.client("keeper%d" % i, clean=False, props={"session_expiry": 300})
            sub.subscribe("wills/#", qos=1)
            sub.disconnect()
        for i in range(8):
            self.client("plain%d" % i, will={"topic": "wills/plain%d" % i, "payload": b"gone",
                                             "qos": 1})
            self.client("delayed%d" % i, props={"session_expiry": 300},
                        will={"topic": "wills/delayed%d" % i, "payload": b"later", "qos": 1,
                              "props": {"will_delay": 60}})
        v5 = self.client("watcher")
        self.broker.proc.send_signal(signal.SIGTERM)
        v5.expect_closed(timeout=5, disconnect_rc=0x8B)
        self.broker.proc.wait(timeout=10)
        self.assertEqual(self.broker.proc.returncode, 0)


class Linger(mt.BrokerTest):
    CONFIG = "threads 1\n"

    def setUp(self):
        moatd()
        super().setUp()

    def open_fds(self):
        return len(os.listdir("/proc/%d/fd" % self.broker.proc.pid))

    def test_closing_connection_that_never_reads_is_freed(self):
        """A client closed for bad input while its output is stuck (it stopped
        reading) is freed about 5 s later with that output, not kept forever."""
        stuck = stuck_reader(self)
        before = self.open_fds()
        stuck.send(packet(mt.PUBLISH, 6, s("t")))   # malformed: DISCONNECT 0x81 queued
        time.sleep(2)
        self.assertEqual(self.open_fds(), before, "freed before its output had a chance")
        wait_for(lambda: self.open_fds() == before - 1, 10, "the stuck connection to be freed")
        self.assert_serves()


class LowFdBroker(mt.Broker):
    """moatd with at most 64 descriptors (prlimit execs it: same pid)."""

    def command(self):
        return ["prlimit", "--nofile=64:64"] + super().command()


class OutOfDescriptors(mt.unittest.TestCase):
    def test_accept_emfile_neither_spins_nor_floods_and_recovers(self):
        moatd()
        if not os.path.exists("/usr/bin/prlimit"):
            self.skipTest("needs prlimit (util-linux)")
        broker = LowFdBroker("threads 1\n")
        socks = []
        try:
            broker.start()
            for _ in range(100):   # more than 64: the kernel queues what moatd cannot take
                socks.append(socket.create_connection(("127.0.0.1", broker.port), timeout=3))
            time.sleep(0.5)
            t0 = mt.cpu_ticks(broker.proc.pid)
            time.sleep(2)
            spent = mt.cpu_ticks(broker.proc.pid) - t0
            self.assertLess(spent, os.sysconf("SC_CLK_TCK") // 2, "the loop spins on EMFILE")
            log = broker.log()
            self.assertIn("accept: Too many open files", log)
            self.assertLessEqual(log.count("accept: Too many open files"), 10)
            for sk in socks:
                sk.close()
            socks = []
            deadline = time.monotonic() + 10
            while True:   # queued connections (now closed) are accepted and dropped first
                try:
                    p = mt.Peer(broker.port, timeout=1)
                    p.connect("after-emfile")
                    p.close()
                    break
                except (AssertionError, OSError, mt.Closed):
                    if time.monotonic() > deadline:
                        raise
            broker.stop(check=True)
        finally:
            for sk in socks:
                sk.close()
            broker.stop(check=False)
            broker.cleanup()


class Daemon(mt.unittest.TestCase):
    def setUp(self):
        self.exe = moatd()
        self.dir = tempfile.mkdtemp(prefix="moattest-ops-")
        self.port = mt.free_port()
        self.pid_path = os.path.join(self.dir, "moatd.pid")
        self.log_path = os.path.join(self.dir, "moatd.log")
        self.asan_prefix = os.path.join(self.dir, "asan")
        self.env = dict(os.environ, ASAN_OPTIONS="detect_leaks=1:log_path=" + self.asan_prefix)

    def tearDown(self):
        import shutil
        shutil.rmtree(self.dir, ignore_errors=True)

    def conf(self, extra="", port=None):
        path = os.path.join(self.dir, "moatd.conf")
        with open(path, "w") as f:
            f.write("listener %d 127.0.0.1\nallow_anonymous true\npid_file %s\n"
                    "log_dest file %s\n%s" % (port or self.port, self.pid_path, self.log_path,
                                              extra))
        return path

    def run_moatd(self, args, timeout=20):
        return subprocess.run([self.exe] + args, capture_output=True, text=True,
                              timeout=timeout, env=self.env, cwd=self.dir)

    def read_pid_file(self):
        with open(self.pid_path) as f:
            return f.read()

    def no_sanitizer_report(self):
        reports = [n for n in os.listdir(self.dir) if n.startswith("asan")]
        self.assertEqual(reports, [], "sanitizer reports from the daemon")

    def test_daemon_writes_pid_file_serves_and_removes_it(self):
        r = self.run_moatd(["-c", self.conf(), "-d"])
        self.assertEqual(r.returncode, 0, r.stderr)
        with open(self.pid_path) as f:
            pid = int(f.read())
        self.assertFalse(process_gone(pid))
        with open("/proc/%d/comm" % pid) as f:
            self.assertEqual(f.read().strip(), "moatd")
        self.assertNotEqual(os.getsid(pid), os.getsid(0), "still in our session")
        sub, pub = mt.Peer(self.port), mt.Peer(self.port)
        sub.connect("daemon-sub")
        sub.subscribe("d/t", qos=1)
        pub.connect("daemon-pub")
        pub.publish("d/t", b"hello", qos=1)
        self.assertEqual(sub.expect_publish().payload, b"hello")
        sub.close()
        pub.close()
        os.kill(pid, signal.SIGTERM)
        wait_for(lambda: process_gone(pid), what="the daemon to exit")
        wait_for(lambda: not os.path.exists(self.pid_path), 2, "the pid file to go")
        with open(self.log_path) as f:
            self.assertIn("moatd stopped", f.read())
        self.no_sanitizer_report()

    def test_daemon_port_in_use_fails_on_the_terminal(self):
        busy = socket.socket()
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        try:
            r = self.run_moatd(["-c", self.conf(port=busy.getsockname()[1]), "--daemon"])
        finally:
            busy.close()
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("Address already in use", r.stderr)
        self.assertFalse(os.path.exists(self.pid_path))

    def test_pid_file_of_a_running_moatd_refused(self):
        first = subprocess.Popen([self.exe, "-c", self.conf()], env=self.env, cwd=self.dir,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_for(lambda: os.path.exists(self.pid_path), what="the first pid file")
            r = self.run_moatd(["-c", self.conf(port=mt.free_port())])
            self.assertEqual(r.returncode, 1)
            self.assertIn("already running as process %d" % first.pid, r.stderr)
            with open(self.pid_path) as f:
                self.assertEqual(int(f.read()), first.pid)
        finally:
            first.send_signal(signal.SIGTERM)
            self.assertEqual(first.wait(timeout=10), 0)
        self.assertFalse(os.path.exists(self.pid_path))

    def test_stale_pid_file_replaced_foreign_content_refused(self):
        with open(self.pid_path, "w") as f:
            f.write("%d\n" % (2 ** 22 + 1))   # above pid_max: no such process
        proc = subprocess.Popen([self.exe, "-c", self.conf()], env=self.env, cwd=self.dir,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_for(lambda: self.read_pid_file() == "%d\n" % proc.pid,
                     what="the pid file to name the new process")
        finally:
            proc.send_signal(signal.SIGTERM)
            self.assertEqual(proc.wait(timeout=10), 0)
        with open(self.pid_path, "w") as f:
            f.write("root:x:0:0:root:/root:/bin/sh\n")
        r = self.run_moatd(["-c", self.conf()])
        self.assertEqual(r.returncode, 1)
        self.assertIn("something other than a process id", r.stderr)
        with open(self.pid_path) as f:
            self.assertTrue(f.read().startswith("root:"), "a foreign file was overwritten")


class Notify(mt.unittest.TestCase):
    """sd_notify: READY=1 once the port accepts, RELOADING=1 then READY=1 around
    SIGHUP, STOPPING=1 at SIGTERM."""

    def run_case(self, abstract):
        moatd()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        tmp = tempfile.mkdtemp(prefix="moattest-notify-")
        if abstract:
            name = "@moattest-notify-%d-%d" % (os.getpid(), time.monotonic_ns())
            sock.bind("\0" + name[1:])
        else:
            name = os.path.join(tmp, "notify.sock")
            sock.bind(name)
        sock.settimeout(10)
        broker = mt.Broker()
        os.environ["NOTIFY_SOCKET"] = name
        try:
            broker.start(wait=False)
        finally:
            del os.environ["NOTIFY_SOCKET"]
        try:
            msg = sock.recv(4096).decode()
            self.assertIn("READY=1", msg.split("\n"))
            self.assertFalse(refused(broker.port), "READY=1 before the port accepts")
            broker.proc.send_signal(signal.SIGHUP)
            self.assertIn("RELOADING=1", sock.recv(4096).decode().split("\n"))
            self.assertIn("READY=1", sock.recv(4096).decode().split("\n"))
            broker.proc.send_signal(signal.SIGTERM)
            self.assertIn("STOPPING=1", sock.recv(4096).decode().split("\n"))
            broker.stop(check=True)
        finally:
            broker.stop(check=False)
            broker.cleanup()
            sock.close()
            import shutil
            shutil.rmtree(tmp, ignore_errors=True)

    def test_notify_socket_path(self):
        self.run_case(abstract=False)

    def test_notify_socket_abstract(self):
        self.run_case(abstract=True)


class JsonLog(mt.BrokerTest):
    CONFIG = "log_format json\nlog_type all\n"

    def setUp(self):
        moatd()
        super().setUp()

    def lines(self):
        return self.broker.log().splitlines()

    def test_every_line_is_json_and_floods_are_suppressed(self):
        for i in range(60):
            bad = self.client("bad%d" % i)
            bad.send(packet(mt.PUBLISH, 6, s("t")))   # QoS 3: malformed
            bad.expect_closed(disconnect_rc=0x81)
        for i in range(60):
            p = self.peer()
            p.send(b"\x10\x04\x00\x02MQ")   # CONNECT with a protocol name cut short
            try:
                p.recv(timeout=2)
            except (mt.Closed, socket.timeout):
                pass
        self.assert_serves()
        lines = self.lines()
        parsed = []
        for ln in lines:
            if not ln.startswith("{"):
                self.assertTrue(ln.startswith("=") or "Sanitizer" in ln or not ln.strip(), ln)
                continue
            o = json.loads(ln)
            self.assertEqual(set(o), {"time", "level", "message"}, ln)
            self.assertRegex(o["time"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
            self.assertIn(o["level"], ("error", "warning", "notice", "information", "debug",
                                       "subscribe", "unsubscribe", "websockets"))
            parsed.append(o)
        self.assertTrue(any("starting" in o["message"] for o in parsed))
        closing = [o for o in parsed if o["message"].endswith(", closing")]
        self.assertGreaterEqual(len(closing), 1)
        self.assertLessEqual(len(closing), 20, "not rate-limited")
        self.assertTrue(any("suppressed" in o["message"] for o in parsed), lines[-20:])


class ReloadLogSettings(mt.BrokerTest):
    def setUp(self):
        moatd()
        super().setUp()

    def test_sighup_switches_to_json_lines(self):
        with open(self.broker.conf_path, "a") as f:
            f.write("log_format json\n")
        self.broker.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: "reloaded the password" in self.broker.log(), what="the reload")
        self.client("after-reload").disconnect()
        tail = self.broker.log().split("reloaded the password", 1)[1].splitlines()[1:]
        wait_for(lambda: "after-reload" in self.broker.log(), what="the connect line")
        tail = self.broker.log().split("reloaded the password", 1)[1].splitlines()[1:]
        self.assertTrue(tail)
        for ln in tail:
            self.assertEqual(json.loads(ln)["level"] in ("notice", "information"), True, ln)

    def test_bad_file_at_reload_keeps_serving(self):
        with open(self.broker.conf_path, "a") as f:
            f.write("log_format yaml\n")
        self.broker.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: "keeping the log settings" in self.broker.log(), what="the refusal")
        self.assertIn("log_format expects text or json", self.broker.log())
        self.assert_serves()


class ConfigKeys(mt.unittest.TestCase):
    """The new keys' errors name the file, the line and the fix."""

    def check(self, text, line, *words):
        with tempfile.NamedTemporaryFile("w", suffix=".conf", delete=False) as f:
            f.write(text)
        try:
            r = subprocess.run([moatd(), "-c", f.name], capture_output=True, text=True, timeout=10)
        finally:
            os.unlink(f.name)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("%s:%d:" % (f.name, line), r.stderr)
        for w in words:
            self.assertIn(w, r.stderr)

    def test_log_format_unknown(self):
        self.check("log_format xml\n", 1, "log_format expects text or json", "xml")

    def test_shutdown_timeout_out_of_range(self):
        self.check("# a comment of many more than eight words is just a comment, as in mosquitto\n"
                   "shutdown_timeout 3601\n", 2, "shutdown_timeout expects a number from 0 to 3600")

    def test_pid_file_needs_one_path(self):
        self.check("pid_file\n", 1, "pid_file expects exactly one value")


class DistConfig(mt.unittest.TestCase):
    def test_example_config_starts_and_stops(self):
        """dist/moatd.conf is valid as shipped, but for its paths and port."""
        moatd()
        here = os.path.dirname(os.path.abspath(__file__))
        with open(os.path.join(here, "..", "..", "dist", "moatd.conf")) as f:
            text = f.read()
        broker = mt.Broker(with_listener=False, allow_anonymous=None)
        passwd = os.path.join(broker.dir, "passwd")
        open(passwd, "w").close()
        self.assertIn("\nlistener 1883\n", text)
        text = text.replace("\nlistener 1883\n", "\nlistener %d 127.0.0.1\n" % broker.port)
        text = text.replace("/etc/moat/passwd", passwd)
        with open(broker.conf_path, "w") as f:
            f.write(text)
        try:
            broker.start()
            peer = mt.Peer(broker.port)
            self.assertEqual(peer.connect("anon", expect_rc=None).rc, 0x87)
            peer.close()
            broker.stop(check=True)
        finally:
            broker.stop(check=False)
            broker.cleanup()


if __name__ == "__main__":
    mt.main()
