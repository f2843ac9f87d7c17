"""The synthetic Lanzhou: a deterministic stand-in grid set with a roster, events and probes.

``make_fixtures(out_dir, seed, events)`` writes, as deterministic UTF-8 text (same seed, same
bytes): ``grids_large.geojson``, ``grids_medium.geojson``, ``grids_small.geojson`` (110 / 1086 /
7507 grids, MultiPolygons, features sorted by code), ``districts.csv``, ``gridworkers.csv``,
``events.csv``, ``probes.csv`` and ``manifest.json`` (seed, counts, SHA-256 of every file).

Guarantees: every coordinate is a multiple of 2**-24 degree; shared edges have identical
coordinates on both sides; each level tiles its parent with no gap and no overlap; every
geometry is valid; dedicated grids are holes of urban grids in the same medium grid. The owner
of a point covered by several small grids is the covering grid with the lowest code.
"""

from gis.synth.build import DEFAULT_EVENTS, DEFAULT_SEED, make_fixtures

__all__ = ["DEFAULT_EVENTS", "DEFAULT_SEED", "make_fixtures"]
