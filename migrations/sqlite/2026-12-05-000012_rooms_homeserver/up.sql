-- See ../../postgres/2026-12-05-000012_rooms_homeserver.
ALTER TABLE rooms ADD COLUMN homeserver TEXT NOT NULL DEFAULT 'default'; -- config id of the homeserver it lives on
