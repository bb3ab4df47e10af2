-- Who may find and join a declared room beyond its settings (DESIGN §7.5), one row per room that
-- has any of it. A private event room may be open to the members of a group room of its tenant
-- (`open_to`): the declaration names the group by slug, stored as that room's key, so a rename of
-- the group keeps it and a deleted group leaves the room invite-only. The homeserver may refuse to
-- list a public room in its server-wide directory (its room_list_publication_rules): that is no
-- failure, and the room keeps the sentence saying so for GET.
CREATE TABLE room_access (
    room_key BIGINT PRIMARY KEY REFERENCES rooms (id),
    open_to_room_key BIGINT REFERENCES rooms (id),
    directory_note TEXT
);
-- Finding the rooms open to a group when the group room is made, replaced or deleted.
CREATE INDEX room_access_open_to ON room_access (open_to_room_key) WHERE open_to_room_key IS NOT NULL;
COMMENT ON TABLE room_access IS 'Per declared room: the group room it is open to and the server-wide directory''s refusal, when either is set.';
COMMENT ON COLUMN room_access.room_key IS 'The declared room (rooms.id).';
COMMENT ON COLUMN room_access.open_to_room_key IS 'For a private event room open to a group: the group room (rooms.id) whose members may join (join rule restricted); NULL: invited members only.';
COMMENT ON COLUMN room_access.directory_note IS 'Why the room is not in the server-wide directory although its tenant lists rooms there (the homeserver refused); NULL when nothing was refused.';
