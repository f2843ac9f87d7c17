-- Ends the small grids' statement (small_colour.sql, write_colour.sql) with their heat and
-- warning candidates, read from the same recent events.
-- Heat: event counts per small grid and category in the two windows; only rows that differ are
-- written.
, heat_fresh AS (
    SELECT r.grid_code AS code, r.category,
           count(*) FILTER (WHERE r.reported_at > :short_start) AS events_7d,
           count(*) AS events_30d
    FROM recent r
    WHERE r.reported_at > :long_start
    GROUP BY r.grid_code, r.category
    HAVING r.grid_code IN (SELECT code FROM grids)
),
heat_stale AS (
    SELECT h.code, h.category FROM grid_heat h JOIN grids g ON g.code = h.code
    WHERE NOT EXISTS (SELECT 1 FROM heat_fresh f WHERE f.code = h.code AND f.category = h.category)
),
heat_gone AS (
    DELETE FROM grid_heat h USING heat_stale s WHERE h.code = s.code AND h.category = s.category
    RETURNING 1
),
heat_put AS (
    INSERT INTO grid_heat AS h (code, category, events_7d, events_30d)
    SELECT code, category, events_7d, events_30d FROM heat_fresh
    ON CONFLICT (code, category) DO UPDATE SET events_7d = EXCLUDED.events_7d,
                                               events_30d = EXCLUDED.events_30d
    WHERE (h.events_7d, h.events_30d) IS DISTINCT FROM (EXCLUDED.events_7d, EXCLUDED.events_30d)
    RETURNING 1
),
-- Warning candidates: grid and category pairs whose last 24 hours hold at least min_events and
-- more than the baseline daily mean; the Poisson tail is computed for these few in Python.
counted AS (
    SELECT r.grid_code AS code, r.category,
           count(*) FILTER (WHERE r.reported_at > :day_start) AS observed,
           count(*) FILTER (WHERE r.reported_at <= :day_start) AS baseline_events
    FROM recent r
    WHERE r.reported_at > :baseline_start
    GROUP BY r.grid_code, r.category
    HAVING r.grid_code IN (SELECT code FROM grids)
),
candidates AS (
    SELECT code, category, observed, baseline_events FROM counted
    WHERE observed >= CAST(:min_events AS int)
      AND observed > greatest(baseline_events::float8 / CAST(:baseline_days AS int),
                              CAST(:floor_per_day AS float8))
)
-- A written row marks the transaction, so that the version bump needs no answer from here.
SELECT changes, written, heat_changed,
       CASE WHEN written + heat_changed > 0
            THEN set_config('minqing.layer_changed', 'yes', true) END AS marked,
       candidates
FROM (SELECT (SELECT count(*) FROM logged) AS changes,
             (SELECT count(*) FROM written) AS written,
             (SELECT count(*) FROM heat_gone) + (SELECT count(*) FROM heat_put) AS heat_changed,
             (SELECT coalesce(json_agg(json_build_array(code, category, observed,
                                                        baseline_events)
                                       ORDER BY code, category), '[]')
              FROM candidates) AS candidates) AS n
