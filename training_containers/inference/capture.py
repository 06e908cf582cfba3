"""Data capture in SageMaker's format, written off the request path.

Each sampled request becomes one JSON Lines record, as SageMaker's data capture writes them::

    {"captureData": {"endpointInput": {"observedContentType": "application/json", "mode": "INPUT",
                                       "data": "...", "encoding": "JSON"},
                     "endpointOutput": {"observedContentType": "application/json", "mode": "OUTPUT",
                                        "data": "...", "encoding": "JSON"}},
     "eventMetadata": {"eventId": "<uuid>", "inferenceId": "<the caller's id>",
                       "inferenceTime": "2026-12-04T18:00:00Z"},
     "eventVersion": "0"}

``inferenceId`` is present when the caller sent ``X-Amzn-SageMaker-Inference-Id`` (SageMaker's
``InferenceId``): ground truth for model-quality monitoring names requests by it. Records land
under ``{root}/{endpoint}/{variant}/yyyy/mm/dd/hh/`` (UTC), the layout of SageMaker's S3 capture
prefix, so a monitor reads local and S3 capture alike. Records are kept by the request and
written in batches by one background thread; when too many wait (the disk cannot keep up) a
record is dropped and counted rather than slowing requests.
"""

from __future__ import annotations

import collections
import datetime as dt
import json
import random
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

#: Records waiting to be written before new ones are dropped.
QUEUE_SIZE = 100_000
#: Seconds between two writes of the waiting records.
FLUSH_INTERVAL_S = 0.25
_ENCODINGS = {"application/json": "JSON", "text/csv": "CSV"}


@dataclass(frozen=True)
class Captured:
    """One request and its response, as captured."""

    variant: str
    input_type: str
    input_data: str
    output_type: str
    output_data: str
    event_id: str
    time: dt.datetime
    inference_id: str = ""


def record(captured: Captured) -> dict[str, Any]:
    """The SageMaker data capture record of one request (see the module)."""

    def side(mode: str, content_type: str, data: str) -> dict[str, str]:
        kind = content_type.split(";", 1)[0].strip().lower()
        return {
            "observedContentType": content_type,
            "mode": mode,
            "data": data,
            "encoding": _ENCODINGS.get(kind, "JSON"),
        }

    return {
        "captureData": {
            "endpointInput": side("INPUT", captured.input_type, captured.input_data),
            "endpointOutput": side("OUTPUT", captured.output_type, captured.output_data),
        },
        "eventMetadata": {
            "eventId": captured.event_id,
            **({"inferenceId": captured.inference_id} if captured.inference_id else {}),
            "inferenceTime": captured.time.strftime("%Y-%m-%dT%H:%M:%SZ"),
        },
        "eventVersion": "0",
    }


def hour_folder(root: Path, endpoint: str, variant: str, time: dt.datetime) -> Path:
    """``{root}/{endpoint}/{variant}/yyyy/mm/dd/hh`` for a UTC time."""
    return root / endpoint / variant / time.strftime("%Y/%m/%d/%H")


class CaptureWriter:
    """Samples requests and writes their capture records from a background thread.

    A request only appends its bodies to a list (no lock wait, no thread wake-up); the thread
    wakes every ``flush_interval_s`` seconds and writes what has accumulated, so capture costs
    the request path about a microsecond and the writing is batched.

    Args:
        root: the capture destination folder.
        endpoint: the endpoint's name (the first folder level).
        sampling_percentage: the share of requests captured, percent (0-100).
        seed: seeds the sampling (tests), or None.
        flush_interval_s: seconds between writes.
    """

    def __init__(
        self,
        root: Path,
        endpoint: str,
        sampling_percentage: float,
        seed: int | None = None,
        flush_interval_s: float = FLUSH_INTERVAL_S,
    ) -> None:
        """Start the writer thread."""
        self.root, self.endpoint = Path(root), endpoint
        self.fraction = max(0.0, min(100.0, float(sampling_percentage))) / 100
        self.flush_interval_s = flush_interval_s
        self.dropped = 0
        self.written = 0
        self._random = random.Random(seed)
        self._pending: collections.deque[tuple[str, str, bytes, str, bytes, float, str]] = collections.deque()
        self._files: dict[tuple[str, str], IO[str]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="data-capture", daemon=True)
        self._thread.start()

    def offer(
        self,
        variant: str,
        input_type: str,
        input_data: bytes,
        output_type: str,
        output_data: bytes,
        inference_id: str = "",
    ) -> bool:
        """Keep one request for capture if it is sampled; never blocks. Returns whether it was kept.

        Past ``QUEUE_SIZE`` waiting records (the disk cannot keep up) the request is dropped and
        counted in ``dropped``.
        """
        if self.fraction <= 0 or self._random.random() >= self.fraction:
            return False
        if len(self._pending) >= QUEUE_SIZE:
            self.dropped += 1
            return False
        self._pending.append(
            (variant, input_type, input_data, output_type, output_data, time.time(), inference_id)
        )
        return True

    def close(self, timeout_s: float = 10.0) -> None:
        """Write what is waiting, then stop the thread and close the files."""
        self._stop.set()
        self._thread.join(timeout_s)

    def _run(self) -> None:
        while not self._stop.wait(self.flush_interval_s):
            self._write_pending()
        self._write_pending()
        for handle in self._files.values():
            handle.close()
        self._files.clear()

    def _write_pending(self) -> None:
        touched = set()
        while self._pending:
            variant, input_type, input_data, output_type, output_data, stamp, inference_id = (
                self._pending.popleft()
            )
            captured = Captured(
                variant,
                input_type,
                input_data.decode("utf-8", "replace"),
                output_type,
                output_data.decode("utf-8", "replace"),
                str(uuid.uuid4()),
                dt.datetime.fromtimestamp(stamp, dt.UTC),
                inference_id,
            )
            handle = self._file(captured)
            handle.write(json.dumps(record(captured), separators=(",", ":")) + "\n")
            touched.add(handle)
            self.written += 1
        for handle in touched:
            handle.flush()

    def _file(self, captured: Captured) -> IO[str]:
        """The open file of the capture's variant and hour (a new file each hour)."""
        hour = captured.time.strftime("%Y%m%d%H")
        key = (captured.variant, hour)
        handle = self._files.get(key)
        if handle is None:
            for old in [k for k in self._files if k[0] == captured.variant]:
                self._files.pop(old).close()
            folder = hour_folder(self.root, self.endpoint, captured.variant, captured.time)
            folder.mkdir(parents=True, exist_ok=True)
            name = f"{captured.time.strftime('%M-%S-%f')[:-3]}-{uuid.uuid4()}.jsonl"
            handle = self._files[key] = (folder / name).open("a", encoding="utf-8")
        return handle
