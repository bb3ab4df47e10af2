-- Expand only: a column with a default, which older binaries neither read nor need to write.
-- rooms.generation: raised by every DELETE of the room. A job or alias query that read the room
-- under an earlier generation may not store a Matrix room id or mark the room ready; it tears
-- down what it created instead (DELETE wins).
ALTER TABLE rooms ADD COLUMN generation BIGINT NOT NULL DEFAULT 0;
