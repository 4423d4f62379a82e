import subprocess
import sys
from pathlib import Path


def test_the_web_process_freezes_what_it_loaded_out_of_the_garbage_collectors_reach():
    # A full collection walked every loaded module's objects during a request (docs/PERFORMANCE.md).
    loaded = subprocess.run(
        [sys.executable, "-c", "import gc, leaderboard.wsgi; print(gc.get_freeze_count())"],
        cwd=Path(__file__).resolve().parent.parent,
        capture_output=True,
        text=True,
        check=True,
    )
    assert int(loaded.stdout) > 10_000  # Django and the apps: some 80,000 objects
