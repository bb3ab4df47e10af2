ALTER TABLE room_access DROP COLUMN encrypted;
