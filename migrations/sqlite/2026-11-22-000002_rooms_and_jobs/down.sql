DROP TABLE jobs;
DROP TABLE room_members;
DROP TABLE room_slugs;
DROP TABLE rooms;
