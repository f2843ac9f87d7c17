"""Import events from a CSV of any size: streamed in chunks, one transaction per chunk.

Columns are the EventIn fields (source, source_id, category, severity, reported_at, status,
due_at, lon, lat, crs, grid_code, reporter_name, reporter_phone, text); other columns are
ignored and named in the counts. An empty cell is "not given". Each chunk commits on its own,
so an interrupted import keeps what it stored and a re-run only adds what is missing.
"""

from __future__ import annotations

import csv
import queue
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy.engine import Connection
from tqdm import tqdm

from gis.coords import parse_crs
from gis.errors import InvalidInput
from gis.events.ingest import (
    ALREADY,
    CREATED,
    REJECTED,
    IngestResult,
    PreparedBatch,
    StaleGridVersion,
    paused_gc,
    prepare_events,
    quick_gil_handoff,
    store_prepared,
)
from gis.events.model import EventIn
from gis.grid_snapshot import GridSnapshot

FIELDS = tuple(EventIn.model_fields)
REQUIRED = ("source", "source_id", "category", "severity", "reported_at")
CHUNK_ROWS = 20_000


@dataclass
class ImportCounts:
    """What an import did."""

    read: int = 0
    created: int = 0
    already_had: int = 0
    rejected: int = 0
    unrouted: int = 0
    ignored_columns: list[str] = field(default_factory=list)
    touched: set[str] = field(default_factory=set)

    def add(self, result: IngestResult) -> None:
        """Count one stored chunk."""
        self.read += len(result.outcomes)
        self.created += result.count(CREATED)
        self.already_had += result.count(ALREADY)
        self.rejected += result.count(REJECTED)
        self.unrouted += result.unrouted_created
        self.touched |= result.touched

    def summary(self) -> str:
        """One line for people."""
        return (f"{self.read} rows read: {self.created} created, {self.already_had} already had, "
                f"{self.rejected} rejected, {self.unrouted} of the new events unrouted")


def _header(path: Path, encoding: str) -> list[str]:
    header = pd.read_csv(path, dtype=str, nrows=0, encoding=encoding).columns.tolist()
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise InvalidInput(f"{path}: no column {', '.join(missing)} (columns: {', '.join(header)})")
    return [str(c) for c in header]


def csv_chunks(path: Path, chunk_rows: int = CHUNK_ROWS, encoding: str = "utf-8"
               ) -> Iterator[pd.DataFrame]:
    """The file as text chunks (no value guessed: empty cells stay empty strings)."""
    yield from pd.read_csv(path, dtype=str, keep_default_na=False, chunksize=chunk_rows,
                           encoding=encoding)


def chunk_rows(frame: pd.DataFrame, default_crs: str) -> list[dict[str, Any]]:
    """The event fields of each row as a dict; an empty crs cell takes the default."""
    columns = [c for c in FIELDS if c in frame.columns]
    values = zip(*(frame[c].tolist() for c in columns), strict=True)
    # An empty cell is "not given" (dropped here: cheaper than in the model).
    rows = [{c: v for c, v in zip(columns, row, strict=True) if v != ""} for row in values]
    if "crs" not in frame.columns or default_crs != "wgs84":
        for row in rows:
            row.setdefault("crs", default_crs)
    return rows


_DONE = object()


def _prepare_ahead(chunks: Iterator[pd.DataFrame], snapshot: Callable[[bool], GridSnapshot],
                   default_crs: str) -> Iterator[tuple[pd.DataFrame, PreparedBatch]]:
    """Read, validate and route the next chunk in a thread while the current one is stored.

    Parsing holds the GIL but storing mostly waits on PostgreSQL, so the two overlap.
    """
    ready: queue.Queue[Any] = queue.Queue(maxsize=2)
    stop = threading.Event()

    def produce() -> None:
        try:
            for frame in chunks:
                if stop.is_set():
                    return
                with paused_gc():
                    batch = prepare_events(snapshot(False), chunk_rows(frame, default_crs))
                ready.put((frame, batch))
            ready.put(_DONE)
        except BaseException as exc:  # handed to the consumer, raised there
            ready.put(exc)

    worker = threading.Thread(target=produce, name="event-import-prepare", daemon=True)
    worker.start()
    try:
        while (item := ready.get()) is not _DONE:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while worker.is_alive():  # unblock a producer waiting on a full queue
            try:
                ready.get(timeout=0.1)
            except queue.Empty:
                pass


def import_csv(begin: Callable[[], AbstractContextManager[Connection]],
               snapshot: Callable[[bool], GridSnapshot], source: Path, *,
               rejects: Path | None = None, crs: str = "wgs84", chunk_rows_n: int = CHUNK_ROWS,
               encoding: str = "utf-8", progress: bool = True,
               on_chunk: Callable[[IngestResult], None] | None = None) -> ImportCounts:
    """Ingest every row of ``source``; refused rows go to ``rejects`` with their reason.

    ``begin()`` gives the transaction of one chunk; ``snapshot(rebuild)`` the router snapshot
    (rebuilt when the grid version moved under the import).
    """
    default_crs = parse_crs(crs)
    header = _header(source, encoding)
    counts = ImportCounts(ignored_columns=[c for c in header if c not in FIELDS])
    bar = tqdm(unit=" events", unit_scale=True, disable=not progress,
               desc=f"importing {source.name}")
    reject_file = rejects.open("w", encoding="utf-8", newline="") if rejects else None
    writer = csv.writer(reject_file) if reject_file else None
    if writer is not None:
        writer.writerow(["row", *header, "reason"])
    try:
        chunks = csv_chunks(source, chunk_rows_n, encoding)
        with quick_gil_handoff():  # the store gets the GIL back at once from the parser
            for frame, batch in _prepare_ahead(chunks, snapshot, default_crs):
                result = _store_chunk(begin, snapshot, frame, batch, default_crs)
                if writer is not None:
                    records = frame.to_numpy(dtype=object)
                    for outcome in result.outcomes:
                        if outcome.result == REJECTED:
                            writer.writerow([counts.read + outcome.index + 1,
                                             *records[outcome.index], outcome.reason])
                counts.add(result)
                if on_chunk is not None:
                    on_chunk(result)
                bar.update(len(frame))
                bar.set_postfix(created=counts.created, rejected=counts.rejected, refresh=False)
    finally:
        bar.close()
        if reject_file is not None:
            reject_file.close()
    return counts


def _store_chunk(begin: Callable[[], AbstractContextManager[Connection]],
                 snapshot: Callable[[bool], GridSnapshot], frame: pd.DataFrame,
                 batch: PreparedBatch, default_crs: str) -> IngestResult:
    with paused_gc():
        try:
            with begin() as conn:
                return store_prepared(conn, batch)
        except StaleGridVersion:  # a boundary change committed: route this chunk again
            fresh = prepare_events(snapshot(True), chunk_rows(frame, default_crs))
            with begin() as conn:
                return store_prepared(conn, fresh)
