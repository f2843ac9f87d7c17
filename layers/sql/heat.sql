-- Event counts per small grid and category in the two windows; only rows that differ are written.
WITH grids AS (
    SELECT code FROM grid_current WHERE level = 'small' AND {grids}
),
fresh AS (
    SELECT e.grid_code AS code, e.category,
           count(*) FILTER (WHERE e.reported_at > :short_start) AS events_7d,
           count(*) AS events_30d
    FROM event e
    WHERE {events} AND e.reported_at > :long_start AND e.reported_at <= :now
    GROUP BY e.grid_code, e.category
    HAVING e.grid_code IN (SELECT code FROM grids)
),
stale AS (
    SELECT h.code, h.category FROM grid_heat h JOIN grids g ON g.code = h.code
    WHERE NOT EXISTS (SELECT 1 FROM fresh f WHERE f.code = h.code AND f.category = h.category)
),
gone AS (
    DELETE FROM grid_heat h USING stale s WHERE h.code = s.code AND h.category = s.category
    RETURNING 1
),
put AS (
    INSERT INTO grid_heat AS h (code, category, events_7d, events_30d)
    SELECT code, category, events_7d, events_30d FROM fresh
    ON CONFLICT (code, category) DO UPDATE SET events_7d = EXCLUDED.events_7d,
                                               events_30d = EXCLUDED.events_30d
    WHERE (h.events_7d, h.events_30d) IS DISTINCT FROM (EXCLUDED.events_7d, EXCLUDED.events_30d)
    RETURNING 1
)
SELECT changed,
       CASE WHEN changed > 0 THEN set_config('minqing.layer_changed', 'yes', true) END AS marked
FROM (SELECT (SELECT count(*) FROM gone) + (SELECT count(*) FROM put) AS changed) AS n
