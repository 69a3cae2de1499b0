"""The README's Python example is examples/quickstart.py, and it runs."""

import os
import re
import subprocess
import sys
import unittest

from tests import server

HERE = os.path.dirname(os.path.abspath(__file__))
EXAMPLE = os.path.join(HERE, "..", "examples", "quickstart.py")
README = os.path.join(server.REPO_ROOT, "README.md")


def readme_block() -> str:
    """The python block of the README's "From Python" section."""
    with open(README, encoding="utf-8") as f:
        text = f.read()
    m = re.search(r"^## From Python\n(.*?)(?=^## )", text, re.S | re.M)
    if m is None:
        raise AssertionError("README.md has no section '## From Python'")
    blocks = re.findall(r"^```python\n(.*?)^```$", m.group(1), re.S | re.M)
    if len(blocks) != 1:
        raise AssertionError("the From Python section should have one python block, has %d" % len(blocks))
    return str(blocks[0])


class ExampleTest(unittest.TestCase):
    def test_readme_block_is_the_example(self) -> None:
        with open(EXAMPLE, encoding="utf-8") as f:
            example = f.read()
        m = re.search(r"^# README from here\n(.*?)^# README to here\n", example, re.S | re.M)
        assert m is not None, "the example lost its README markers"
        self.assertEqual(readme_block(), m.group(1), "README.md's From Python block and examples/quickstart.py differ")

    def test_example_runs_against_tokend(self) -> None:
        admin = server.admin_client()
        app = admin.create_app(server.name("quickstart"), token_prefix="shop", permissions=["orders:read"])
        it = admin.create_token(app["id"], "quickstart bot", access="read_only", allowed_ips=["10.0.0.0/8"])
        env = dict(os.environ, TOKEND_URL=server.shared().url, SECRET=it.secret,
                   PYTHONPATH=os.path.join(HERE, ".."))  # fmt: skip
        r = subprocess.run([sys.executable, EXAMPLE], env=env, capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, "True VALID\n200 OK hello quickstart bot\n")
        self.assertNotIn(it.secret, r.stdout + r.stderr)


if __name__ == "__main__":
    unittest.main()
