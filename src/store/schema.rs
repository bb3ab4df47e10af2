//! Diesel's view of the tables; the SQL and its comments live in `migrations/`.

diesel::table! {
    as_transactions (id) {
        id -> BigInt,
        txn_id -> Text,
        fingerprint -> Text,
        txn_number -> Nullable<BigInt>,
        event_count -> Integer,
        received_at -> BigInt,
        homeserver -> Text,
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
        homeserver -> Text,
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
        homeserver -> Text,
    }
}

diesel::table! {
    rooms (id) {
        id -> BigInt,
        tenant_id -> Text,
        kind -> Text,
        slug -> Text,
        name -> Text,
        topic -> Nullable<Text>,
        visibility -> Text,
        room_id -> Nullable<Text>,
        room_version -> Nullable<Text>,
        status -> Text,
        last_error -> Nullable<Text>,
        created_at -> BigInt,
        updated_at -> BigInt,
        previous_room_id -> Nullable<Text>,
        generation -> BigInt,
        homeserver -> Text,
    }
}

diesel::table! {
    room_access (room_key) {
        room_key -> BigInt,
        open_to_room_key -> Nullable<BigInt>,
        directory_note -> Nullable<Text>,
        encrypted -> Bool,
    }
}

diesel::table! {
    room_slugs (tenant_id, kind, slug) {
        tenant_id -> Text,
        kind -> Text,
        slug -> Text,
        room_key -> BigInt,
    }
}

diesel::table! {
    room_members (room_key, user_id) {
        room_key -> BigInt,
        user_id -> Text,
        role -> Nullable<Text>,
        applied_level -> Nullable<Integer>,
        reason -> Nullable<Text>,
        updated_at -> BigInt,
    }
}

diesel::table! {
    jobs (id) {
        id -> BigInt,
        tenant_id -> Text,
        room_key -> Nullable<BigInt>,
        kind -> Text,
        payload -> Text,
        status -> Text,
        attempts -> Integer,
        run_after -> BigInt,
        lease_owner -> Nullable<Text>,
        lease_expires_at -> Nullable<BigInt>,
        last_error -> Nullable<Text>,
        result -> Nullable<Text>,
        txn_prefix -> Text,
        created_at -> BigInt,
        updated_at -> BigInt,
        key -> Nullable<Text>,
    }
}

diesel::table! {
    moderation (id) {
        id -> BigInt,
        tenant_id -> Text,
        room_key -> BigInt,
        user_id -> Text,
        kind -> Text,
        reason -> Nullable<Text>,
        expires_at -> Nullable<BigInt>,
        actor -> Nullable<Text>,
        lifted_at -> Nullable<BigInt>,
        created_at -> BigInt,
        updated_at -> BigInt,
    }
}

diesel::table! {
    moderation_log (id) {
        id -> BigInt,
        tenant_id -> Text,
        at -> BigInt,
        action -> Text,
        user_id -> Text,
        room_kind -> Nullable<Text>,
        room_slug -> Nullable<Text>,
        reason -> Nullable<Text>,
        actor -> Nullable<Text>,
        expires_at -> Nullable<BigInt>,
        job_id -> Nullable<BigInt>,
    }
}

diesel::joinable!(room_slugs -> rooms (room_key));
diesel::joinable!(room_members -> rooms (room_key));
diesel::joinable!(jobs -> rooms (room_key));
diesel::joinable!(room_access -> rooms (room_key));
diesel::allow_tables_to_appear_in_same_query!(
    rooms,
    room_slugs,
    room_members,
    room_access,
    jobs,
    moderation
);

diesel::table! {
    appservice_state (key) {
        key -> Text,
        value -> Text,
        updated_at -> BigInt,
    }
}

diesel::table! {
    outbox_heads (tenant) {
        tenant -> Text,
        last_seq -> BigInt,
    }
}

diesel::table! {
    outbox_events (id) {
        id -> BigInt,
        tenant -> Text,
        seq -> BigInt,
        #[sql_name = "type"]
        event_type -> Text,
        at_ms -> BigInt,
        room_kind -> Nullable<Text>,
        room_slug -> Nullable<Text>,
        data -> Text,
    }
}

diesel::table! {
    webhook_deliveries (tenant) {
        tenant -> Text,
        delivered_seq -> BigInt,
        attempts -> Integer,
        next_attempt_ms -> BigInt,
        failing_since_ms -> Nullable<BigInt>,
        last_error -> Nullable<Text>,
        last_error_ms -> Nullable<BigInt>,
        last_delivered_ms -> Nullable<BigInt>,
        failed_total -> BigInt,
        last_failed_seq -> Nullable<BigInt>,
        lease_owner -> Nullable<Text>,
        lease_until_ms -> Nullable<BigInt>,
        created_ms -> BigInt,
    }
}

diesel::table! {
    leader (name) {
        name -> Text,
        holder -> Text,
        expires_at -> BigInt,
    }
}

diesel::table! {
    reports (id) {
        id -> BigInt,
        tenant_id -> Text,
        room_kind -> Text,
        room_slug -> Text,
        room_id -> Text,
        event_id -> Nullable<Text>,
        reporter -> Text,
        reason -> Nullable<Text>,
        score -> Nullable<BigInt>,
        event_sender -> Nullable<Text>,
        event_type -> Nullable<Text>,
        event_content -> Nullable<Text>,
        at -> BigInt,
        forwarded_at -> Nullable<BigInt>,
        forward_error -> Nullable<Text>,
    }
}

diesel::table! {
    tenant_staff (tenant_id, user_id) {
        tenant_id -> Text,
        user_id -> Text,
        role -> Text,
        actor -> Nullable<Text>,
        removed_at -> Nullable<BigInt>,
        created_at -> BigInt,
        updated_at -> BigInt,
    }
}

diesel::table! {
    direct_rooms (id) {
        id -> BigInt,
        tenant_id -> Text,
        user_id -> Text,
        room_id -> Nullable<Text>,
        created_at -> BigInt,
        updated_at -> BigInt,
    }
}
