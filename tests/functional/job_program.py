"""A tiny job program for the launcher tests; JOB_BEHAVIOUR says what it does."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path


def main() -> None:
    """Report, fail, sleep or over-allocate, as JOB_BEHAVIOUR says."""
    behaviour = os.environ["JOB_BEHAVIOUR"]
    print("printed to stdout", flush=True)
    print("printed to stderr", file=sys.stderr, flush=True)
    if behaviour == "report":
        Path(os.environ["JOB_OUT"]).write_text(f"{behaviour}\n{os.getcwd()}\n{os.getpgrp()}\n")
    elif behaviour == "fail":
        raise ValueError("the job failed on purpose")
    elif behaviour == "sleep":
        time.sleep(60)
    elif behaviour == "allocate":
        blocks = [bytearray(256 * 1024 * 1024) for _ in range(16)]
        print(len(blocks))


if __name__ == "__main__":
    try:
        main()
    except BaseException as err:
        import traceback

        traceback.print_exc()
        sys.exit(1 if not isinstance(err, SystemExit) else err.code)
