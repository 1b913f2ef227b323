"""The service runs numpy's and torch's thread pools at the configured size."""

from __future__ import annotations

import json
import subprocess
import sys

SCRIPT = """
import json, sys
import numpy, torch
from assistant.services import limit_numeric_threads
out = {}
for n in (1, 2):
    info = limit_numeric_threads(n)
    out[n] = {"pools": sorted({(i["user_api"], i["num_threads"]) for i in info}), "torch": torch.get_num_threads()}
print(json.dumps(out))
"""


def test_limit_numeric_threads_sets_every_loaded_pool() -> None:
    # A fresh interpreter: the limits are process-wide.
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert ["blas", 1] in out["1"]["pools"]
    assert all(n == 1 for _, n in out["1"]["pools"]) and out["1"]["torch"] == 1
    assert all(n == 2 for _, n in out["2"]["pools"]) and out["2"]["torch"] == 2
