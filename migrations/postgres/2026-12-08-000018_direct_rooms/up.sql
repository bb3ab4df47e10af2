-- Bot direct messages (DESIGN §7.3 "Across the tenant"): one direct-message room per tenant bot
-- and user, made once and reused. The row is written with the first message's job, before the
-- room exists; the job makes the room under the row's creation lock and stores its id. A new
-- table: the previous release reads nothing here.
CREATE TABLE direct_rooms (
    id BIGSERIAL PRIMARY KEY,
    tenant_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    room_id TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    CONSTRAINT direct_rooms_user UNIQUE (tenant_id, user_id)
);
COMMENT ON TABLE direct_rooms IS 'The direct-message room of each tenant bot and user the platform messaged (POST users/{user_id}/messages); not a managed room.';
COMMENT ON COLUMN direct_rooms.id IS 'The key of the row''s creation lock (one createRoom across retries and replicas).';
COMMENT ON COLUMN direct_rooms.tenant_id IS 'The tenant whose bot messages the user, case kept.';
COMMENT ON COLUMN direct_rooms.user_id IS 'The Matrix user messaged.';
COMMENT ON COLUMN direct_rooms.room_id IS 'The Matrix room; NULL until the first message''s job made it (or after the bot lost it, until the next one makes another).';
COMMENT ON COLUMN direct_rooms.created_at IS 'Unix ms.';
COMMENT ON COLUMN direct_rooms.updated_at IS 'Unix ms.';
CREATE INDEX direct_rooms_room_id ON direct_rooms (room_id);
