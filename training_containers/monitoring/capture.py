"""Read an endpoint's data capture (SageMaker's JSON Lines format) into rows, fast and forgivingly.

The capture folder is laid out as ``{variant}/yyyy/mm/dd/hh/*.jsonl`` (the endpoint's folder of
``training_containers/inference/capture.py``, or its S3 prefix downloaded by the processing job).
Each line is one request:

- ``captureData.endpointInput``: its body, CSV (one row a line, an optional header) or JSON
  (``{"instances": [...]}``, a list of rows, or one row; a row is a list in the model's feature
  order or an object keyed by feature);
- ``captureData.endpointOutput``: the answer, JSON ``{"predictions": [...]}`` or CSV (one
  prediction a line);
- ``eventMetadata``: ``eventId``, the caller's ``inferenceId`` when it sent one, and
  ``inferenceTime`` (ISO-8601 UTC).

Hour folders wholly outside the window are not opened. A line that is not JSON, lacks these
fields, or whose input and output disagree on the number of rows is skipped and counted in
``bad_lines``, with the first few reasons kept for the log: one corrupt line never loses the
rest.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

#: Reasons of skipped lines kept for the log.
MAX_REASONS = 20


@dataclass
class CaptureWindow:
    """The rows captured in a window.

    Attributes:
        frame: one row per captured feature row, the model's feature columns plus
            ``__prediction__``, ``__inference_id__`` (the caller's id or the event id, with
            ``:i`` for row ``i`` of a multi-row request), ``__time__`` (ISO-8601) and
            ``__variant__``.
        records: capture lines read; bad_lines: lines skipped; reasons: the first reasons.
        recent: the readable records at or after ``count_since`` (all when it is None).
        files: capture files opened.
    """

    frame: pd.DataFrame
    records: int = 0
    bad_lines: int = 0
    reasons: list[str] = field(default_factory=list)
    files: int = 0
    recent: int = 0


def hour_of(time_text: str | None) -> str | None:
    """``yyyy/mm/dd/hh`` of an ISO-8601 time (None stays None)."""
    if not time_text:
        return None
    return f"{time_text[0:4]}/{time_text[5:7]}/{time_text[8:10]}/{time_text[11:13]}"


def capture_files(root: Path, since: str | None, until: str) -> list[Path]:
    """The ``.jsonl`` files of hour folders that overlap ``[since, until)``, in time order."""
    first, last = hour_of(since), hour_of(until)
    found = []
    if not root.is_dir():
        return found
    for variant in sorted(p for p in root.iterdir() if p.is_dir()):
        for path in variant.glob("*/*/*/*/*.jsonl"):
            hour = "/".join(path.parent.relative_to(variant).parts)
            if (first is None or hour >= first) and (last is None or hour <= last):
                found.append(path)
    return sorted(found, key=lambda p: (p.parent.relative_to(p.parents[4]).as_posix(), p.name))


def read_capture(
    root: Path,
    features: list[str],
    categorical: set[str],
    since: str | None,
    until: str,
    count_since: str | None = None,
) -> CaptureWindow:
    """Read every captured row with ``since <= inferenceTime < until`` (see the module).

    Args:
        root: the endpoint's capture folder.
        features: the model's feature names, in its input order.
        categorical: the categorical ones (read as strings).
        since: the window's start (ISO-8601 UTC, ``...Z``), or None for all.
        until: its end (exclusive).
        count_since: the time from which readable records are counted in ``recent``.

    Returns:
        The window's rows and counts.
    """
    window = CaptureWindow(frame=pd.DataFrame())
    collected = _Collected()
    header = ",".join(features)
    for path in capture_files(root, since, until):
        window.files += 1
        with path.open("r", encoding="utf-8", errors="replace") as handle:
            for number, line in enumerate(handle, 1):
                if line.strip():
                    _take(window, collected, line, f"{path.name}:{number}", path.parents[4].name, header,
                          (since or "", until, count_since or ""))  # fmt: skip
    csv_lines, csv_meta = collected.csv_lines, collected.csv_meta
    json_rows, json_meta = collected.json_rows, collected.json_meta
    frames = []
    if csv_lines:
        dtypes = {name: "str" for name in categorical}
        frame = pd.read_csv(
            io.StringIO("\n".join(csv_lines)), header=None, names=features, dtype=dtypes,
            keep_default_na=True, on_bad_lines="skip", engine="c",
        )  # fmt: skip
        if len(frame) != len(csv_meta):  # a row with too many values: fall back to the csv module
            frame = _csv_frame(csv_lines, features)
        frames.append(_with_meta(frame, csv_meta))
    if json_rows:
        frames.append(_with_meta(_json_frame(json_rows, features), json_meta))
    if frames:
        window.frame = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    else:
        window.frame = pd.DataFrame(
            columns=[*features, "__prediction__", "__inference_id__", "__time__", "__variant__"]
        )
    for name in features:
        if name not in categorical and name in window.frame:
            window.frame[name] = pd.to_numeric(window.frame[name], errors="coerce")
    return window


@dataclass
class _Meta:
    """Per request: its id, time, variant and row count; per row: its prediction."""

    identities: list[str] = field(default_factory=list)
    times: list[str] = field(default_factory=list)
    variants: list[str] = field(default_factory=list)
    counts: list[int] = field(default_factory=list)
    predictions: list[Any] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.predictions)

    def add(self, identity: str, when: str, variant: str, predictions: list[Any]) -> None:
        self.identities.append(identity)
        self.times.append(when)
        self.variants.append(variant)
        self.counts.append(len(predictions))
        self.predictions.extend(predictions)


@dataclass
class _Collected:
    """The readable rows so far, CSV and JSON apart (each parsed in one go at the end)."""

    csv_lines: list[str] = field(default_factory=list)
    csv_meta: _Meta = field(default_factory=_Meta)
    json_rows: list[Any] = field(default_factory=list)
    json_meta: _Meta = field(default_factory=_Meta)


def _take(
    window: CaptureWindow,
    collected: _Collected,
    line: str,
    where: str,
    variant: str,
    header: str,
    times: tuple[str, str, str],
) -> None:
    """Add one capture line's rows to ``collected`` when it is readable and in the window."""
    since, until, count_since = times
    window.records += 1
    try:
        when, identity, kind, rows, predictions = _parse_line(line, header)
    except (ValueError, KeyError, TypeError, AttributeError) as err:
        _skip(window, f"{where}: {type(err).__name__}: {str(err)[:160]}")
        return
    if when < since or when >= until:
        window.records -= 1
        return
    if len(predictions) != len(rows):
        _skip(window, f"{where}: {len(rows)} input rows but {len(predictions)} predictions")
        return
    if when >= count_since:
        window.recent += 1
    target, meta = (
        (collected.csv_lines, collected.csv_meta)
        if kind == "csv"
        else (collected.json_rows, collected.json_meta)
    )
    target.extend(rows)
    meta.add(identity, when, variant, predictions)


