"""Point -> small grid router: an in-process index that agrees exactly with PostGIS ST_Covers."""

from gis.router.index import GridIndex

__all__ = ["GridIndex"]
