//! The OpenAPI document, generated from the route table and the handlers' annotations. `eligo openapi` prints it;
//! `openapi/openapi.json` is a checked-in copy a test keeps in step.

use utoipa::OpenApi;

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::Modify;

use crate::service::access::Role;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "eligo",
        description = "Eligibility rules engine for scholarships and tuition waivers. Errors are RFC 9457 problem documents (application/problem+json).",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    security(("bearer" = [])),
    components(schemas(super::ledger::LedgerOutcome)),
    tags(
        (name = "students", description = "Student records"),
        (name = "evaluations", description = "Previews: what a student qualifies for and what is missing"),
        (name = "policies", description = "Published policy versions and program budgets"),
        (name = "awards", description = "Awards and revocations, recorded in the ledger"),
        (name = "ledger", description = "The append-only, hash-chained ledger of award decisions"),
        (name = "batches", description = "Whole cohorts: preview or award many students in the background"),
        (name = "reports", description = "Awards, progression and budgets, with small groups suppressed"),
        (name = "keys", description = "Access keys (admins only)"),
        (name = "operations", description = "Health, readiness and metrics"),
    )
)]
pub struct ApiDoc;

/// Declares the bearer-key scheme every `/v1` route needs.
struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("An eligo access key (`eligo keys create`)"))
                    .build(),
            ),
        );
        // Every /v1 operation can refuse a caller: document it once here.
        let problem = |description: &str| {
            utoipa::openapi::ResponseBuilder::new()
                .description(description)
                .content(
                    "application/problem+json",
                    utoipa::openapi::ContentBuilder::new()
                        .schema(Some(utoipa::openapi::Ref::from_schema_name("Problem")))
                        .build(),
                )
                .build()
        };
        for (path, item) in openapi.paths.paths.iter_mut() {
            if !path.starts_with("/v1") {
                continue;
            }
            for op in [
                item.get.as_mut(),
                item.put.as_mut(),
                item.post.as_mut(),
                item.delete.as_mut(),
            ]
            .into_iter()
            .flatten()
            {
                // Every operation that reads a body (and the bodiless POSTs, which may get
                // one) can refuse it for its size, media type or syntax.
                if op.request_body.is_some() || op.responses.responses.contains_key("201") {
                    for (code, text) in [
                        ("400", "Malformed JSON or a missing required header"),
                        ("413", "Body over the size limit"),
                        ("415", "Unsupported Content-Type"),
                    ] {
                        op.responses
                            .responses
                            .entry(code.into())
                            .or_insert_with(|| problem(text).into());
                    }
                }
                op.responses.responses.insert(
                    "401".into(),
                    problem("Missing, unknown or revoked key").into(),
                );
                op.responses.responses.insert(
                    "403".into(),
                    problem("The key's role or sponsor may not do this").into(),
                );
            }
        }
    }
}

/// The document: the info and tags above, and one operation per row of the route table.
pub fn openapi() -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    for document in super::routes::ROUTES.iter().filter_map(|r| r.document) {
        document(&mut doc);
    }
    BearerAuth.modify(&mut doc);
    doc
}

/// The document as JSON, with the rules the derives cannot state added by [`refine`].
pub fn document_value() -> Result<serde_json::Value, serde_json::Error> {
    let mut doc = serde_json::to_value(openapi())?;
    refine(&mut doc);
    Ok(doc)
}

/// Rules between fields, which OpenAPI 3.1 states with `oneOf`/`anyOf` and the derives cannot
/// write. Rules it cannot state at all (they depend on stored data) are in the operations'
/// descriptions.
fn refine(doc: &mut serde_json::Value) {
    use serde_json::json;
    let schemas = &mut doc["components"]["schemas"];
    // A preview names its student inline or by id: exactly one.
    schemas["EvaluationRequest"]["oneOf"] = json!([
        {"required": ["student"],
         "properties": {"student": {"type": "object"}, "student_id": {"type": "null"}}},
        {"required": ["student_id"],
         "properties": {"student_id": {"type": "string"}, "student": {"type": "null"}}}
    ]);
    // A budget gives at least one limit.
    schemas["BudgetLimits"]["anyOf"] = json!([
        {"required": ["total_cents"], "properties": {"total_cents": {"type": "integer"}}},
        {"required": ["max_awards"], "properties": {"max_awards": {"type": "integer"}}}
    ]);
    // Roles bound to a sponsor must name one; the others must not.
    let (bound, free): (Vec<Role>, Vec<Role>) =
        Role::ALL.into_iter().partition(|r| r.bound_to_sponsor());
    let names = |roles: Vec<Role>| roles.into_iter().map(Role::as_str).collect::<Vec<_>>();
    schemas["CreateKeyRequest"]["oneOf"] = json!([
        {"required": ["role", "sponsor"],
         "properties": {"role": {"enum": names(bound)}, "sponsor": {"type": "string"}}},
        {"required": ["role"],
         "properties": {"role": {"enum": names(free)}, "sponsor": {"type": "null"}}}
    ]);
    // PUT takes the record with `student_id` optional (the path names the student).
    let mut update = schemas["Student"].clone();
    if let Some(required) = update["required"].as_array_mut() {
        required.retain(|f| f != "student_id");
    }
    update["description"] = json!(
        "A student record for PUT: `student_id` may be omitted; when given it must equal the \
         path's id (a rule between the body and the path, which OpenAPI cannot state)."
    );
    schemas["StudentUpdate"] = update;
    doc["paths"]["/v1/students/{id}"]["put"]["requestBody"]["content"]["application/json"]
        ["schema"] = json!({"$ref": "#/components/schemas/StudentUpdate"});
}

/// The document as pretty JSON with a trailing newline.
pub fn document() -> Result<String, serde_json::Error> {
    let mut s = serde_json::to_string_pretty(&document_value()?)?;
    s.push('\n');
    Ok(s)
}
