"""transformers' lazy names resolved from two threads at once (a cold start converts two models in parallel)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.integration

# A fresh interpreter: in this one, transformers may be imported already and the race could not happen.
SCRIPT = textwrap.dedent(
    """
    import threading
    from retrieval.hf import transformers_names

    errors = []
    def resolve(*names):
        try:
            import torch  # as the callers do: the race showed most often with torch imported beside it

            transformers_names(*names)
        except Exception as e:
            errors.append(repr(e))

    threads = [
        threading.Thread(target=resolve, args=("AutoModel", "AutoTokenizer")),
        threading.Thread(target=resolve, args=("AutoModelForCausalLM", "AutoTokenizer", "GgufConfig")),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print(errors)
    """
)


def test_two_threads_resolve_transformers_names() -> None:
    # Without the lock, the second thread failed with "cannot import name 'AutoModelForCausalLM'" 3 runs of 3.
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "[]", done.stdout[-2000:]
