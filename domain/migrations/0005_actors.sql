-- teachery-sync: who acted. The name of the admin token behind an admin action, on the action and
-- on the activity entries it wrote (NULL for what Stripe events and reconciliations did, and for
-- what was done before this migration).

ALTER TABLE admin_actions ADD COLUMN actor text;
ALTER TABLE activity ADD COLUMN actor text;
