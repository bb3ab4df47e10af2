ALTER TABLE rooms DROP COLUMN homeserver;
