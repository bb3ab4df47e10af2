DROP TABLE appservice_state;
ALTER TABLE rooms DROP COLUMN previous_room_id;
