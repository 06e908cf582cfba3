"""Out-of-core dataset preparation with DuckDB: load, version, clean, encode, split, outliers.

Every step is a SQL statement over tables in an in-memory DuckDB database with a memory limit:
what does not fit (tables included) is spilled to a scratch folder (DuckDB's out-of-core hash
aggregation, joins, sorts and windows), so the job's memory stays bounded whatever the file's
size, and nothing is written to disk while it fits. The meaning of each step is fixed, so the
same data and options give the same data version and the same splits on any machine:

- **version**: SHA-256 over the columns' names and types, then each row's ``hash()`` in the
  file's order; 12 hex digits. Any changed value, column, type or row order changes it (the
  hash function is DuckDB's, pinned with the image: an upgrade may give new versions).
- **duplicates** (``drop_duplicates``): the first of identical rows is kept (NULLs equal).
- **missing**: a row without a label is always dropped; with ``drop_missing`` every row with a
  NULL or NaN. Values are missing as pandas reads them (``NULL_STRINGS``).
- **labels** (classification): sorted distinct labels become codes 0..K-1 (float labels that
  are whole numbers become integers first, as ``0.0``/``1.0`` after a NaN).
- **split**: each row gets ``h = md5_number(seed:row)``. Unstratified, rows are ordered by
  ``h``; stratified, by ``((rank of h within its class) - 0.5) / class size``, then ``h``, which
  spreads every class evenly over the order. The first ``ceil(test * n)`` rows are the test
  split, the next ``ceil(validation / (train + validation) * (n - test))`` the validation
  split (scikit-learn's ``train_test_split`` rounding), the rest the training split; each
  split is written in that order (shuffled).
- **outliers** (training rows only, numeric features; NULL and NaN kept, columns with no spread
  skipped): ``iqr`` drops values outside ``[Q1 - factor * IQR, Q3 + factor * IQR]``, with exact
  quartiles interpolated linearly (pandas' and numpy's default); ``zscore`` drops
  ``|x - mean| / std > factor`` (sample standard deviation, ddof 1).
"""

from __future__ import annotations

import bz2
import difflib
import hashlib
import json
import lzma
import math
import shutil
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

SPLITS = ("train", "validation", "test")
#: Strings read as missing values: pandas' default ``na_values`` (``pandas.read_csv``).
NULL_STRINGS = [
    "",
    "#N/A",
    "#N/A N/A",
    "#NA",
    "-1.#IND",
    "-1.#QNAN",
    "-NaN",
    "-nan",
    "1.#IND",
    "1.#QNAN",
    "<NA>",
    "N/A",
    "NA",
    "NULL",
    "NaN",
    "None",
    "n/a",
    "nan",
    "null",
]
#: Types a CSV column may be read as: numbers or text. Dates and booleans stay text, as pandas
#: reads them, so the training job's pipeline sees the same kinds of column as before.
CSV_TYPES = ["BIGINT", "DOUBLE", "VARCHAR"]
#: DuckDB types whose columns are numeric features.
NUMERIC_TYPES = (
    "TINYINT",
    "SMALLINT",
    "INTEGER",
    "BIGINT",
    "HUGEINT",
    "UTINYINT",
    "USMALLINT",
    "UINTEGER",
    "UBIGINT",
    "UHUGEINT",
    "FLOAT",
    "DOUBLE",
    "DECIMAL",
)
#: Most distinct labels a classification target may have.
MAX_CLASSES = 10_000
#: Rows per batch when the version is computed (bounded memory, any file size).
BATCH_ROWS = 262_144
#: Decompressors for the CSV compressions DuckDB does not read itself (it reads gzip and zstd).
_DECOMPRESSORS = {".bz2": bz2.open, ".xz": lzma.open}


class DataError(Exception):
    """The data cannot be prepared as the spec asks; the message says why and what to change."""


@dataclass(frozen=True)
class SplitOptions:
    """``dataset.split`` of the spec: fractions (summing to 1), seed and stratification."""

    train: float = 0.7
    validation: float = 0.15
    test: float = 0.15
    seed: int = 42
    stratify: bool = True


