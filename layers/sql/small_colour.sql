-- Score and computed colour of small grids from their events (docs/LAYERS.md, "The score").
-- The placeholders are filters chosen by code: every current small grid (grids) and every
-- routed event (events), or those of the codes array. recent is MATERIALIZED for chosen grids
-- (their events are read once for the score, heat and warnings, small_tail.sql) and NOT
-- MATERIALIZED for every grid (each reader scans the window itself rather than the
-- city's window being spilled to a temporary file).
WITH grids AS (
    SELECT code FROM grid_current WHERE level = 'small' AND {grids}
),
recent AS {recent} (
    -- Events reported since the earlier of the long window's and the warnings' baseline start.
    SELECT e.grid_code, e.category, e.severity, e.reported_at, e.due_at,
           e.status IN ('open', 'in_progress') AS unresolved
    FROM event e
    WHERE {events} AND e.reported_at > :read_start AND e.reported_at <= :now
),
weights AS (
    SELECT * FROM unnest(CAST(:cats AS text[]), CAST(:cat_weights AS float8[]))
        AS w(category, weight)
),
active AS (
    -- Events reported in the long window, and unresolved events however old.
    SELECT r.grid_code, r.category, r.severity, r.reported_at, r.due_at, r.unresolved
    FROM recent r
    WHERE r.reported_at > :long_start
    UNION ALL
    SELECT e.grid_code, e.category, e.severity, e.reported_at, e.due_at, true
    FROM event e
    WHERE {events} AND e.status IN ('open', 'in_progress') AND e.reported_at <= :long_start
),
weighted AS (
    SELECT a.grid_code AS code,
           coalesce(w.weight, CAST(:default_weight AS float8)) * (CAST(:sev AS float8[]))[a.severity]
               * CASE WHEN NOT a.unresolved THEN 1.0
                      WHEN a.due_at < :now THEN CAST(:unresolved AS float8) * CAST(:overdue AS float8)
                      ELSE CAST(:unresolved AS float8) END AS weight,
           a.reported_at > :short_start AS in_short,
           a.reported_at > :long_start AS in_long,
           a.unresolved,
           a.unresolved AND a.due_at < :now AS overdue
    FROM active a LEFT JOIN weights w ON w.category = a.category
),
sums AS (
    SELECT code,
           sum(weight) FILTER (WHERE in_short OR unresolved) AS short_sum,
           sum(weight) AS long_sum,
           count(*) FILTER (WHERE unresolved) AS open_events,
           count(*) FILTER (WHERE overdue) AS overdue_events,
           count(*) FILTER (WHERE in_short) AS events_short,
           count(*) FILTER (WHERE in_long) AS events_long
    FROM weighted GROUP BY code
),
scored AS (
    SELECT g.code, coalesce(s.short_sum, 0) AS short_sum, coalesce(s.long_sum, 0) AS long_sum,
           -- Rounded so that summation order never makes a difference in the last bit.
           round(greatest(CAST(:short_scale AS float8) * coalesce(s.short_sum, 0),
                          CAST(:long_scale AS float8) * coalesce(s.long_sum, 0))::numeric,
                 6)::float8 AS score,
           coalesce(s.open_events, 0) AS open_events,
           coalesce(s.overdue_events, 0) AS overdue_events,
           coalesce(s.events_short, 0) AS events_short,
           coalesce(s.events_long, 0) AS events_long
    FROM grids g LEFT JOIN sums s ON s.code = g.code
),
fresh AS (
    SELECT code, 'small' AS level, score, open_events, overdue_events, events_short, events_long,
           0 AS red_children, 0 AS yellow_children, 0 AS blue_children,
           CASE WHEN score >= CAST(:red AS float8) THEN 'red' WHEN score >= CAST(:yellow AS float8) THEN 'yellow'
                ELSE 'blue' END AS computed,
           format('score %s (%s-day sum %s, %s-day sum %s) %s', round(score::numeric, 2),
                  CAST(:short_days AS int), round(short_sum::numeric, 2), CAST(:long_days AS int),
                  round(long_sum::numeric, 2),
                  CASE WHEN score >= CAST(:red AS float8) THEN format('>= red %s', CAST(:red AS float8))
                       WHEN score >= CAST(:yellow AS float8) THEN format('>= yellow %s', CAST(:yellow AS float8))
                       ELSE format('< yellow %s', CAST(:yellow AS float8)) END) AS why
    FROM scored
)
