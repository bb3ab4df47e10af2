DROP INDEX jobs_dead_by_tenant;
DROP TABLE appservice_state;
ALTER TABLE rooms DROP COLUMN previous_room_id;
