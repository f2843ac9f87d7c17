"""An event as JSON for one caller: reporter contact and text only where the role may see them."""

from __future__ import annotations

from typing import Any

from gis.auth import Caller, mask_phone


def _iso(value: Any) -> str | None:
    return None if value is None else value.isoformat()


def event_json(row: Any, caller: Caller) -> dict[str, Any]:
    """The event's fields; personal ones are left out (absent, not null) unless allowed."""
    code = row["grid_code"]
    body: dict[str, Any] = {
        "id": int(row["id"]), "source": row["source"], "source_id": row["source_id"],
        "category": row["category"], "severity": int(row["severity"]),
        "status": row["status"], "overdue": bool(row["overdue"]),
        "reported_at": _iso(row["reported_at"]), "due_at": _iso(row["due_at"]),
        "grid": None if code is None else {
            "small": code, "medium": code[:12], "large": code[:9], "district": code[:6]},
        "grid_version": row["grid_version"], "route": row["route"],
        "route_note": row["route_note"],
        "snap_distance_m": None if row["snap_distance_m"] is None
        else round(float(row["snap_distance_m"]), 1),
        "position": None if row["lon"] is None else {"lon": row["lon"], "lat": row["lat"]},
        "input": None if row["input_lon"] is None else {
            "lon": row["input_lon"], "lat": row["input_lat"], "crs": row["input_crs"]},
        "received_at": _iso(row["received_at"]), "updated_at": _iso(row["updated_at"]),
    }
    if caller.sees_event_personal_data(code):
        body["reporter_name"] = row["reporter_name"]
        body["reporter_phone"] = row["reporter_phone"]
    elif caller.sees_masked_reporter_phone and row["reporter_phone"]:
        body["reporter_phone"] = mask_phone(str(row["reporter_phone"]))
    if caller.sees_event_text(code):
        body["text"] = row["text"]
    return body


def event_feature(row: Any, caller: Caller) -> dict[str, Any]:
    """The event as a GeoJSON Feature (null geometry when it has no position)."""
    properties = event_json(row, caller)
    position = properties.pop("position")
    geometry = None if position is None else {
        "type": "Point", "coordinates": [position["lon"], position["lat"]]}
    return {"type": "Feature", "id": properties["id"], "geometry": geometry,
            "properties": properties}
