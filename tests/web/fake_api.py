#!/usr/bin/env python3
"""A stand-in for moat-historian's HTTP API, to test the dashboard alone.

Implements the API of docs/historian.md with made-up data: login with a
session cookie and a CSRF token, devices, readings, overview buckets,
commands (dev-1 acknowledges, dev-2 refuses as stale, dev-3 is offline and
times out), alerts and the Server-Sent Events stream; serves the built
dashboard from --web-root at / and /static/. Only the test drives the extra
endpoints under /__fake/ that make things happen:

  POST /__fake/reading {"device", "temperature", "humidity", "relay"?}
  POST /__fake/alert   {"device", "kind", "detail"}
  POST /__fake/expire  ends every session (as a historian restart would)
  GET  /__fake/requests  the API requests seen so far (method, path, query)

Prints "PORT <n>" on its first line once it listens (--port 0: any free
port on 127.0.0.1).
"""

import argparse
import hmac
import json
import mimetypes
import os
import queue
import secrets
import sys
import threading
import time
from http.cookies import SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
       "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
STEP_MS = 30_000  # spacing of the made-up history
HISTORY_MS = 25 * 3600_000
COMMAND_DELAY_S = {"dev-1": 1.2, "dev-2": 0.3, "dev-3": 1.5}


def now_ms():
    return int(time.time() * 1000)