@dataclass(frozen=True)
class PreparationOptions:
    """What shapes the prepared rows.

    Attributes:
        source: the spec's ``dataset.source``, quoted in messages.
        task: the spec's task.
        target: the label column, or None.
        split: the split fractions and seed.
        drop_duplicates: drop repeated rows.
        drop_missing: drop every row with a missing value (else only unlabelled rows).
        outliers: ``{"method": "iqr" | "zscore", "factor": float}`` or None.
        drop_columns: columns that are not features (scikit-learn's ``target`` column when the
            spec names no target).
        label_names: names of class codes 0..K-1 when the labels already are those integers.
    """

    source: str
    task: str
    target: str | None = None
    split: SplitOptions = field(default_factory=SplitOptions)
    drop_duplicates: bool = True
    drop_missing: bool = False
    outliers: dict[str, Any] | None = None
    drop_columns: tuple[str, ...] = ()
    label_names: list[str] | None = None


def connect(scratch: Path, memory_limit_mb: int, threads: int | None = None) -> duckdb.DuckDBPyConnection:
    """Open an in-memory DuckDB database that spills to ``scratch`` beyond ``memory_limit_mb`` MiB.

    In memory rather than a database file: the tables are intermediate, and a file would be
    written (and flushed) even for data that fits; beyond the limit both spill alike. The
    database is attached with ``COMPRESS``, so ``compact`` stores its tables compressed as a
    file would (ALP for decimals, dictionaries for text: the 319 MB CSV of
    benchmarks/prepare_throughput.py takes 92 MiB instead of 379), which leaves the memory
    limit to the sorts and windows that follow.
    """
    connection = duckdb.connect(":memory:")
    connection.execute("ATTACH ':memory:' AS prepared (COMPRESS)")
    connection.execute("USE prepared")
    connection.execute(f"SET memory_limit = '{int(memory_limit_mb)}MiB'")
    connection.execute(f"SET temp_directory = {literal(str(scratch / 'spill'))}")
    connection.execute("SET preserve_insertion_order = true")
    if threads:
        connection.execute(f"SET threads = {int(threads)}")
    return connection


def compact(connection: duckdb.DuckDBPyConnection) -> None:
    """Compress the tables written since the last call (a checkpoint of the in-memory database).

    Takes about 0.45 s for the 319 MB CSV of benchmarks/prepare_throughput.py.
    """
    connection.execute("CHECKPOINT prepared")


def literal(text: str) -> str:
    """``text`` as a SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def ident(name: str) -> str:
    """``name`` as a quoted SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def load_file(connection: duckdb.DuckDBPyConnection, path: Path, source: str, scratch: Path) -> None:
    """Load a CSV (plain, ``.gz``, ``.zst``, ``.bz2``, ``.xz`` or ``.zip``) or Parquet file as table ``raw``.

    Raises:
        DataError: an unsupported file type, or a file that cannot be read or parsed.
    """
    name = path.name.lower()
    if name.endswith((".parquet", ".pq")):
        kind, query = "Parquet", f"SELECT * FROM read_parquet({literal(str(path))})"
    elif ".csv" in name:
        kind = "CSV"
        path = _decompressed(path, scratch)
        nulls = ", ".join(literal(text) for text in NULL_STRINGS)
        types = ", ".join(literal(text) for text in CSV_TYPES)
        query = (
            f"SELECT * FROM read_csv({literal(str(path))}, header = true, nullstr = [{nulls}], "
            f"auto_type_candidates = [{types}]{{sample}})"
        )
    else:
        raise DataError(
            f"dataset.source {source}: unsupported file type {path.suffix!r}; use .csv or .parquet"
        )
    try:
        try:
            connection.execute(f"CREATE TABLE raw AS {query.format(sample='')}")
        except duckdb.ConversionException:
            # a value late in the file does not fit the type sniffed from the first rows:
            # sniff the whole file (a second pass) instead
            connection.execute("DROP TABLE IF EXISTS raw")
            connection.execute(f"CREATE TABLE raw AS {query.format(sample=', sample_size = -1')}")
    except (duckdb.Error, OSError, EOFError, zipfile.BadZipFile) as err:
        raise DataError(
            f"dataset.source {source}: cannot read {path.name} ({_first_line(err)}); "
            f"check that it is a valid {kind} file"
        ) from err


