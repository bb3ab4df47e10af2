-- Bot direct messages: one direct-message room per tenant bot and user, made once and reused.
-- Column meanings are documented in ../../postgres/2026-12-08-000018_direct_rooms/up.sql.
CREATE TABLE direct_rooms (
    id INTEGER PRIMARY KEY AUTOINCREMENT, -- the creation lock's key
    tenant_id TEXT NOT NULL,
    user_id TEXT NOT NULL,             -- the Matrix user messaged
    room_id TEXT,                      -- NULL until the first message's job made the room
    created_at BIGINT NOT NULL,        -- unix ms
    updated_at BIGINT NOT NULL,        -- unix ms
    CONSTRAINT direct_rooms_user UNIQUE (tenant_id, user_id)
);
CREATE INDEX direct_rooms_room_id ON direct_rooms (room_id);
