"""Events (民情事件): typed input, routing to small grids, idempotent ingest, queries, status."""
