-- Ends a parent's statement (parent_colour.sql, write_colour.sql): the counts of what it wrote.
-- A written row marks the transaction, so that the version bump needs no answer from here.
SELECT changes, written,
       CASE WHEN written > 0 THEN set_config('minqing.layer_changed', 'yes', true) END AS marked
FROM (SELECT (SELECT count(*) FROM logged) AS changes,
             (SELECT count(*) FROM written) AS written) AS n
