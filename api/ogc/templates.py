"""pygeoapi's HTML templates with every CDN asset replaced by a copy the app serves itself.

pygeoapi's pages load Bootstrap, Leaflet and Leaflet plugins from unpkg, cdnjs and jsdelivr;
a city intranet has no internet. At start-up the templates that name such an asset are
written, rewritten, into the config folder (``server.templates.path``, which pygeoapi searches
before its own): each asset points at ``{base}/vendor/…`` (``api/static/vendor``, served by the
mount), and the few that no page served here needs are dropped. Rewriting pygeoapi's own files
at each start keeps them in step with the installed pygeoapi, with no copied templates to
maintain; the ``openapi/`` pages are the project's own (``api/ogc/html``: Swagger UI is not
vendored).
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

import pygeoapi

PYGEOAPI_TEMPLATES = Path(pygeoapi.__file__).parent / "templates"
OWN_TEMPLATES = Path(__file__).parent / "html"
VENDOR_URL = "{{ config['server']['url'] }}/vendor"

# CDN asset → its copy under api/static/vendor (Leaflet 1.9 reads pygeoapi's Leaflet 1.3 code).
ASSETS = {
    "https://unpkg.com/bootstrap@5.1.3/dist/css/bootstrap.min.css":
        "bootstrap-5.1.3/bootstrap.min.css",
    "https://unpkg.com/leaflet@1.3.1/dist/leaflet.css": "leaflet-1.9.4/leaflet.css",
    "https://unpkg.com/leaflet@1.3.1/dist/leaflet.js": "leaflet-1.9.4/leaflet.js",
    "https://cdnjs.cloudflare.com/ajax/libs/leaflet/1.3.1/leaflet.js": "leaflet-1.9.4/leaflet.js",
    "https://unpkg.com/leaflet.vectorgrid@latest/dist/Leaflet.VectorGrid.bundled.js":
        "leaflet.vectorgrid-1.3.0/Leaflet.VectorGrid.bundled.min.js",
    "https://unpkg.com/leaflet.markercluster/dist/MarkerCluster.css":
        "leaflet.markercluster-1.5.3/MarkerCluster.css",
    "https://unpkg.com/leaflet.markercluster/dist/MarkerCluster.Default.css":
        "leaflet.markercluster-1.5.3/MarkerCluster.Default.css",
    "https://unpkg.com/leaflet.markercluster/dist/leaflet.markercluster-src.js":
        "leaflet.markercluster-1.5.3/leaflet.markercluster.js",
}
# Loaded by pygeoapi's pages but used by none served here: html5shiv (Internet Explorer 8),
# Leaflet.draw (included, never called), the OGC map overlay (map collections only).
DROPPED = ("/html5shiv/", "/leaflet-draw@", "/leaflet-imageoverlay-ogcapi@")

_ASSET_TAG = re.compile(
    r'<(?:script|link)\b[^>]*?\b(?:src|href)="(?P<url>https?://[^"]+)"[^>]*>(?:\s*</script>)?')


def offline_template(text: str) -> str:
    """One template's text with its CDN assets pointed at the vendored copies (or dropped)."""
    def replace(match: re.Match[str]) -> str:
        url = match["url"]
        if url in ASSETS:
            return match[0].replace(url, f"{VENDOR_URL}/{ASSETS[url]}")
        if any(marker in url for marker in DROPPED):
            return ""
        return match[0]  # left as it is: the HTML tests name any page that still has one
    return _ASSET_TAG.sub(replace, text)


def write_offline_templates(folder: Path) -> Path:
    """Write the rewritten templates (and the project's own) under ``folder``; return the
    template folder, one per pygeoapi version (a stale rewrite never overrides a newer page).

    Each file is replaced atomically: several worker processes may start on one folder.
    """
    target = folder / f"templates-pygeoapi-{pygeoapi.__version__}"
    pages = {source.relative_to(OWN_TEMPLATES): source.read_text(encoding="utf-8")
             for source in OWN_TEMPLATES.rglob("*.html")}
    for source in PYGEOAPI_TEMPLATES.rglob("*.html"):
        name = source.relative_to(PYGEOAPI_TEMPLATES)
        text = source.read_text(encoding="utf-8")
        rewritten = offline_template(text)
        if rewritten != text and name not in pages:
            pages[name] = rewritten
    for name, text in pages.items():
        path = target / name
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", encoding="utf-8", dir=path.parent,
                                         delete=False, suffix=".tmp") as out:
            out.write(text)
        os.replace(out.name, path)
    return target
