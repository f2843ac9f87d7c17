"""Settings of the colour layers (prefix ``MINQING_LAYERS_``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from layers.rules import DEFAULT_RULES


class LayerSettings(BaseSettings):
    """Which rules file colours the grids, and how often the service recomputes them."""

    model_config = SettingsConfigDict(env_prefix="MINQING_LAYERS_", extra="ignore")

    rules: Path = DEFAULT_RULES
    # Windows slide and pins expire with time alone: recompute this often (0: never).
    refresh_seconds: int = Field(default=300, ge=0)
