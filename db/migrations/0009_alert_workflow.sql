-- The alert workflow of the review console (issue 16).
-- alerts.assignee: who the alert is assigned to now ('pvwatch alerts assign',
-- the console's assign form); NULL: nobody. Each assignment is also an
-- 'assigned' row in alert_actions (note = the assignee), so the history stays.
ALTER TABLE alerts ADD COLUMN assignee TEXT;
-- alert_actions.outcome: what a 'closed' row ended in, one of the fixed list
-- in core/alerts.c (pv_alert_outcomes: 'intervention:dose_interrupted', ...,
-- 'false_positive_data_error'); NULL for other actions, for a close without
-- an outcome, and for rows stored before this column existed.
ALTER TABLE alert_actions ADD COLUMN outcome TEXT;
-- alert_actions.request_id: the one-time id a console form carries, so that
-- a double submit records once. NULL for the CLI and the engine.
ALTER TABLE alert_actions ADD COLUMN request_id TEXT;
CREATE UNIQUE INDEX alert_actions_by_request ON alert_actions (request_id)
    WHERE request_id IS NOT NULL;
-- Copies on the alert of what its audit trail says, for 'pvwatch rules
-- stats' and the console's /rules page, which read them for every alert of
-- every rule: one scan of alerts_by_rule instead of two searches of
-- alert_actions per alert (10x faster at 100k alerts). Written in the same
-- transaction as the audit row (alerts.c, pv_alerts_do); alert_actions stays
-- the record.
-- alerts.acknowledged_at: the time of its first 'acknowledged' row.
-- alerts.outcome: the outcome of its 'closed' row.
ALTER TABLE alerts ADD COLUMN acknowledged_at TEXT;
ALTER TABLE alerts ADD COLUMN outcome TEXT;
UPDATE alerts SET acknowledged_at = (SELECT min(k.at) FROM alert_actions k
    WHERE k.alert_id = alerts.id AND k.action = 'acknowledged');
CREATE INDEX alerts_by_rule ON alerts
    (rule, created_at, status, outcome, acknowledged_at);
-- The worklist's "assigned to" filter ('alerts list --assignee').
CREATE INDEX alerts_by_assignee ON alerts (assignee, status, id)
    WHERE assignee IS NOT NULL;