def _skip(window: CaptureWindow, reason: str) -> None:
    window.bad_lines += 1
    if len(window.reasons) < MAX_REASONS:
        window.reasons.append(reason)


def _parse_line(line: str, header: str) -> tuple[str, str, str, list[Any], list[Any]]:
    """``(time, id, "csv"|"json", rows, predictions)`` of one capture line."""
    record = json.loads(line)
    data = record["captureData"]
    metadata = record["eventMetadata"]
    when = str(metadata["inferenceTime"])
    identity = str(metadata.get("inferenceId") or metadata["eventId"])
    source = data["endpointInput"]
    text = str(source["data"])
    content_type = str(source.get("observedContentType", "")).split(";", 1)[0].strip().lower()
    if content_type in ("text/csv", "application/csv") or source.get("encoding") == "CSV":
        lines = [row for row in text.splitlines() if row.strip()]
        if lines and lines[0].replace(" ", "") == header:
            lines = lines[1:]
        kind, rows = "csv", lines
    else:
        document = json.loads(text)
        if isinstance(document, dict):
            document = document["instances"]
        if not isinstance(document, list):
            raise TypeError("the captured input is not a list of rows")
        if document and not isinstance(document[0], list | dict):
            document = [document]
        kind, rows = "json", document
    if not rows:
        raise ValueError("the captured input has no rows")
    return when, identity, kind, rows, _predictions(data["endpointOutput"])


def _predictions(output: dict[str, Any]) -> list[Any]:
    text = str(output["data"])
    content_type = str(output.get("observedContentType", "")).split(";", 1)[0].strip().lower()
    if content_type in ("text/csv", "application/csv") or output.get("encoding") == "CSV":
        return [row.strip() for row in text.splitlines() if row.strip()]
    document = json.loads(text)
    predictions = document["predictions"] if isinstance(document, dict) else document
    if not isinstance(predictions, list):
        raise TypeError("the captured output holds no list of predictions")
    return predictions


def _csv_frame(lines: list[str], features: list[str]) -> pd.DataFrame:
    rows = []
    for row in csv.reader(lines):
        cells = [None if cell.strip() == "" else cell for cell in row[: len(features)]]
        rows.append(cells + [None] * (len(features) - len(cells)))
    return pd.DataFrame(rows, columns=features)


def _json_frame(rows: list[Any], features: list[str]) -> pd.DataFrame:
    if isinstance(rows[0], dict):
        return pd.DataFrame.from_records(rows, columns=features)
    width = len(features)
    fixed = [list(row[:width]) + [None] * (width - len(row)) if len(row) != width else row for row in rows]
    return pd.DataFrame(fixed, columns=features)


def _with_meta(frame: pd.DataFrame, meta: _Meta) -> pd.DataFrame:
    """Add the rows' id, time, variant and prediction columns, expanding requests to their rows.

    A row of a multi-row request is ``{id}:{i}`` (0-based), a single-row request's row its id.
    """
    counts = np.asarray(meta.counts, dtype=np.int64)
    identities = np.repeat(np.asarray(meta.identities, dtype=object), counts)
    multi = np.repeat(counts > 1, counts)
    if multi.any():
        offsets = np.arange(len(identities)) - np.repeat(np.cumsum(counts) - counts, counts)
        suffixed = pd.Series(identities[multi]) + ":" + pd.Series(offsets[multi]).astype(str)
        identities[multi] = suffixed.to_numpy(dtype=object)
    frame = frame.reset_index(drop=True)
    frame["__inference_id__"] = identities
    frame["__time__"] = np.repeat(np.asarray(meta.times, dtype=object), counts)
    frame["__variant__"] = np.repeat(np.asarray(meta.variants, dtype=object), counts)
    frame["__prediction__"] = np.asarray(meta.predictions, dtype=object)
    return frame
