//! The diesel schema, shared by both dialects (see migrations/).

diesel::table! {
    students (student_id) {
        student_id -> Text,
        school_id -> Nullable<Text>,
        record -> Text,
        created_at -> Text,
        updated_at -> Text,
    }
}

diesel::table! {
    policy_versions (policy_id, version) {
        policy_id -> Text,
        version -> Integer,
        hash -> Text,
        source -> Text,
        title -> Text,
        sponsor -> Text,
        effective_from -> Text,
        effective_to -> Nullable<Text>,
        meta -> Text,
        origin -> Text,
        published_at -> Text,
        tests -> Nullable<Text>,
        published_by -> Nullable<Text>,
    }
}

diesel::table! {
    programs (policy_id) {
        policy_id -> Text,
        head_seq -> BigInt,
        head_hash -> Text,
        budget_total_cents -> Nullable<BigInt>,
        budget_max_awards -> Nullable<BigInt>,
        committed_cents -> BigInt,
        committed_awards -> BigInt,
        updated_at -> Text,
    }
}

diesel::table! {
    ledger (seq) {
        seq -> BigInt,
        policy_id -> Text,
        chain_seq -> BigInt,
        kind -> Text,
        recorded_at -> Text,
        key_id -> Text,
        request_id -> Text,
        idempotency_key -> Nullable<Text>,
        student_id -> Text,
        policy_version -> Integer,
        policy_hash -> Text,
        eligo_version -> Text,
        rhai_version -> Text,
        as_of -> Text,
        record -> Text,
        outcome -> Text,
        reason_code -> Nullable<Text>,
        evaluation -> Text,
        award -> Text,
        amount_cents -> BigInt,
        payee -> Nullable<Text>,
        award_id -> Nullable<Text>,
        note -> Nullable<Text>,
        prev_hash -> Text,
        entry_hash -> Text,
    }
}

diesel::table! {
    awards (award_id) {
        award_id -> Text,
        policy_id -> Text,
        student_id -> Text,
        once_per_student -> Bool,
        amount_cents -> BigInt,
        granted_seq -> BigInt,
        revoked_seq -> Nullable<BigInt>,
        active -> Bool,
    }
}

diesel::table! {
    idempotency (key_id, idempotency_key) {
        key_id -> Text,
        idempotency_key -> Text,
        request_hash -> Text,
        ledger_seq -> BigInt,
        created_at -> Text,
    }
}

diesel::table! {
    api_keys (key_id) {
        key_id -> Text,
        name -> Text,
        role -> Text,
        sponsor -> Nullable<Text>,
        secret_hash -> Text,
        created_at -> Text,
        revoked_at -> Nullable<Text>,
    }
}

diesel::table! {
    sessions (token_hash) {
        token_hash -> Text,
        key_id -> Text,
        csrf_token -> Text,
        created_at -> Text,
        last_seen_at -> Text,
    }
}

diesel::table! {
    batches (batch_id) {
        batch_id -> Text,
        mode -> Text,
        state -> Text,
        policy_ids -> Text,
        as_of -> Text,
        selection -> Text,
        student_ids -> Text,
        total -> BigInt,
        done -> BigInt,
        counts -> Text,
        key_id -> Text,
        error -> Nullable<Text>,
        runner -> Nullable<Text>,
        heartbeat_at -> Nullable<Text>,
        created_at -> Text,
        updated_at -> Text,
    }
}

diesel::table! {
    batch_results (batch_id, position) {
        batch_id -> Text,
        position -> BigInt,
        lines -> Text,
    }
}

diesel::joinable!(batch_results -> batches (batch_id));
diesel::allow_tables_to_appear_in_same_query!(batches, batch_results);

diesel::table! {
    generations (name) {
        name -> Text,
        value -> BigInt,
    }
}
