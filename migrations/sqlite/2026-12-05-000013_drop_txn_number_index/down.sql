CREATE INDEX as_transactions_txn_number ON as_transactions (txn_number);
