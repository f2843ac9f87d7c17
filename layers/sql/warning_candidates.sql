-- Grid and category pairs whose last 24 hours hold at least min_events and more than the
-- baseline daily mean; the Poisson tail is computed for these few in Python.
WITH grids AS (
    SELECT code FROM grid_current WHERE level = 'small' AND {grids}
)
SELECT code, category, observed, baseline_events FROM (
    SELECT e.grid_code AS code, e.category,
           count(*) FILTER (WHERE e.reported_at > :day_start) AS observed,
           count(*) FILTER (WHERE e.reported_at <= :day_start) AS baseline_events
    FROM event e
    WHERE {events} AND e.reported_at > :baseline_start AND e.reported_at <= :now
    GROUP BY e.grid_code, e.category
    HAVING e.grid_code IN (SELECT code FROM grids)
) AS c
WHERE observed >= CAST(:min_events AS int)
  AND observed > greatest(baseline_events::float8 / CAST(:baseline_days AS int), CAST(:floor_per_day AS float8))
ORDER BY code, category
