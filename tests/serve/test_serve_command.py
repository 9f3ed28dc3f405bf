"""`tailored serve` as a script runs it: clear errors (exit 2, no traceback) for a damaged model or an unusable
database, a "listening on" line once it accepts connections, and one access line per request without ids."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import httpx

from tests.serve.test_hostile import PRIVATE, events
from tests.serve.test_robustness import keys_for
from tests.serve.test_service import auth


def serve(*args: object, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tailored", "serve", *map(str, args)], cwd=cwd, capture_output=True,
                          text=True, timeout=120)


def test_serve_refuses_a_damaged_model_or_an_unusable_database_with_exit_2(model_dir, tmp_path) -> None:
    truncated = tmp_path / "truncated"
    shutil.copytree(model_dir, truncated)
    arrays = truncated / "arrays.npz"
    arrays.write_bytes(arrays.read_bytes()[:100])
    database = tmp_path / "tailored.db"
    keys_for(f"sqlite:///{database}")
    cases = [
        (["--model-dir", "truncated"], "Model in truncated is damaged: arrays.npz has 100 bytes where"),
        (["--model-dir", model_dir, "--db", "mysql://host/db"], "Unsupported database URL 'mysql://host/db'"),
        (["--model-dir", model_dir, "--db", "sqlite:///missing/events.db"],
         "The folder missing of the SQLite database missing/events.db does not exist"),
        (["--model-dir", model_dir, "--db", f"sqlite:///file:{database}?mode=ro&uri=true"],
         "takes no writes (attempt to write a readonly database)"),
    ]
    for args, message in cases:
        refused = serve(*args, "--port", "0", cwd=tmp_path)
        text = " ".join(refused.stderr.split())
        assert refused.returncode == 2 and message in text and "Traceback" not in text, (args, refused.stderr)
    assert not (tmp_path / "missing").exists()


def test_serve_announces_where_it_listens_and_logs_each_request_by_route(model_dir, tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    keys = keys_for(url)
    server = subprocess.Popen([sys.executable, "-m", "tailored", "serve", "--model-dir", str(model_dir), "--db", url,
                               "--port", "0"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                              env=os.environ)
    try:
        announced = server.stderr.readline()  # the first line, once connections are accepted: no polling needed
        found = re.fullmatch(r"listening on (http://127\.0\.0\.1:\d+)\n", announced)
        assert found, announced
        base = found.group(1)
        user = f"{base}/v1/users/{PRIVATE[0]}/recommendations"
        assert httpx.get(user, headers=auth(keys["recommend"])).status_code == 200
        assert httpx.get(user).status_code == 401
        posted = httpx.post(f"{base}/v1/events", json=events(PRIVATE[2]), headers=auth(keys["events:write"]))
        assert posted.status_code == 200
    finally:
        server.terminate()
        log = server.stderr.read()
        server.wait(timeout=30)
    lines = log.splitlines()
    assert re.fullmatch(r"method=GET route=/v1/users/\{user_id\}/recommendations status=200 ms=\d+\.\d\d",
                        lines[0]), log
    assert lines[1].startswith("method=GET route=unmatched status=401 ms=")
    assert lines[2].startswith("method=POST route=/v1/events status=200 ms=")
    assert not any(private in log for private in PRIVATE), log
