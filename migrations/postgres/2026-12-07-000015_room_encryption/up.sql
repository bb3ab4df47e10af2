-- A room adopted with end-to-end encryption on (DESIGN §14: some of OpenMeet's old rooms are) stays
-- as it is; the daemon, which does not speak Megolm, sends no message there. What ensure_room last
-- read of the room's m.room.encryption is kept for GET of the room. Added with a default, so the
-- previous release's inserts (which name no such column) keep working.
ALTER TABLE room_access ADD COLUMN encrypted BOOLEAN NOT NULL DEFAULT FALSE;
COMMENT ON COLUMN room_access.encrypted IS 'Whether the Matrix room had end-to-end encryption on (m.room.encryption) when ensure_room last read it.';
