"""Reading ground truth for ``mlops feedback``: a CSV of ``inference_id,label``, and the captured ids.

The file needs a header naming ``inference_id`` and ``label`` (other columns are ignored), at
most ``MAX_LABELS`` rows and 10 MB; ids and labels are at most 256 characters; an empty id or
label is an error naming the line. An id given twice keeps its last label (and is counted).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

#: Rows one upload takes (the put_ground_truth tool's limit).
MAX_LABELS = 100_000
#: The largest file read, bytes.
MAX_BYTES = 10 * 1024 * 1024
#: The longest id or label, characters.
MAX_CHARS = 256


def read_labels(path: Path) -> tuple[dict[str, str], int]:
    """Read the labels of a CSV file (see the module).

    Returns:
        ``(inference id -> label, ids given more than once)``.

    Raises:
        ValueError: the file cannot be read or does not fit; the message names the line and the fix.
    """
    try:
        size = path.stat().st_size
        if size > MAX_BYTES:
            raise ValueError(f"{path} is {size} bytes; send at most {MAX_BYTES} bytes per upload")
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as err:
        raise ValueError(f"{path} is not UTF-8 text ({err.reason} at byte {err.start})") from err
    except OSError as err:
        raise ValueError(f"cannot read {path}: {err.strerror or err}") from err
    reader = csv.DictReader(text.splitlines())
    columns = [c.strip() for c in reader.fieldnames or []]
    if "inference_id" not in columns or "label" not in columns:
        raise ValueError(
            f"{path} needs a header line with the columns inference_id and label (it has: "
            f"{', '.join(columns[:5]) or 'no header'})"
        )
    reader.fieldnames = columns
    labels: dict[str, str] = {}
    duplicates = 0
    for line, row in enumerate(reader, start=2):
        identity, label = (row.get("inference_id") or "").strip(), (row.get("label") or "").strip()
        if not identity or not label:
            raise ValueError(f"{path} line {line}: inference_id and label must both be set")
        if len(identity) > MAX_CHARS or len(label) > MAX_CHARS:
            raise ValueError(f"{path} line {line}: an id or label is over {MAX_CHARS} characters")
        duplicates += identity in labels
        labels[identity] = label
        if len(labels) > MAX_LABELS:
            raise ValueError(f"{path} has over {MAX_LABELS} labels; split it into several uploads")
    if not labels:
        raise ValueError(f"{path} has no label rows under its header")
    return labels, duplicates


def captured_ids(folder: Path) -> set[str]:
    """Every request's inference id (the caller's, else the event id) in a capture folder."""
    found: set[str] = set()
    for path in folder.glob("*/*/*/*/*/*.jsonl"):
        with path.open(encoding="utf-8", errors="replace") as handle:
            for line in handle:
                try:
                    metadata = json.loads(line)["eventMetadata"]
                except (ValueError, KeyError, TypeError):
                    continue
                found.add(str(metadata.get("inferenceId") or metadata.get("eventId") or ""))
    return found


def unknown_ids(labels: dict[str, str], known: set[str]) -> list[str]:
    """The ids of ``labels`` that name no captured request (``ID:i`` names a row of request ``ID``)."""
    return [i for i in labels if i not in known and i.rsplit(":", 1)[0] not in known]
