//! Diesel's view of the tables; the SQL and its comments live in `migrations/`.

diesel::table! {
    as_transactions (id) {
        id -> BigInt,
        txn_id -> Text,
        fingerprint -> Text,
        txn_number -> Nullable<BigInt>,
        event_count -> Integer,
        received_at -> BigInt,
    }
}

diesel::table! {
    inbox_events (id) {
        id -> BigInt,
        event_id -> Text,
        room_id -> Text,
        event_type -> Text,
        sender -> Text,
        state_key -> Nullable<Text>,
        txn_id -> Text,
        event_json -> Text,
        received_at -> BigInt,
        processed_at -> Nullable<BigInt>,
        outcome -> Nullable<Text>,
    }
}

diesel::table! {
    quarantine (id) {
        id -> BigInt,
        txn_id -> Text,
        event_id -> Nullable<Text>,
        reason -> Text,
        body -> Text,
        received_at -> BigInt,
    }
}
