DROP TABLE room_access;
