-- Synapse's transactions are matched to managed rooms by Matrix room id (repairs, member.joined and
-- member.left): an index, so that costs a lookup per batch and not a scan of every room.
CREATE INDEX rooms_room_id ON rooms (room_id);
