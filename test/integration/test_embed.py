"""libparley, the embedding API (include/parley/parley.h): two peers inside
one process (test/integration/embed_check.c) against a real index: subscribe
before and after registration, fire-and-forget and acknowledged publishes,
binary bodies, a publish nobody hears, refused topics, orderly close."""
import subprocess
import os
import unittest

import harness as h


class Embed(unittest.TestCase):
    def test_embedded_peers(self):
        index = h.Index(lease=3)
        try:
            a, b = h.tmpdir("parley-embed-a-"), h.tmpdir("parley-embed-b-")
            r = subprocess.run(
                [os.path.join(h.BIN, "parley_embed_check"),
                            index.addr, a, b],
                capture_output=True, timeout=60 * h.SLOW)
            out = r.stdout.decode()
            self.assertEqual(r.returncode, 0, out + r.stderr.decode())
            self.assertIn("embed ok", out)
            self.assertNotIn("FAIL", out)
        finally:
            index.stop()


if __name__ == "__main__":
    h.main()
