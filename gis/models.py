"""SQLAlchemy 2 + GeoAlchemy2 models of the store. The Alembic migrations create these tables.

Grid boundaries are versioned the way MapIt versions areas with generations, but with real dates:
a ``Grid`` row holds one geometry of one code from ``version_low`` (inclusive) to ``version_high``
(exclusive; NULL while current), so an edit never overwrites history.
"""

from __future__ import annotations

import datetime as dt

from geoalchemy2 import Geometry
from sqlalchemy import (
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

LEVELS = ("large", "medium", "small")
CODE_LENGTH = {"large": 9, "medium": 12, "small": 15}
KINDS = {"large": ("urban", "rural"), "medium": ("urban", "rural"),
         "small": ("urban", "rural", "dedicated")}


class Base(DeclarativeBase):
    """Declarative base of every table."""


class District(Base):
    """A district sub-centre (区县 or 兰州新区), by its GB/T 2260 code."""

    __tablename__ = "district"

    code: Mapped[str] = mapped_column(String(6), primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    centre = mapped_column(Geometry("POINT", srid=4326, spatial_index=False), nullable=True)


class GridVersion(Base):
    """One state of the whole grid set; every boundary change makes a new one."""

    __tablename__ = "grid_version"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    valid_from: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=text("now()")
    )
    author: Mapped[str] = mapped_column(Text)
    reason: Mapped[str] = mapped_column(Text)
    summary = mapped_column(Text, nullable=True)


class Grid(Base):
    """One geometry of one grid code, valid over a range of grid versions."""

    __tablename__ = "grid"
    __table_args__ = (
        CheckConstraint("level IN ('large', 'medium', 'small')", name="grid_level"),
        CheckConstraint(
            "(level = 'small' AND kind IN ('urban', 'rural', 'dedicated'))"
            " OR (level <> 'small' AND kind IN ('urban', 'rural'))",
            name="grid_kind",
        ),
        CheckConstraint(
            "length(code) = CASE level WHEN 'large' THEN 9 WHEN 'medium' THEN 12 ELSE 15 END"
            " AND code ~ '^[0-9]+$'",
            name="grid_code_shape",
        ),
        CheckConstraint(
            "(level = 'large' AND parent_code IS NULL)"
            " OR (level <> 'large' AND left(code, length(parent_code)) = parent_code)",
            name="grid_code_parent",
        ),
        CheckConstraint("version_high IS NULL OR version_high > version_low", name="grid_range"),
        Index("grid_current_code", "code", unique=True,
              postgresql_where=text("version_high IS NULL")),
        Index("grid_code_low", "code", "version_low", unique=True),
        Index("grid_parent", "parent_code"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(15))
    level: Mapped[str] = mapped_column(String(6))
    parent_code = mapped_column(String(12), nullable=True)
    name: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(9))
    district_code: Mapped[str] = mapped_column(ForeignKey("district.code"))
    version_low: Mapped[int] = mapped_column(ForeignKey("grid_version.id"))
    version_high = mapped_column(ForeignKey("grid_version.id"), nullable=True)
    valid_from: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    valid_to = mapped_column(DateTime(timezone=True), nullable=True)
    vertex_count: Mapped[int] = mapped_column(Integer)
    geom = mapped_column(Geometry("MULTIPOLYGON", srid=4326), nullable=False)


class GridPart(Base):
    """ST_Subdivide'd pieces of a grid geometry: the GiST-indexed reference path for lookups."""

    __tablename__ = "grid_part"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    grid_id: Mapped[int] = mapped_column(ForeignKey("grid.id", ondelete="CASCADE"), index=True)
    level: Mapped[str] = mapped_column(String(6))
    geom = mapped_column(Geometry("POLYGON", srid=4326), nullable=False)


class Gridworker(Base):
    """The full-time gridworker of a small grid; the phone is personal data."""

    __tablename__ = "gridworker"

    worker_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    grid_code: Mapped[str] = mapped_column(String(15), index=True)
    name: Mapped[str] = mapped_column(Text)
    phone: Mapped[str] = mapped_column(String(20))
    on_duty_since: Mapped[dt.date] = mapped_column(Date)
    active: Mapped[int] = mapped_column(SmallInteger, server_default=text("1"))
