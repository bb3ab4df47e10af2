ALTER TABLE rooms DROP COLUMN generation;
