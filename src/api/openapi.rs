//! The OpenAPI document, generated from the handlers' annotations. `eligo openapi` prints it;
//! `openapi/openapi.json` is a checked-in copy a test keeps in step.

use utoipa::OpenApi;

use super::{awards, evaluations, health, ledger, policies, students};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "eligo",
        description = "Eligibility rules engine for scholarships and tuition waivers. Errors are RFC 9457 problem documents (application/problem+json).",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    paths(
        health::healthz,
        health::readyz,
        health::metrics,
        students::put_student,
        students::get_student,
        students::delete_student,
        students::list_students,
        students::import_students,
        evaluations::create_evaluation,
        policies::list_policies,
        policies::get_policy,
        policies::get_budget,
        policies::put_budget,
        awards::create_award,
        awards::revoke_award,
        ledger::list_ledger,
        ledger::verify_ledger,
        ledger::replay_entry,
    ),
    tags(
        (name = "students", description = "Student records"),
        (name = "evaluations", description = "Previews: what a student qualifies for and what is missing"),
        (name = "policies", description = "Published policy versions and program budgets"),
        (name = "awards", description = "Awards and revocations, recorded in the ledger"),
        (name = "ledger", description = "The append-only, hash-chained ledger of award decisions"),
        (name = "operations", description = "Health, readiness and metrics"),
    )
)]
pub struct ApiDoc;

/// The document as pretty JSON with a trailing newline.
pub fn document() -> String {
    let mut s = ApiDoc::openapi().to_pretty_json().unwrap_or_default();
    s.push('\n');
    s
}
