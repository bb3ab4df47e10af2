DROP TABLE quarantine;
DROP TABLE inbox_events;
DROP TABLE as_transactions;
