DROP INDEX rooms_room_id;
