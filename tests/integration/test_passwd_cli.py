"""`moat passwd`: -c/-b/-D/-U, --scram, mode 0600, lines kept, and prompts refused
without a terminal. Runs the binary named by $MOAT; needs no broker."""
import os
import stat
import subprocess
import tempfile
import unittest

MOAT = os.environ.get("MOAT", "moat")


def run(*args, **kw):
    return subprocess.run([MOAT, "passwd", *args], capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, start_new_session=True, timeout=60, **kw)


def entries(path):
    with open(path, encoding="utf-8") as f:
        return f.read().splitlines()


class PasswdCli(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.file = os.path.join(self.tmp.name, "pw")

    def tearDown(self):
        self.tmp.cleanup()

    def test_create_batch_mode_0600(self):
        r = run("-c", "-b", self.file, "alice", "pencil")
        self.assertEqual(r.returncode, 0, r.stderr)
        lines = entries(self.file)
        self.assertEqual(len(lines), 1)
        self.assertTrue(lines[0].startswith("alice:$argon2id$v=19$m=19456,t=2,p=1$"))
        self.assertEqual(stat.S_IMODE(os.stat(self.file).st_mode), 0o600)
        self.assertNotIn("pencil", open(self.file, encoding="utf-8").read())

    def test_add_replace_scram_keeps_other_lines(self):
        with open(self.file, "w", encoding="utf-8") as f:
            f.write("# users\nbob:$6$c2FsdA==$" + "A" * 86 + "==\n")
        r = run("--scram", "-b", self.file, "alice", "pencil")
        self.assertEqual(r.returncode, 0, r.stderr)
        lines = entries(self.file)
        self.assertEqual(lines[:2], ["# users", "bob:$6$c2FsdA==$" + "A" * 86 + "=="])
        self.assertTrue(lines[2].startswith("alice:$scram-sha-256$4096$"))
        old = lines[2]
        r = run("-b", self.file, "alice", "other")
        self.assertEqual(r.returncode, 0, r.stderr)
        lines = entries(self.file)
        self.assertEqual(len(lines), 3)
        self.assertNotEqual(lines[2], old)
        self.assertTrue(lines[2].startswith("alice:$argon2id$"))
        self.assertEqual(stat.S_IMODE(os.stat(self.file).st_mode), 0o600)

    def test_missing_file_without_c(self):
        r = run("-b", self.file, "alice", "pencil")
        self.assertEqual(r.returncode, 1)
        self.assertIn("use -c", r.stderr)
        self.assertFalse(os.path.exists(self.file))

    def test_delete(self):
        run("-c", "-b", self.file, "alice", "a")
        run("-b", self.file, "bob", "b")
        r = run("-D", self.file, "alice")
        self.assertEqual(r.returncode, 0, r.stderr)
        lines = entries(self.file)
        self.assertEqual(len(lines), 1)
        self.assertTrue(lines[0].startswith("bob:"))
        r = run("-D", self.file, "alice")
        self.assertEqual(r.returncode, 1)
        self.assertIn("not in", r.stderr)

    def test_update_hashes_plain_lines_only(self):
        run("-c", "-b", self.file, "kept", "k")
        kept = entries(self.file)[0]
        with open(self.file, "a", encoding="utf-8") as f:
            f.write("# comment\nplain:secret\r\nspace:two words\n")
        r = run("-U", self.file)
        self.assertEqual(r.returncode, 0, r.stderr)
        lines = entries(self.file)
        self.assertEqual(lines[0], kept)
        self.assertEqual(lines[1], "# comment")
        self.assertTrue(lines[2].startswith("plain:$argon2id$"))
        self.assertTrue(lines[3].startswith("space:$argon2id$"))
        self.assertNotIn("secret", open(self.file, encoding="utf-8").read())

    def test_update_refuses_line_without_colon(self):
        with open(self.file, "w", encoding="utf-8") as f:
            f.write("a:b\nnocolon\n")
        r = run("-U", self.file)
        self.assertEqual(r.returncode, 1)
        self.assertIn(":2:", r.stderr)
        self.assertEqual(entries(self.file), ["a:b", "nocolon"])

    def test_prompt_refused_without_tty(self):
        r = run("-c", self.file, "alice")
        self.assertEqual(r.returncode, 1)
        self.assertIn("no terminal", r.stderr)
        self.assertFalse(os.path.exists(self.file))

    def test_bad_usage(self):
        for args in (["-c", "-D", self.file, "a"], ["-U", self.file, "a"], ["-b", self.file],
                     ["-c", "-b", self.file, "a:b", "p"], ["-H", "sha512-pbkdf2", self.file, "a"],
                     ["-c", "-b", self.file, "a", ""]):
            r = run(*args)
            self.assertEqual(r.returncode, 1, args)
            self.assertTrue(r.stderr, args)
        r = run("--help")
        self.assertEqual(r.returncode, 0)
        self.assertIn("Usage: moat passwd", r.stdout)


if __name__ == "__main__":
    unittest.main()