def append_feedback(
    connection: duckdb.DuckDBPyConnection, path: Path, target: str | None, label_names: list[str] | None
) -> tuple[int, int]:
    """Append a monitoring job's labelled captured rows (``feedback.parquet``) to table ``raw``.

    Columns are matched by name: a column of ``raw`` the file lacks is NULL, one the file has
    and ``raw`` lacks is ignored, and each value is cast to ``raw``'s type (``TRY_CAST``: a value
    that does not fit is NULL, and missing-value handling takes it). The label is text; a class
    name of a scikit-learn dataset becomes its code (``label_names``' order). A row whose label
    is not a value of the target's type is dropped.

    Returns:
        ``(rows appended, rows dropped for their label)``.

    Raises:
        DataError: no target, a target ``raw`` lacks, or a file that is not readable Parquet.
    """
    kinds = dict(columns(connection, "raw"))
    if target is None or target not in kinds:
        raise DataError(f"feedback rows need the target column {target!r} in the dataset")
    try:
        connection.execute(f"CREATE TEMP TABLE feedback AS SELECT * FROM read_parquet({literal(str(path))})")
    except duckdb.Error as err:
        raise DataError(f"cannot read the feedback rows {path.name}: {_first_line(err)}") from err
    present = {name for name, _ in columns(connection, "feedback")}
    label = f"CAST({ident(target)} AS VARCHAR)" if target in present else "NULL::VARCHAR"
    if label_names:
        cases = " ".join(
            f"WHEN {label} = {literal(name)} THEN {literal(str(i))}" for i, name in enumerate(label_names)
        )
        label = f"CASE {cases} ELSE {label} END"
    cast_label = f"TRY_CAST({label} AS {kinds[target]})"
    selected = [
        f"{cast_label} AS {ident(name)}"
        if name == target
        else (f"TRY_CAST({ident(name)} AS {kind})" if name in present else f"NULL::{kind}")
        + f" AS {ident(name)}"
        for name, kind in kinds.items()
    ]
    total = count(connection, "SELECT count(*) FROM feedback")
    before = count(connection, "SELECT count(*) FROM raw")
    connection.execute(
        f"INSERT INTO raw SELECT {', '.join(selected)} FROM feedback WHERE {cast_label} IS NOT NULL"
    )
    appended = count(connection, "SELECT count(*) FROM raw") - before
    connection.execute("DROP TABLE feedback")
    return appended, total - appended


def _decompressed(path: Path, scratch: Path) -> Path:
    """A CSV DuckDB can read: ``path`` itself, or its content decompressed into ``scratch``."""
    suffix = path.suffix.lower()
    if suffix not in (*_DECOMPRESSORS, ".zip"):
        return path
    target = scratch / "source.csv"
    try:
        if suffix == ".zip":
            with zipfile.ZipFile(path) as archive:
                members = [m for m in archive.namelist() if not m.endswith("/")]
                if len(members) != 1:
                    raise DataError(f"{path.name} holds {len(members)} files; a .csv.zip must hold one CSV")
                with archive.open(members[0]) as packed, target.open("wb") as out:
                    shutil.copyfileobj(packed, out, 1 << 20)
        else:
            with _DECOMPRESSORS[suffix](path, "rb") as packed, target.open("wb") as out:
                shutil.copyfileobj(packed, out, 1 << 20)
    except (OSError, EOFError, lzma.LZMAError, zipfile.BadZipFile) as err:
        raise DataError(f"cannot decompress {path.name} ({err}); check the file") from err
    return target


def columns(connection: duckdb.DuckDBPyConnection, table: str) -> list[tuple[str, str]]:
    """``[(name, type)]`` of a table's columns, in order."""
    return [(row[0], row[1]) for row in connection.execute(f"DESCRIBE {table}").fetchall()]


def count(connection: duckdb.DuckDBPyConnection, sql: str, params: list[Any] | None = None) -> int:
    """Run a query that returns one integer (a ``count(*)``) and return it."""
    return int(connection.execute(sql, params or []).fetchall()[0][0])


