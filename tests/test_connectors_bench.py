"""``bench/stripe_ingest.py`` stays runnable: a tiny run against the production command applies every event and
checks the orders it made (exit status 0), and reports events/s."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def test_stripe_ingest_bench_runs_and_checks_itself() -> None:
    completed = subprocess.run(
        [sys.executable, str(REPO_ROOT / "bench" / "stripe_ingest.py"), "--customers", "4", "--concurrency", "2"],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
        cwd=REPO_ROOT,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    report = json.loads(completed.stdout[completed.stdout.index("{") :])
    assert report["events"] == 12 and report["answers"] == {"applied": 12}
    assert report["paid_orders"] == {"purchase": 4, "subscription_create": 4}
    assert report["events_per_second"] > 0
