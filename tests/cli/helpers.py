"""Running the `tailored` console script as a user does: a real subprocess, one BLAS/OpenMP thread per command
(several run at once on a small pool), wide uncoloured output; and the checks every CLI test uses."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

TAILORED = shutil.which("tailored") or str(Path(sys.executable).with_name("tailored"))
# one BLAS/OpenMP thread per command: several commands run at once on a small machine
THREADS = {name: "1" for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "TAILORED_NUM_THREADS")}
ENV = {**os.environ, "COLUMNS": "300", "NO_COLOR": "1", **THREADS}
POOL = ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2))


def cli(*args: object, cwd: Path, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    """Run `tailored ARGS...` in ``cwd`` and wait."""
    return subprocess.run([TAILORED, *map(str, args)], cwd=cwd, env=ENV, capture_output=True, text=True,
                          timeout=timeout)


def ok(result: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert result.returncode == 0, f"exit {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    return result


def flat(text: str) -> str:
    """Whitespace-normalised text (rich wraps long lines)."""
    return " ".join(text.split())
