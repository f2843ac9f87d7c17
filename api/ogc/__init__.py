"""OGC API Features at ``/ogc``: pygeoapi's API object built from the app's settings."""
