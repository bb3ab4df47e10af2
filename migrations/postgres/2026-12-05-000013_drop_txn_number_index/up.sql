-- No query reads as_transactions by txn_number alone: the last numbered transaction of a
-- homeserver comes from as_transactions_numbered (000011). The index only cost a page written at
-- every acknowledgement (a WAL frame on SQLite, an index insert on PostgreSQL). Queries of earlier
-- releases run the same without it.
DROP INDEX as_transactions_txn_number;
