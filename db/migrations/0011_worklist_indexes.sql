-- The review console's worklist (issue 16, core/web_pages.c): keyset
-- paging, newest first or most severe first, with the sort key and id in
-- the `after=` cursor, never OFFSET. Each view has an index that hands the
-- rows over in its order, so a page reads about 50 index entries however
-- many alerts there are:
-- - the default view (open and acknowledged): partial indexes of the
--   alerts not closed, so a year of closed alerts is never skipped over;
-- - one status (open, acknowledged or closed): (status, ...);
-- - every status: the order alone.
-- The severity rank is an expression (low 1 .. critical 4, as
-- pv_severity_rank in core/alerts.c); web_pages.c writes exactly the same
-- expression (RANK_SQL), or SQLite would not match it to these indexes.
CREATE INDEX alerts_live_newest ON alerts (created_at, id)
    WHERE status != 'closed';
CREATE INDEX alerts_live_severe ON alerts (
    (CASE severity WHEN 'critical' THEN 4 WHEN 'high' THEN 3
     WHEN 'medium' THEN 2 WHEN 'low' THEN 1 ELSE 0 END), created_at, id)
    WHERE status != 'closed';
CREATE INDEX alerts_status_newest ON alerts (status, created_at, id);
CREATE INDEX alerts_status_severe ON alerts (status,
    (CASE severity WHEN 'critical' THEN 4 WHEN 'high' THEN 3
     WHEN 'medium' THEN 2 WHEN 'low' THEN 1 ELSE 0 END), created_at, id);
CREATE INDEX alerts_newest ON alerts (created_at, id);
CREATE INDEX alerts_severe ON alerts (
    (CASE severity WHEN 'critical' THEN 4 WHEN 'high' THEN 3
     WHEN 'medium' THEN 2 WHEN 'low' THEN 1 ELSE 0 END), created_at, id);
-- "Assigned to me", newest first, without sorting everything assigned to
-- that person (0009's alerts_by_assignee is in id order).
CREATE INDEX alerts_assignee_newest ON alerts (assignee, created_at, id)
    WHERE assignee IS NOT NULL;
-- Grouped by rule: a GROUP BY rule that reads an index in rule order and
-- finds every column it counts in the index itself (status, the severity
-- for the rank, created_at for the newest), never the table. By patient,
-- alerts_live_key and alerts_by_key hand the groups over in order and a
-- page stops after 50 patients.
CREATE INDEX alerts_live_by_rule ON alerts (rule, status, severity, created_at)
    WHERE status != 'closed';
CREATE INDEX alerts_by_rule_counts ON alerts (rule, status, severity, created_at);