def check_loaded(raw_columns: list[tuple[str, str]], rows: int, options: PreparationOptions) -> None:
    """Check that the data has rows, columns and the target.

    Raises:
        DataError: no rows or no columns; no target for a supervised task; a target that is not a
            column (the message suggests the closest one and lists them).
    """
    if rows == 0 or not raw_columns:
        raise DataError(f"dataset {options.source} has no rows or no columns; check the file")
    target, task = options.target, options.task
    if target is None and task in ("classification", "regression"):
        raise DataError(f"dataset.target is required for {task}: name the column to predict")
    names = [name for name, _ in raw_columns]
    if target is not None and target not in names:
        shown = ", ".join(names[:50]) + (f" and {len(names) - 50} more" if len(names) > 50 else "")
        raise DataError(
            f"dataset.target {target!r} is not a column of {options.source}{did_you_mean(target, names)}; "
            f"available columns: {shown}"
        )


def did_you_mean(value: str, choices: list[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest choice, or an empty string."""
    close = difflib.get_close_matches(value, choices, n=1, cutoff=0.5)
    return f" (did you mean {close[0]!r}?)" if close else ""


def data_version(connection: duckdb.DuckDBPyConnection, raw_columns: list[tuple[str, str]]) -> str:
    """12 hex digits of SHA-256 over the columns and every row's hash, in the file's order."""
    digest = hashlib.sha256(json.dumps([[name, kind] for name, kind in raw_columns]).encode())
    row_hash = f"hash({', '.join(ident(name) for name, _ in raw_columns)})"
    reader = connection.sql(f"SELECT {row_hash} AS h FROM raw").to_arrow_reader(BATCH_ROWS)
    for batch in reader:
        digest.update(batch.column(0).to_numpy(zero_copy_only=False).tobytes())
    return digest.hexdigest()[:12]


def clean(
    connection: duckdb.DuckDBPyConnection, raw_columns: list[tuple[str, str]], options: PreparationOptions
) -> dict[str, int]:
    """Create view ``clean``: ``__row`` (the ``raw`` row id) and the target of the kept rows.

    Narrow on purpose: the kept rows' ids and labels are materialized as table ``usable``
    (``encode_labels`` or ``keep_target``), which counts the rows removed as missing; the wide
    rows are read from ``raw`` once, already in split order (``assign_splits``).

    Returns:
        The rows removed by kind; ``missing`` is filled in by ``count_missing`` once ``usable``
        exists.
    """
    rows_raw = count(connection, "SELECT count(*) FROM raw")
    everything = ", ".join(ident(name) for name, _ in raw_columns)
    conditions = ["true"]
    kept = rows_raw
    if options.drop_duplicates:
        # Identical rows have the same hash (DuckDB's hash() equates NULLs, NaNs, 0.0 and -0.0 as
        # GROUP BY does), so only the rows whose hash repeats are compared column by column: a
        # narrow aggregation over hashes instead of a wide one over every column.
        row_hash = f"hash({everything})"
        connection.execute(
            f"CREATE TABLE later_duplicates AS SELECT __row FROM ("
            f"SELECT rowid AS __row, row_number() OVER (PARTITION BY {everything} ORDER BY rowid) AS __k "
            f"FROM raw WHERE {row_hash} IN (SELECT __h FROM (SELECT {row_hash} AS __h FROM raw) "
            f"GROUP BY __h HAVING count(*) > 1)) WHERE __k > 1"
        )
        kept = rows_raw - count(connection, "SELECT count(*) FROM later_duplicates")
        conditions.append("rowid NOT IN (SELECT __row FROM later_duplicates)")
    checked = raw_columns if options.drop_missing else [c for c in raw_columns if c[0] == options.target]
    conditions += [_present(name, kind) for name, kind in checked]
    target = f", {ident(options.target)}" if options.target is not None else ""
    connection.execute(
        f"CREATE VIEW clean AS SELECT rowid AS __row{target} FROM raw WHERE {' AND '.join(conditions)}"
    )
    return {"duplicates": rows_raw - kept, "missing": kept, "outliers": 0}


def count_missing(connection: duckdb.DuckDBPyConnection, removed: dict[str, int]) -> dict[str, int]:
    """Fill in ``removed["missing"]`` (rows kept after duplicates, as ``clean`` left it) from ``usable``."""
    return {**removed, "missing": removed["missing"] - count(connection, "SELECT count(*) FROM usable")}


def keep_target(connection: duckdb.DuckDBPyConnection) -> None:
    """Create table ``usable`` (``__row``, ``__code`` NULL) from the ``clean`` rows: no labels to encode."""
    connection.execute("CREATE TABLE usable AS SELECT __row, NULL::BIGINT AS __code FROM clean")


def _present(name: str, kind: str) -> str:
    column = ident(name)
    if kind in ("FLOAT", "DOUBLE"):
        return f"({column} IS NOT NULL AND NOT isnan({column}))"
    return f"{column} IS NOT NULL"


def encode_labels(
    connection: duckdb.DuckDBPyConnection, target: str, kind: str, label_names: list[str] | None
) -> list[str]:
    """Give each ``clean`` row its label's code 0..K-1 (table ``usable``); return each code's label.

    Raises:
        DataError: more than ``MAX_CLASSES`` distinct labels.
    """
    column = ident(target)
    values = [
        row[0]
        for row in connection.execute(
            f"SELECT DISTINCT {column} FROM clean LIMIT {MAX_CLASSES + 1}"
        ).fetchall()
    ]
    if len(values) > MAX_CLASSES:
        raise DataError(
            f"dataset.target {target!r} has more than {MAX_CLASSES} distinct values, too many classes; "
            "use task: regression for a numeric target, or group the labels"
        )
    label_type = kind
    if kind in ("FLOAT", "DOUBLE") and all(float(v).is_integer() for v in values):
        values, label_type = [int(v) for v in values], "BIGINT"  # 0.0/1.0 after a NaN: labels 0 and 1
    try:
        values.sort()
    except TypeError:
        values.sort(key=str)
    connection.execute(f"CREATE TABLE labels (label {label_type}, code BIGINT)")
    connection.executemany("INSERT INTO labels VALUES (?, ?)", [[v, code] for code, v in enumerate(values)])
    connection.execute(
        f"CREATE TABLE usable AS SELECT clean.__row, labels.code AS __code "
        f"FROM clean JOIN labels ON CAST(clean.{column} AS {label_type}) = labels.label"
    )
    if label_names is not None and values == list(range(len(label_names))):
        return list(label_names)
    return [str(v) for v in values]


def split_sizes(rows: int, split: SplitOptions) -> dict[str, int]:
    """Rows of each split of ``rows``.

    Test ``ceil(test * n)``, validation ``ceil(v / (t + v) * rest)``, train the rest.
    """
    n_test = math.ceil(split.test * rows)
    n_validation = math.ceil(split.validation / (split.train + split.validation) * (rows - n_test))
    return {"train": rows - n_test - n_validation, "validation": n_validation, "test": n_test}


def check_split(
    connection: duckdb.DuckDBPyConnection,
    options: PreparationOptions,
    labels: list[str] | None,
    stratify: bool,
) -> dict[str, int]:
    """Check that the ``usable`` rows fill every split (and, stratified, every class); return the sizes.

    Raises:
        DataError: a split would be empty, or a class has fewer rows than there are splits.
    """
    rows = count(connection, "SELECT count(*) FROM usable")
    split = options.split
    names = [name for name in SPLITS if getattr(split, name) > 0]
    sizes = split_sizes(rows, split)
    if any(sizes[name] < 1 for name in names):
        shown = ", ".join(f"{name} {sizes[name]}" for name in names)
        raise DataError(
            f"dataset {options.source} has {rows} usable rows, too few for the split "
            f"({shown} rows); add data or change dataset.split"
        )
    if stratify and labels is not None:
        small = connection.execute(
            "SELECT __code, count(*) AS n FROM usable GROUP BY __code HAVING n < ? ORDER BY __code",
            [len(names)],
        ).fetchall()
        if small:
            shown = ", ".join(f"{labels[int(code)]!r}: {n}" for code, n in small[:20])
            raise DataError(
                f"dataset.target {options.target!r}: classes with fewer than {len(names)} rows "
                f"cannot be stratified into {len(names)} splits ({shown}); add rows, "
                "drop those classes, or set dataset.split.stratify: false"
            )
    return {name: sizes[name] for name in names}


def assign_splits(
    connection: duckdb.DuckDBPyConnection,
    options: PreparationOptions,
    sizes: dict[str, int],
    stratify: bool,
    labelled: bool,
) -> None:
    """Create table ``parts``: the ``usable`` rows of ``raw`` with their position ``__pos`` and ``__split``.

    The kept columns are read from ``raw`` once, joined to their position and sorted by it (the
    target replaced by its class code when ``labelled``). The table is stored in ``__pos``
    order, which scans keep (``preserve_insertion_order``), so each split is written shuffled
    without sorting again.
    """
    seed = literal(f"{options.split.seed}:")
    hashed = f"SELECT __row, __code, md5_number({seed} || __row) AS __h FROM usable"
    if stratify and labelled:
        connection.execute(
            "CREATE TABLE class_sizes AS SELECT __code, count(*) AS __n FROM usable GROUP BY __code"
        )
        # the class sizes joined after the rank within the class, not before: DuckDB's window
        # over a join's output is about half as fast
        ranked = (
            "SELECT __row, __code, __h, (__k - 0.5) / __n AS __u FROM (SELECT __row, __code, __h, "
            f"row_number() OVER (PARTITION BY __code ORDER BY __h, __row) AS __k FROM ({hashed})) "
            "JOIN class_sizes USING (__code)"
        )
        order = "__u, __h, __row"
    else:
        ranked, order = hashed, "__h, __row"
    connection.execute(
        f"CREATE TABLE placed AS SELECT __row, __code, row_number() OVER (ORDER BY {order}) - 1 AS __pos "
        f"FROM ({ranked})"
    )
    names = [name for name, _ in columns(connection, "raw") if name not in options.drop_columns]
    selected = ", ".join(
        f"placed.__code AS {ident(name)}" if labelled and name == options.target else f"raw.{ident(name)}"
        for name in names
    )
    n_test, n_validation = sizes["test"], sizes.get("validation", 0)
    connection.execute(
        f"CREATE TABLE parts AS SELECT {selected}, placed.__pos, CASE WHEN __pos < ? THEN 'test' "
        "WHEN __pos < ? THEN 'validation' ELSE 'train' END AS __split "
        "FROM raw JOIN placed ON raw.rowid = placed.__row ORDER BY __pos",
        [n_test, n_test + n_validation],
    )


def keep_rows(
    connection: duckdb.DuckDBPyConnection,
    features: list[tuple[str, str]],
    outliers: dict[str, Any] | None,
    values_in_memory: int = 0,
) -> None:
    """Create view ``kept``: the ``parts`` rows without the training rows that are outliers.

    A training row is an outlier when a numeric feature lies outside the IQR fences or beyond
    the z-score cut-off (see the module). The rows are filtered where they are read (the
    counts and the training split's file), not deleted.

    Args:
        connection: holds table ``parts``.
        features: ``[(name, type)]`` of the feature columns; only numeric ones are checked.
        outliers: ``{"method": "iqr" | "zscore", "factor": float}``, or None to keep every row.
        values_in_memory: how many values the quartiles may hold in memory at once; when one
            column's training values fit, the quartiles come from aggregates (``quantile_cont``)
            over as many columns at a time as fit, else each column's from an out-of-core sort.
            Both are exact.
    """
    conditions = _outlier_conditions(connection, features, outliers, values_in_memory) if outliers else []
    outlier = f"__split = 'train' AND ({' OR '.join(conditions)})" if conditions else "false"
    connection.execute(f"CREATE VIEW kept AS SELECT * FROM parts WHERE NOT ({outlier})")


def _outlier_conditions(
    connection: duckdb.DuckDBPyConnection,
    features: list[tuple[str, str]],
    outliers: dict[str, Any],
    values_in_memory: int,
) -> list[str]:
    """One SQL condition per numeric feature with spread: true where the row's value is an outlier."""
    numeric = [(name, kind) for name, kind in features if is_numeric(kind)]
    train_rows = count(connection, "SELECT count(*) FROM parts WHERE __split = 'train'")
    known: dict[str, tuple[float | None, float | None]] = {}
    per_query = values_in_memory // max(train_rows, 1)  # columns whose values fit in memory at once
    if outliers["method"] == "iqr" and per_query >= 1:
        names = [name for name, _ in numeric]
        for start in range(0, len(names), per_query):
            known.update(_all_quartiles(connection, names[start : start + per_query]))
    conditions: list[str] = []
    for name, _ in numeric:
        value = f"CAST({ident(name)} AS DOUBLE)"
        present = f"{value} IS NOT NULL AND NOT isnan({value})"
        if outliers["method"] == "iqr":
            q1, q3 = known[name] if name in known else _quartiles(connection, value, present)
            if q1 is None or q3 is None or not q3 - q1 > 0:
                continue
            spread = q3 - q1
            low, high = q1 - outliers["factor"] * spread, q3 + outliers["factor"] * spread
            conditions.append(f"({present} AND ({value} < {_double(low)} OR {value} > {_double(high)}))")
        else:
            mean, std = connection.execute(
                f"SELECT avg({value}), stddev_samp({value}) FROM parts WHERE __split = 'train' AND {present}"
            ).fetchall()[0]
            if std is None or not std > 0:
                continue
            factor = float(outliers["factor"])
            conditions.append(
                f"({present} AND abs(({value} - {_double(mean)}) / {_double(std)}) > {_double(factor)})"
            )
    return conditions


def _double(number: float) -> str:
    """A DOUBLE literal that reads back as exactly ``number`` (its shortest repr, cast)."""
    return f"CAST({literal(repr(float(number)))} AS DOUBLE)"


def _all_quartiles(
    connection: duckdb.DuckDBPyConnection, names: list[str]
) -> dict[str, tuple[float | None, float | None]]:
    """Exact Q1 and Q3 of every named column's training values (NULL and NaN left out), in one pass."""
    parts = []
    for name in names:
        value = f"CAST({ident(name)} AS DOUBLE)"
        parts.append(f"quantile_cont({value}, [0.25, 0.75]) FILTER (WHERE NOT isnan({value}))")
    row = connection.execute(f"SELECT {', '.join(parts)} FROM parts WHERE __split = 'train'").fetchall()[0]
    return {
        name: (None, None) if pair is None else (pair[0], pair[1])
        for name, pair in zip(names, row, strict=True)
    }


def _quartiles(
    connection: duckdb.DuckDBPyConnection, value: str, present: str
) -> tuple[float | None, float | None]:
    """Exact Q1 and Q3 of a column's training values, interpolated linearly, by an out-of-core sort."""
    total = count(connection, f"SELECT count(*) FROM parts WHERE __split = 'train' AND {present}")
    if total == 0:
        return None, None
    ranks: dict[float, tuple[int, int, float]] = {}
    for q in (0.25, 0.75):
        position = q * (total - 1)
        low = math.floor(position)
        ranks[q] = (low + 1, min(low + 2, total), position - low)  # 1-based ranks around the position
    wanted = sorted({rank for low, high, _ in ranks.values() for rank in (low, high)})
    rows = connection.execute(
        f"SELECT __rank, __x FROM (SELECT {value} AS __x, row_number() OVER (ORDER BY {value}) AS __rank "
        f"FROM parts WHERE __split = 'train' AND {present}) WHERE __rank IN ({', '.join(map(str, wanted))})"
    ).fetchall()
    at = dict(rows)
    q1, q3 = (at[low] + (at[high] - at[low]) * fraction for low, high, fraction in (ranks[0.25], ranks[0.75]))
    return q1, q3


def is_numeric(kind: str) -> bool:
    """Whether a DuckDB column type is a numeric feature (booleans are categorical)."""
    return kind.startswith(NUMERIC_TYPES)


def kept_counts(
    connection: duckdb.DuckDBPyConnection, target: str | None, labels: list[str] | None
) -> tuple[dict[str, int], dict[str, int] | None]:
    """Rows of each split in view ``kept``, and of each class over every split (by label), in one scan.

    Returns:
        ``({split: rows}, {label: rows})``; the second is None without labels.
    """
    by = ident(target) if labels is not None and target is not None else "NULL"
    rows = connection.execute(f"SELECT __split, {by}, count(*) FROM kept GROUP BY ALL").fetchall()
    sizes: dict[str, int] = {}
    classes: dict[int, int] = {}
    for split, code, n in rows:
        sizes[split] = sizes.get(split, 0) + int(n)
        if code is not None:
            classes[int(code)] = classes.get(int(code), 0) + int(n)
    if labels is None:
        return sizes, None
    return sizes, {label: classes.get(code, 0) for code, label in enumerate(labels)}


def write_parquet(connection: duckdb.DuckDBPyConnection, query: str, path: Path) -> None:
    """Write a query's rows, in its order, to a Parquet file (its folder is created)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    connection.execute(f"COPY ({query}) TO {literal(str(path))} (FORMAT parquet)")


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return (text[0] if text else type(err).__name__)[:300]
