"""pygeoapi's PostgreSQL provider, with bad filters answered 400 and lon/lat geometry literals.

pygeoapi hands CQL2 geometry literals to PostGIS as ``SRID=CRS84;…`` when the storage CRS is
CRS84, and lets a filter on an unknown property or of the wrong type escape as a 500. This
subclass fixes both before the query runs; everything else is pygeoapi's own code.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

import shapely
from geoalchemy2.shape import to_shape
from pygeoapi.provider.base import ProviderInvalidQueryError
from pygeoapi.provider.sql import PostgreSQLProvider, get_table_model
from pygeofilter import ast, values
from sqlalchemy import and_, or_
from sqlalchemy.exc import DataError, InternalError, ProgrammingError

log = logging.getLogger(__name__)

# PostGIS's SRID 4326 is lon/lat: the same numbers as CRS84.
_LON_LAT_NAMES = {"urn:ogc:def:crs:OGC::CRS84", "urn:ogc:def:crs:OGC:1.3:CRS84",
                  "http://www.opengis.net/def/crs/OGC/1.3/CRS84"}


def _walk(node: Any) -> list[Any]:
    """Every node of a parsed filter, depth first."""
    found = [node]
    for sub in getattr(node, "get_sub_nodes", lambda: [])() or []:
        found.extend(_walk(sub))
    return found


BEIJING = dt.timezone(dt.timedelta(hours=8))
AT_PARAMETER = "at"


def parse_at(text: str) -> dt.datetime:
    """``YYYY-MM-DD`` (or an ISO date-time) as a moment; a bare date is Beijing midnight."""
    try:
        moment = dt.datetime.fromisoformat(text.strip())
    except ValueError as exc:
        raise ProviderInvalidQueryError(
            user_msg=f"at={text!r} is not a date: use YYYY-MM-DD") from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=BEIJING)


def geometry_mapping(geom: Any) -> dict[str, Any]:
    """GeoJSON geometry of a (multi)polygon, each ring's coordinates copied out in one call.

    shapely's ``__geo_interface__`` walks every coordinate in Python (a third of a 1000-grid
    page); ``get_coordinates().tolist()`` does a ring at once and gives the same numbers.
    """
    kind = geom.geom_type
    if kind == "MultiPolygon":
        return {"type": kind, "coordinates": [_rings(part) for part in geom.geoms]}
    if kind == "Polygon":
        return {"type": kind, "coordinates": _rings(geom)}
    return dict(shapely.geometry.mapping(geom))


def _rings(polygon: Any) -> list[list[list[float]]]:
    return [shapely.get_coordinates(ring).tolist()
            for ring in (polygon.exterior, *polygon.interiors)]


class GridProvider(PostgreSQLProvider):
    """The grid and heat views as features; filter mistakes become ProviderInvalidQueryError.

    With ``include_extra_query_parameters`` on (the grid collections), ``?at=YYYY-MM-DD``
    reads the collection's ``<view>_history`` view as in force at that moment; other unknown
    query parameters are ignored, as pygeoapi does without the option.
    """

    _at: dt.datetime | None = None

    def _get_property_filters(self, properties: Any) -> Any:
        clauses = []
        columns = self.table_model.__table__.columns
        for name, value in properties or []:
            if name == AT_PARAMETER and self._at is not None:
                model = self.table_model
                clauses.append(and_(model.valid_from <= self._at,
                                    or_(model.valid_to.is_(None), model.valid_to > self._at)))
                continue
            if name not in self.fields or name not in columns:
                continue
            column = getattr(self.table_model, name)
            clauses.append(column == self._typed(name, columns[name], value))
        return and_(*clauses) if clauses else True

    @staticmethod
    def _typed(name: str, column: Any, value: str) -> Any:
        try:
            python_type = column.type.python_type
        except NotImplementedError:
            return value
        if python_type in (int, float):
            try:
                return python_type(value)
            except ValueError as exc:
                kind = "an integer" if python_type is int else "a number"
                raise ProviderInvalidQueryError(
                    user_msg=f"{name}={value!r}: {name} is {kind}") from exc
        return value

    def _get_cql_filters(self, filterq: Any) -> Any:
        if not filterq:
            return True
        columns = set(self.table_model.__table__.columns.keys())
        for node in _walk(filterq):
            if isinstance(node, ast.Attribute) and node.name not in columns:
                raise ProviderInvalidQueryError(
                    user_msg=f"unknown property in filter: {node.name!r}; queryable: "
                             f"{', '.join(sorted(columns - {self.geom}))}, geometry")
            if isinstance(node, values.Geometry):
                name = node.geometry.get("crs", {}).get("properties", {}).get("name")
                if name in _LON_LAT_NAMES:
                    node.geometry["crs"] = {"properties": {"name": "urn:ogc:def:crs:EPSG::4326"}}
        try:
            return super()._get_cql_filters(filterq)
        except (KeyError, AttributeError, TypeError, ValueError, NotImplementedError) as exc:
            log.info("CQL2 filter refused: %r", exc)
            raise ProviderInvalidQueryError(
                user_msg="the filter uses an operation or value these collections do not "
                         "support") from exc

    def _sqlalchemy_to_feature(self, item: Any, crs_transform_out: Any = None,
                               select_properties: Any = ()) -> dict[str, Any]:
        # pygeoapi's own conversion, with geometry_mapping in place of shapely's mapping().
        row = item.__dict__
        feature: dict[str, Any] = {"type": "Feature", "properties": {},
                                   "id": row[self.id_field], "geometry": None}
        if row.get(self.geom) is not None:
            geom = to_shape(row[self.geom])
            if crs_transform_out is not None:
                geom = crs_transform_out(geom)
            feature["geometry"] = geometry_mapping(geom)
        for key in select_properties or self.fields.keys():
            if key in row:
                feature["properties"][key] = row[key]
        return feature

    def query(self, **kwargs: Any) -> dict[str, Any]:
        """Run pygeoapi's query; values the database refuses answer 400, not 500."""
        at = [v for k, v in kwargs.get("properties") or [] if k == AT_PARAMETER]
        if at and self.include_extra_query_parameters:
            # One provider object serves one request (pygeoapi loads it per request).
            self._at = parse_at(at[-1])
            self.table_model = get_table_model(f"{self.table}_history", self.id_field,
                                               self.db_search_path, self._engine)
        try:
            result: dict[str, Any] = super().query(**kwargs)
        except (DataError, ProgrammingError, InternalError) as exc:
            log.info("OGC query refused by the database: %s", exc.orig)
            raise ProviderInvalidQueryError(
                user_msg="the database refused a value of the query: compare numbers with "
                         "score and the counts, text elsewhere, and give valid geometries"
            ) from exc
        return result
