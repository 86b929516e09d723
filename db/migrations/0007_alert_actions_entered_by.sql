-- The signed audit trail (issue 21 part 2): who typed an action at the
-- terminal (the login name of 'pvwatch alerts ack/close'), beside actor,
-- the person it is recorded for (--by, only another name when the
-- configuration says audit = { allow_by = true }). NULL for actions the
-- engine took ('opened', 'escalated') and for rows stored before this
-- column existed. 'alerts show' prints "entered by X on behalf of Y" when
-- the two differ.
ALTER TABLE alert_actions ADD COLUMN entered_by TEXT;
