-- See ../../postgres/2026-12-07-000014_room_access.
CREATE TABLE room_access (
    room_key BIGINT PRIMARY KEY REFERENCES rooms (id), -- the declared room (rooms.id)
    open_to_room_key BIGINT REFERENCES rooms (id), -- the group room whose members may join; NULL: invited members only
    directory_note TEXT -- why the homeserver did not list the room server-wide; NULL: nothing refused
);
CREATE INDEX room_access_open_to ON room_access (open_to_room_key) WHERE open_to_room_key IS NOT NULL;
