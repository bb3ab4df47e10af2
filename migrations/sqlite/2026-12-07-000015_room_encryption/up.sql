-- See ../../postgres/2026-12-07-000015_room_encryption.
-- Whether the Matrix room had end-to-end encryption on (m.room.encryption) when ensure_room last
-- read it.
ALTER TABLE room_access ADD COLUMN encrypted BOOLEAN NOT NULL DEFAULT 0;
