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
    }
}
