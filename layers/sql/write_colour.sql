-- Shown colour (a live pin wins over the computed one), the change log and the upsert.
-- Follows a "fresh" CTE (small_colour.sql or parent_colour.sql) in the same statement, which
-- small_tail.sql or colour_result.sql ends; the placeholder filters the stored rows to the same
-- grids (an index probe for a few grids, where the planner would otherwise hash the whole table).
, pins AS (
    SELECT DISTINCT ON (code) code, colour, reason, pinned_by, expires_at
    FROM colour_pin
    WHERE released_at IS NULL AND pinned_at <= :now AND expires_at > :now
      AND code IN (SELECT code FROM fresh)
    ORDER BY code, pinned_at DESC
),
shown AS (
    SELECT f.*, coalesce(p.colour, f.computed) AS colour, p.code IS NOT NULL AS pinned,
           p.reason AS pin_reason,
           CASE WHEN p.code IS NULL THEN f.why
                ELSE format('pinned %s by %s until %s: %s (computed %s: %s)', p.colour,
                            p.pinned_by, to_char(p.expires_at AT TIME ZONE 'Asia/Shanghai',
                                                 'YYYY-MM-DD HH24:MI'),
                            p.reason, f.computed, f.why) END AS shown_why
    FROM fresh f LEFT JOIN pins p ON p.code = f.code
),
old AS (
    SELECT o.code, o.colour, o.pinned, o.rules_version FROM grid_colour o WHERE {old}
),
logged AS (
    INSERT INTO colour_change (code, level, old_colour, new_colour, why, score, rules_version,
                               as_of)
    SELECT s.code, s.level, o.colour, s.colour,
           CASE WHEN o.pinned AND NOT s.pinned THEN
                    coalesce((SELECT CASE WHEN cp.released_at IS NOT NULL
                                          THEN format('pin released by %s; ', cp.released_by)
                                          ELSE 'pin expired; ' END
                              FROM colour_pin cp WHERE cp.code = s.code
                              ORDER BY cp.pinned_at DESC LIMIT 1), '')
                WHEN o.rules_version IS DISTINCT FROM CAST(:rules_version AS text) AND o.code IS NOT NULL
                    AND NOT s.pinned THEN
                    format('rules %s -> %s; ', nullif(o.rules_version, ''), CAST(:rules_version AS text))
                ELSE '' END || s.shown_why,
           s.score, CAST(:rules_version AS text), :now
    FROM shown s LEFT JOIN old o ON o.code = s.code
    WHERE o.colour IS DISTINCT FROM s.colour OR o.pinned IS DISTINCT FROM s.pinned
    RETURNING 1
),
written AS (
    INSERT INTO grid_colour AS g (code, level, colour, computed_colour, score, open_events,
                                  overdue_events, events_7d, events_30d, pinned, reason,
                                  red_children, yellow_children, blue_children, rules_version,
                                  updated_at)
    SELECT code, level, colour, computed, score, open_events, overdue_events, events_short,
           events_long, pinned, pin_reason, red_children, yellow_children, blue_children,
           CAST(:rules_version AS text), now()
    FROM shown
    ON CONFLICT (code) DO UPDATE SET
        level = EXCLUDED.level, colour = EXCLUDED.colour,
        computed_colour = EXCLUDED.computed_colour, score = EXCLUDED.score,
        open_events = EXCLUDED.open_events, overdue_events = EXCLUDED.overdue_events,
        events_7d = EXCLUDED.events_7d, events_30d = EXCLUDED.events_30d,
        pinned = EXCLUDED.pinned, reason = EXCLUDED.reason,
        red_children = EXCLUDED.red_children, yellow_children = EXCLUDED.yellow_children,
        blue_children = EXCLUDED.blue_children, rules_version = EXCLUDED.rules_version,
        updated_at = EXCLUDED.updated_at
    WHERE (g.level, g.colour, g.computed_colour, g.score, g.open_events, g.overdue_events,
           g.events_7d, g.events_30d, g.pinned, g.reason, g.red_children, g.yellow_children,
           g.blue_children, g.rules_version)
          IS DISTINCT FROM
          (EXCLUDED.level, EXCLUDED.colour, EXCLUDED.computed_colour, EXCLUDED.score,
           EXCLUDED.open_events, EXCLUDED.overdue_events, EXCLUDED.events_7d,
           EXCLUDED.events_30d, EXCLUDED.pinned, EXCLUDED.reason, EXCLUDED.red_children,
           EXCLUDED.yellow_children, EXCLUDED.blue_children, EXCLUDED.rules_version)
    RETURNING 1
)
