"""A server entry script for the launcher test: it records every process that runs it."""

import os
import sys
from pathlib import Path

with open(os.environ["ENTRY_RUNS"], "a") as runs:  # top level: runs again in any re-importing child
    runs.write(f"{os.getpid()}\n")

if __name__ == "__main__":
    sys.path.insert(0, os.environ["REPO_ROOT"])
    from mcp_server.backends.local import launcher

    out = Path(os.environ["ENTRY_RUNS"]).with_name("job")
    env = {"PATH": os.environ["PATH"], "JOB_BEHAVIOUR": "report", "JOB_OUT": str(out / "out.txt")}
    out.mkdir()
    job = launcher.launch(
        "tests.functional.job_program", env, Path(os.environ["REPO_ROOT"]), out / "job.log", 8192
    )
    sys.exit(job.wait(60))
