#!/usr/bin/env python3
"""Runs a command against a throw-away PostgreSQL server.

    pgserver.py [--fast] [--env NAME] -- COMMAND [ARG...]

Creates a temporary directory, initdb's a cluster there and starts it,
listening only on a Unix socket inside that directory (no TCP port, so
nothing can clash and nobody else can connect). PostgreSQL refuses to run as
root: as root the server runs as the system user `moattest` (created when
missing), otherwise as the calling user. The command then runs with the
server's URL in the environment variable NAME (default MOAT_PG_URL), and
every argument spelled `{url}` replaced by it. The server is stopped and the
directory removed afterwards, also when the command fails or is interrupted.
The exit status is the command's. Exits 77 (CTest's skip code), saying why,
when the PostgreSQL server binaries are not installed.

--fast turns fsync off (tests); without it the server keeps its durable
defaults (benchmarks).
"""
import argparse
import glob
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile

SKIP = 77
USER = "moattest"


def find_bindir():
    """The newest /usr/lib/postgresql/<version>/bin holding initdb, or None."""
    dirs = glob.glob("/usr/lib/postgresql/*/bin/initdb")
    dirs.sort(key=lambda p: int(p.split("/")[4]) if p.split("/")[4].isdigit() else 0)
    return os.path.dirname(dirs[-1]) if dirs else None


def server_user():
    """(name, uid, gid) the server runs as; creates `moattest` when root."""
    if os.geteuid() != 0:
        pw = pwd.getpwuid(os.geteuid())
        return pw.pw_name, pw.pw_uid, pw.pw_gid
    try:
        pw = pwd.getpwnam(USER)
    except KeyError:
        # check=False: a parallel run may have created it meanwhile
        subprocess.run(["useradd", "--system", "--no-create-home", "--home-dir", "/nonexistent",
                        "--shell", "/usr/sbin/nologin", USER], check=False)
        pw = pwd.getpwnam(USER)
    return USER, pw.pw_uid, pw.pw_gid


def as_user(user, argv):
    """argv, run as <user> when we are root (runuser needs no password)."""
    if os.geteuid() == 0:
        return ["runuser", "-u", user, "--"] + argv
    return argv


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--env", default="MOAT_PG_URL")
    ap.add_argument("--fast", action="store_true")
    ap.add_argument("command", nargs=argparse.REMAINDER)
    args = ap.parse_args()
    cmd = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not cmd:
        ap.error("no command")

    bindir = find_bindir()
    if bindir is None:
        print("SKIP: PostgreSQL server binaries not found under /usr/lib/postgresql "
              "(apt-get install postgresql)")
        return SKIP

    user, uid, gid = server_user()
    tmp = tempfile.mkdtemp(prefix="moat-pg-")
    os.chown(tmp, uid, gid)
    data, sock, log = (os.path.join(tmp, n) for n in ("data", "sock", "server.log"))
    os.mkdir(sock, 0o700)
    os.chown(sock, uid, gid)
    started = False

    def stop(*_):
        if started:
            subprocess.run(as_user(user, [f"{bindir}/pg_ctl", "-D", data, "-m", "immediate",
                                          "-w", "stop"]),
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        shutil.rmtree(tmp, ignore_errors=True)

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        subprocess.run(as_user(user, [f"{bindir}/initdb", "-D", data, "-U", user,
                                      "--auth=trust", "-E", "UTF8", "--no-locale"]),
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        opts = f"-c listen_addresses='' -k {sock} -c max_connections=20"
        if args.fast:
            opts += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        started = True
        rc = subprocess.run(as_user(user, [f"{bindir}/pg_ctl", "-D", data, "-l", log, "-o",
                                           opts, "-w", "-t", "60", "start"]),
                            stdout=subprocess.DEVNULL).returncode
        if rc != 0:
            with open(log, errors="replace") as f:
                sys.stderr.write(f.read())
            print("pgserver: the server did not start", file=sys.stderr)
            return 1
        url = f"postgresql://{user}@/postgres?host={sock}"
        env = dict(os.environ)
        env[args.env] = url
        print(f"pgserver: PostgreSQL ({os.path.basename(os.path.dirname(bindir))}) "
              f"as {user} in {tmp}", flush=True)
        return subprocess.run([a.replace("{url}", url) for a in cmd], env=env).returncode
    except subprocess.CalledProcessError as e:
        sys.stderr.write(e.stderr.decode(errors="replace") if e.stderr else "")
        print(f"pgserver: {e}", file=sys.stderr)
        return 1
    finally:
        stop()


if __name__ == "__main__":
    sys.exit(main())
