-- See ../../postgres/2026-12-07-000016_leader. (On SQLite the one process holds every role and
-- writes no row; the table exists so both backends keep one schema.)
CREATE TABLE leader (
    name TEXT PRIMARY KEY NOT NULL,
    holder TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);
