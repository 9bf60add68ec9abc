"""The real Moat stack for the system tests (test_device.py, test_pipeline.py):
a Security Center directory (`moat-sc init`, the broker's certificate),
moatd with a password listener (for the SC and test observers) and a mutual
TLS listener (things and the historian: require_certificate,
use_identity_as_username), `moat-sc serve` releasing keys and revoking, and
things made with `moat ctl thing create`. Every process it starts logs into
NAME.log in the base directory; stop() ends them all (newest first) and
reports any that did not exit 0 cleanly.
"""
import json
import os
import shutil
import signal
import subprocess
import time

from authkit import moat_passwd_file
from moattest import Broker, free_port

HERE = os.path.dirname(os.path.abspath(__file__))
BUILD = os.path.join(HERE, "..", "..", "build", "dev", "bin")
MOAT = os.environ.get("MOAT") or os.path.join(BUILD, "moat")
MOAT_SC = os.environ.get("MOAT_SC") or os.path.join(BUILD, "moat-sc")
MOAT_DEVICE = os.environ.get("MOAT_DEVICE") or os.path.join(BUILD, "moat-device")
MOAT_HISTORIAN = os.environ.get("MOAT_HISTORIAN") or os.path.join(BUILD, "moat-historian")
SANITIZER = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:")


def read(path):
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "replace")
    except OSError:
        return ""


def run(*argv):
    """Runs a tool; its stdout, or AssertionError with its stderr."""
    p = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    if p.returncode != 0:
        raise AssertionError("%s: %s" % (" ".join(argv), p.stderr))
    return p.stdout


class Stack:
    """moatd + `moat-sc serve` below <base> (which the caller made and removes)."""

    def __init__(self, base):
        self.base = base
        self.sc_dir = os.path.join(base, "sc")
        self.procs = []  # (name, Popen, log file)
        self.broker = None
        self.tls_port = None

    def start(self, users=(), broker_config="", policies=None):
        """SC, broker certificate, moatd (password file: sc plus <users>, pairs of
        name and password; <broker_config> appended) and `moat-sc serve`, with
        <policies> (the policies.json document) written first when given."""
        b = self.base
        run(MOAT_SC, "--dir", self.sc_dir, "init", "--name", "moattest")
        run(MOAT_SC, "--dir", self.sc_dir, "thing", "add", "broker", "--broker", "--san",
            "IP:127.0.0.1", "--out", os.path.join(b, "broker"))
        if policies is not None:
            with open(os.path.join(self.sc_dir, "policies.json"), "w") as f:
                json.dump(policies, f)
        moat_passwd_file(os.path.join(b, "passwd"), [("sc", "sc-pw")] + list(users))
        with open(os.path.join(b, "sc.pw"), "w") as f:
            f.write("sc-pw\n")
        self.tls_port = free_port()
        self.broker = Broker(
            "password_file {b}/passwd\nsc_username sc\nsc_public_key {sc}/token.pub\n"
            "persistence true\npersistence_location {b}/store\n{extra}\n"
            "listener {port} 127.0.0.1\ncertfile {b}/broker/cert.pem\n"
            "keyfile {b}/broker/key.pem\ncafile {sc}/ca.pem\nrequire_certificate true\n"
            "use_identity_as_username true\n".format(b=b, sc=self.sc_dir, port=self.tls_port,
                                                     extra=broker_config),
            allow_anonymous=False)
        self.broker.start()
        self.spawn("sc", MOAT_SC, "--dir", self.sc_dir, "serve", "--broker",
                   "127.0.0.1:%d" % self.broker.port, "--username", "sc", "--password-file",
                   os.path.join(b, "sc.pw"), "--rate", "50/s", "--broker-url",
                   "mqtts://127.0.0.1:%d" % self.tls_port)
        self.wait_log("sc", "connected; serving")

    def spawn(self, name, *argv):
        """Starts <argv> logging into NAME.log (appended); its Popen."""
        log = open(os.path.join(self.base, name + ".log"), "ab")
        env = dict(os.environ)
        env.setdefault("ASAN_OPTIONS", "detect_leaks=1")
        p = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env)
        self.procs.append((name, p, log))
        return p

    def log(self, name):
        return read(os.path.join(self.base, name + ".log"))

    def wait_log(self, name, text, timeout=30):
        """Waits until NAME.log holds <text>; AssertionError when the process ends first."""
        proc = [p for n, p, _ in self.procs if n == name][-1]
        deadline = time.monotonic() + timeout
        while text not in self.log(name):
            if time.monotonic() > deadline or proc.poll() is not None:
                raise AssertionError("%s: no %r in its log:\n%s" % (name, text, self.log(name)))
            time.sleep(0.1)

    def ctl(self, *args):
        """`moat ctl --json ARGS` against the SC; its answer."""
        return json.loads(run(MOAT, "ctl", "--sc-dir", self.sc_dir, "--json", *args))

    def create(self, name, role, out):
        """A thing with attribute role=<role>, its bundle in <out>."""
        r = self.ctl("thing", "create", name, "--attr", "role=" + role, "--out", out)
        assert r["ok"], r

    def stop(self, keep_broker_log=None):
        """Stops every process (newest first), then moatd; the problems seen
        (a non-zero exit, a sanitizer report), or []."""
        problems = []
        for name, p, log in reversed(self.procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
            log.close()
            text = self.log(name)
            if p.returncode != 0 or any(bad in text for bad in SANITIZER):
                problems.append("%s exited %d:\n%s" % (name, p.returncode, text[-4000:]))
        self.procs = []
        if self.broker is not None:
            self.broker.stop(check=False)
            if keep_broker_log:
                shutil.copy(self.broker.log_path, keep_broker_log)
            if any(bad in self.broker.log() for bad in SANITIZER):
                problems.append("moatd:\n" + self.broker.log()[-4000:])
            self.broker.cleanup()
            self.broker = None
        return problems