class Fake:
    """The fake historian's state; every method takes the lock itself."""

    def __init__(self, user, password):
        self.lock = threading.Lock()
        self.user, self.password = user, password
        self.sessions = {}  # cookie value -> csrf token
        self.listeners = []  # one queue per SSE stream
        self.requests = []
        self.alerts = []
        self.devices = {}
        self.readings = {}  # device -> list of reading dicts, oldest first
        start = now_ms() - HISTORY_MS
        for i, dev in enumerate(("dev-1", "dev-2", "dev-3")):
            online = dev != "dev-3"
            end = now_ms() if online else now_ms() - 2 * 3600_000
            rows = []
            for seq, t in enumerate(range(start, end, STEP_MS)):
                phase = (t // STEP_MS + i * 17) % 120
                rows.append({"time": t, "seq": seq,
                             "temperature": round(20 + i + 3 * abs(phase - 60) / 60, 2),
                             "humidity": round(40 + 10 * ((phase % 40) / 40), 2),
                             "relay": "on"})
            self.readings[dev] = rows
            self.devices[dev] = {"id": dev, "online": online, "relay": "on",
                                 "last_seen": rows[-1]["time"], "last": rows[-1]}

    def publish(self, kind, obj):
        data = json.dumps(obj)
        with self.lock:
            for q in self.listeners:
                q.put((kind, data))

    def add_reading(self, dev, body):
        t = now_ms()
        with self.lock:
            rows = self.readings.setdefault(dev, [])
            r = {"time": t, "seq": (rows[-1]["seq"] + 1) if rows else 0,
                 "temperature": float(body["temperature"]), "humidity": float(body["humidity"]),
                 "relay": body.get("relay", "on")}
            rows.append(r)
            d = self.devices.setdefault(dev, {"id": dev, "online": True, "relay": None})
            d.update(last=r, last_seen=t, relay=r["relay"])
        self.publish("reading", dict(r, device=dev))
        return r

    def add_alert(self, body):
        with self.lock:
            a = {"id": len(self.alerts) + 1, "device": body["device"], "time": now_ms(),
                 "kind": body.get("kind", "tamper"), "detail": body.get("detail", "")}
            self.alerts.append(a)
        self.publish("alert", a)
        return a

    def run_command(self, dev, state):
        cmd = {"id": secrets.token_hex(16), "device": dev, "state": state, "status": "pending"}
        self.publish("command", cmd)
        time.sleep(COMMAND_DELAY_S.get(dev, 0.5))
        if dev == "dev-1":
            cmd = dict(cmd, status="acknowledged")
            with self.lock:
                self.devices[dev]["relay"] = state
                d = dict(self.devices[dev])
            self.publish("device", d)
        elif dev == "dev-2":
            cmd = dict(cmd, status="failed", reason="stale")
        else:
            cmd = dict(cmd, status="timeout")
        self.publish("command", cmd)
        return cmd

    def overview(self, t0, t1, n):
        width = max(1, (t1 - t0) // n)
        cells = {}
        with self.lock:
            for dev, rows in self.readings.items():
                for r in rows:
                    if t0 <= r["time"] <= t1:
                        b = min(n - 1, (r["time"] - t0) // width)
                        cells.setdefault((dev, t0 + b * width), []).append(r["temperature"])
        return [{"device": dev, "time": t, "avg": round(sum(v) / len(v), 3), "min": min(v),
                 "max": max(v), "count": len(v)} for (dev, t), v in sorted(cells.items())]


class BadRequest(Exception):
    """A 4xx answer: status and message."""

    def __init__(self, status, message):
        super().__init__(message)
        self.status = status


def int_param(q, name, default, lo, hi):
    if name not in q:
        return default
    try:
        v = int(q[name][0])
    except ValueError:
        raise BadRequest(400, f"{name} must be an integer") from None
    if not lo <= v <= hi:
        raise BadRequest(400, f"{name} must be between {lo} and {hi}")
    return v


def time_range(q):
    t1 = int_param(q, "to", now_ms(), 0, 253402300799999)
    t0 = int_param(q, "from", t1 - 3600_000, 0, 253402300799999)
    if t0 > t1:
        raise BadRequest(400, "from must not be after to")
    return t0, t1


class Handler(BaseHTTPRequestHandler):
    server_version = "fake-historian"
    fake = None  # set by main
    web_root = None

    def log_message(self, fmt, *args):
        pass

    def send_json(self, status, obj, extra=()):
        body = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        for k, v in extra:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def body_json(self):
        n = int(self.headers.get("Content-Length") or 0)
        try:
            obj = json.loads(self.rfile.read(n) or b"{}")
        except ValueError:
            raise BadRequest(400, "the body is not JSON") from None
        if not isinstance(obj, dict):
            raise BadRequest(400, "the body must be a JSON object")
        return obj

    def session(self):
        """The session's CSRF token; 401 without a valid session cookie."""
        c = SimpleCookie(self.headers.get("Cookie", ""))
        sid = c["moat_session"].value if "moat_session" in c else ""
        with self.fake.lock:
            csrf = self.fake.sessions.get(sid)
        if csrf is None:
            raise BadRequest(401, "not logged in")
        return sid, csrf

    def check_csrf(self, csrf):
        if not hmac.compare_digest(self.headers.get("X-CSRF-Token", ""), csrf):
            raise BadRequest(403, "missing or wrong X-CSRF-Token")

    def do_GET(self):
        self.route("GET")

    def do_POST(self):
        self.route("POST")

    def route(self, method):
        url = urlsplit(self.path)
        q = parse_qs(url.query)
        try:
            if url.path.startswith("/__fake/"):
                self.fake_control(method, url.path)
            elif url.path.startswith("/api/"):
                with self.fake.lock:
                    self.fake.requests.append({"method": method, "path": url.path,
                                               "query": {k: v[0] for k, v in q.items()}})
                self.api(method, url.path, q)
            elif method == "GET" and url.path in ("/healthz", "/metrics"):
                self.send_json(200, {"status": "ok"})
            elif method == "GET":
                self.static(url.path)
            else:
                raise BadRequest(405, "method not allowed")
        except BadRequest as e:
            self.send_json(e.status, {"error": str(e)})
        except (BrokenPipeError, ConnectionResetError):
            pass

    def api(self, method, path, q):
        if (method, path) == ("POST", "/api/login"):
            body = self.body_json()
            ok = (hmac.compare_digest(str(body.get("user", "")), self.fake.user)
                  and hmac.compare_digest(str(body.get("password", "")), self.fake.password))
            if not ok:
                raise BadRequest(401, "wrong user or password")
            sid, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
            with self.fake.lock:
                self.fake.sessions[sid] = csrf
            cookie = f"moat_session={sid}; HttpOnly; SameSite=Strict; Path=/"
            self.send_json(200, {"user": self.fake.user, "csrf": csrf},
                           [("Set-Cookie", cookie)])
            return
        sid, csrf = self.session()
        if method == "POST":
            self.check_csrf(csrf)
        parts = path.split("/")[2:]
        if (method, path) == ("GET", "/api/me"):
            self.send_json(200, {"user": self.fake.user, "csrf": csrf})
        elif (method, path) == ("POST", "/api/logout"):
            with self.fake.lock:
                self.fake.sessions.pop(sid, None)
            self.send_json(200, {}, [("Set-Cookie", "moat_session=; Max-Age=0; Path=/")])
        elif (method, path) == ("GET", "/api/devices"):
            with self.fake.lock:
                devs = [dict(d) for d in self.fake.devices.values()]
            self.send_json(200, {"devices": devs})
        elif method == "GET" and len(parts) == 3 and parts[0] == "devices" \
                and parts[2] == "readings":
            self.readings(unquote(parts[1]), q)
        elif method == "POST" and len(parts) == 3 and parts[0] == "devices" \
                and parts[2] == "command":
            dev = unquote(parts[1])
            state = self.body_json().get("state")
            if dev not in self.fake.devices:
                raise BadRequest(404, f"unknown device {dev}")
            if state not in ("on", "off"):
                raise BadRequest(400, 'state must be "on" or "off"')
            self.send_json(200, self.fake.run_command(dev, state))
        elif (method, path) == ("GET", "/api/overview"):
            t0, t1 = time_range(q)
            n = int_param(q, "buckets", 60, 1, 1000)
            self.send_json(200, {"buckets": self.fake.overview(t0, t1, n)})
        elif (method, path) == ("GET", "/api/alerts"):
            limit = int_param(q, "limit", 100, 1, 1000)
            with self.fake.lock:
                latest = self.fake.alerts[::-1][:limit]
            self.send_json(200, {"alerts": latest})
        elif (method, path) == ("GET", "/api/events"):
            self.events()
        else:
            raise BadRequest(404, "no such API endpoint")

    def readings(self, dev, q):
        t0, t1 = time_range(q)
        limit = int_param(q, "limit", 1000, 1, 10000)
        with self.fake.lock:
            if dev not in self.fake.readings:
                raise BadRequest(404, f"unknown device {dev}")
            rows = [r for r in self.fake.readings[dev] if t0 <= r["time"] <= t1]
        self.send_json(200, {"device": dev, "readings": rows[::-1][:limit]})

    def events(self):
        q = queue.Queue()
        with self.fake.lock:
            self.fake.listeners.append(q)
        try:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(b": hello\n\n")
            self.wfile.flush()
            while True:
                try:
                    kind, data = q.get(timeout=10)
                    self.wfile.write(f"event: {kind}\ndata: {data}\n\n".encode())
                except queue.Empty:
                    self.wfile.write(b": keep-alive\n\n")
                self.wfile.flush()
        finally:
            with self.fake.lock:
                self.fake.listeners.remove(q)

    def fake_control(self, method, path):
        if (method, path) == ("POST", "/__fake/reading"):
            body = self.body_json()
            self.send_json(200, self.fake.add_reading(body["device"], body))
        elif (method, path) == ("POST", "/__fake/alert"):
            self.send_json(200, self.fake.add_alert(self.body_json()))
        elif (method, path) == ("POST", "/__fake/expire"):
            with self.fake.lock:
                self.fake.sessions.clear()
            self.send_json(200, {})
        elif (method, path) == ("GET", "/__fake/requests"):
            with self.fake.lock:
                seen = list(self.fake.requests)
            self.send_json(200, {"requests": seen})
        else:
            raise BadRequest(404, "no such fake endpoint")

    def static(self, path):
        rel = "index.html" if path in ("/", "/index.html") else path.lstrip("/")
        if not (rel == "index.html" or rel.startswith("static/")):
            raise BadRequest(404, "not found")
        root = os.path.realpath(self.web_root)
        full = os.path.realpath(os.path.join(root, unquote(rel)))
        if not full.startswith(root + os.sep) or not os.path.isfile(full):
            raise BadRequest(404, "not found")
        with open(full, "rb") as f:
            body = f.read()
        ctype = {".js": "text/javascript", ".mjs": "text/javascript", ".css": "text/css",
                 ".html": "text/html; charset=utf-8"}.get(os.path.splitext(full)[1])
        self.send_response(200)
        self.send_header("Content-Type", ctype or mimetypes.guess_type(full)[0] or "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Content-Security-Policy", CSP)
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        self.end_headers()
        self.wfile.write(body)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--web-root", required=True)
    ap.add_argument("--user", default="admin")
    ap.add_argument("--password", default="admin-password")
    args = ap.parse_args()
    if not os.path.isfile(os.path.join(args.web_root, "index.html")):
        sys.exit(f"fake_api: {args.web_root}/index.html is missing: build the dashboard first")
    Handler.fake = Fake(args.user, args.password)
    Handler.web_root = args.web_root
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    print(f"PORT {server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
