"""Fixture files: GeoJSON grid layers, CSV tables and the manifest, as deterministic UTF-8 text."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from gis.synth.catalogue import Grid
from gis.synth.geography import UNITS_PER_DEGREE
from gis.synth.rings import PolygonRings


class CoordinateText:
    """Exact decimal text (the float repr, as json.dumps writes it) of lattice coordinates.

    Each vertex appears in up to three layers and two neighbouring grids, so caching the text of
    each integer coordinate saves most of the float formatting, the slowest part of writing.
    """

    def __init__(self) -> None:
        self._text: dict[int, str] = {}

    def _value(self, units: int) -> str:
        text = self._text.get(units)
        if text is None:
            text = self._text[units] = repr(units / UNITS_PER_DEGREE)
        return text

    def ring(self, ring: np.ndarray) -> str:
        """A GeoJSON ring: [[lon,lat],...]."""
        value = self._value
        return "[" + ",".join(f"[{value(x)},{value(y)}]" for x, y in ring.tolist()) + "]"

    def multipolygon(self, polygons: list[PolygonRings]) -> str:
        """GeoJSON MultiPolygon coordinates."""
        return "[" + ",".join(
            "[" + ",".join(self.ring(r) for r in (shell, *holes)) + "]"
            for shell, holes in polygons) + "]"


def grid_feature(grid: Grid, text: CoordinateText) -> str:
    """One GeoJSON Feature on one line, the same bytes json.dumps would give."""
    properties = {
        "code": grid.code, "parent_code": grid.parent_code, "name": grid.name,
        "level": grid.level, "kind": grid.kind, "district_code": grid.district.code,
        "district_name": grid.district.name,
    }
    head = json.dumps(properties, ensure_ascii=False, separators=(",", ":"))
    return ('{"type":"Feature","properties":' + head
            + ',"geometry":{"type":"MultiPolygon","coordinates":'
            + text.multipolygon(grid.polygons) + "}}")


def write_grids(path: Path, grids: Iterable[Grid], text: CoordinateText) -> None:
    """A FeatureCollection, one feature per line, in the given (code) order."""
    body = ",\n".join(grid_feature(g, text) for g in grids)
    content = '{"type":"FeatureCollection","features":[\n' + body + "\n]}\n"
    path.write_text(content, encoding="utf-8", newline="\n")


def write_csv(path: Path, columns: Sequence[str], rows: Iterable[dict[str, str]]) -> None:
    """A CSV table with a header row, LF line ends."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(columns), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    path.write_text(buffer.getvalue(), encoding="utf-8", newline="\n")


def write_json(path: Path, data: object) -> None:
    """Pretty JSON with sorted keys and a final newline."""
    text = json.dumps(data, ensure_ascii=False, indent=2, sort_keys=True) + "\n"
    path.write_text(text, encoding="utf-8", newline="\n")


def sha256_of(path: Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    return hashlib.sha256(path.read_bytes()).hexdigest()
