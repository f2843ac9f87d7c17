-- Colour of medium or large grids rolled up from their children's shown colours.
-- The placeholders filter the parents (grids) and their children; rollup is the roll-up rule's colour over red, yellow, blue, n.
WITH children AS (
    SELECT g.parent_code AS code,
           count(*) FILTER (WHERE c.colour = 'red') AS red,
           count(*) FILTER (WHERE c.colour = 'yellow') AS yellow,
           count(*) FILTER (WHERE c.colour = 'blue') AS blue,
           count(*) AS n,
           round(avg(c.score)::numeric, 6)::float8 AS score, sum(c.open_events) AS open_events,
           sum(c.overdue_events) AS overdue_events, sum(c.events_7d) AS events_short,
           sum(c.events_30d) AS events_long
    FROM grid_current g JOIN grid_colour c ON c.code = g.code
    WHERE g.level = CAST(:child_level AS text) AND {children}
    GROUP BY g.parent_code
),
fresh AS (
    SELECT p.code, p.level, coalesce(c.score, 0) AS score,
           coalesce(c.open_events, 0) AS open_events,
           coalesce(c.overdue_events, 0) AS overdue_events,
           coalesce(c.events_short, 0) AS events_short,
           coalesce(c.events_long, 0) AS events_long,
           coalesce(c.red, 0) AS red_children, coalesce(c.yellow, 0) AS yellow_children,
           coalesce(c.blue, 0) AS blue_children,
           CASE WHEN c.n IS NULL THEN 'blue' ELSE {rollup} END AS computed,
           format('roll-up (%s): %s red, %s yellow, %s blue of %s children', CAST(:rollup_label AS text),
                  coalesce(c.red, 0), coalesce(c.yellow, 0), coalesce(c.blue, 0),
                  coalesce(c.n, 0)) AS why
    FROM grid_current p LEFT JOIN children c ON c.code = p.code
    WHERE p.level = CAST(:level AS text) AND {grids}
)
