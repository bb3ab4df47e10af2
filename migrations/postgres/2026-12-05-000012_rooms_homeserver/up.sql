-- The homeserver a room lives on (DESIGN §13), written when the room is declared: a daemon that
-- starts, or a reload, with its tenant on another homeserver is refused while the room is
-- declared, since the room stays where it is. Rooms declared before this release were all made on
-- the top-level homeserver, `default`.
ALTER TABLE rooms ADD COLUMN homeserver TEXT NOT NULL DEFAULT 'default';
COMMENT ON COLUMN rooms.homeserver IS 'The homeserver (config id) the room lives on: its tenant''s when it was declared.';
