-- The singletons' leases (DESIGN §15): the retention pruner, the queue gauges, and each
-- homeserver's watchdog and loop-back probe run on one replica at a time, the one whose worker id
-- holds the role's row; it renews the row every 5 s, another replica takes it once it is 15 s
-- old, and a replica stopping on SIGTERM deletes its rows so another takes them at once. A new
-- table: the previous release reads nothing here (it runs every singleton itself).
CREATE TABLE leader (
    name TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);
COMMENT ON TABLE leader IS 'Which replica runs each singleton role (DESIGN §15): a lease renewed every 5 s, taken over after 15 s, given up on SIGTERM.';
COMMENT ON COLUMN leader.name IS 'The role: pruner, queue_gauges, watchdog:{homeserver} or probe:{homeserver}.';
COMMENT ON COLUMN leader.holder IS 'The jobs.worker_id of the replica holding the role.';
COMMENT ON COLUMN leader.expires_at IS 'Unix ms after which another replica may take the role.';
