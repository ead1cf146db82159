//! The route table: every route the service serves, declared once with who may call it.
//!
//! Registration (`configure`), the `Allow` header of 405 answers, authorization (`access`) and
//! the OpenAPI document's paths (`openapi`) are all read from [`ROUTES`]. A route that is not in
//! the table is served to no one: the access check refuses any matched route it cannot find
//! here, whatever the key.

use actix_web::http::Method;
use actix_web::{web, HttpResponse};

use super::error::ApiError;
use super::{awards, batches, evaluations, health, keys, ledger, policies, reports, students};
use crate::pages;
use crate::service::access::Role;

use Role::{Admin, Auditor, Author, Awarder, Counselor};

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone, without a key (health, readiness, metrics).
    Open,
    /// Callers with a key of one of these roles.
    Roles(&'static [Role]),
}

/// Whether an awarder is limited to its own sponsor's policies on this route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// The route does not act on one program.
    Any,
    /// The route acts on one program; an awarder may act only on its own sponsor's. The
    /// handler resolves the program (from the path, the body, an award or a ledger entry) and
    /// calls `access::require_sponsor`; the access matrix test holds every such row to it.
    Sponsor,
}

/// Who a route serves, and so how a caller proves who they are and how a refusal looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The JSON API: a bearer key; refusals are problem documents; documented in OpenAPI.
    Api,
    /// A page for people: a session cookie; refusals are pages.
    Page,
}

/// One route: method, path pattern, handler, roles and sponsor scope.
pub struct Route {
    pub method: Method,
    pub path: &'static str,
    pub access: Access,
    pub scope: Scope,
    pub kind: Kind,
    /// The handler, as actix registers it.
    handler: fn() -> actix_web::Route,
    /// Adds the handler's operation (from its `#[utoipa::path]`) to the document (API routes).
    pub(super) document: Option<fn(&mut utoipa::openapi::OpenApi)>,
}

impl Route {
    /// Whether `role` may call this route (open routes: everyone).
    pub fn allows(&self, role: Role) -> bool {
        match self.access {
            Access::Open => true,
            Access::Roles(roles) => roles.contains(&role),
        }
    }
}

impl std::fmt::Debug for Route {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Route")
            .field("method", &self.method)
            .field("path", &self.path)
            .field("access", &self.access)
            .field("scope", &self.scope)
            .field("kind", &self.kind)
            .finish()
    }
}

/// Adds a handler's documented operation (with its tags) and the schemas it refers to.
fn document<P>(doc: &mut utoipa::openapi::OpenApi)
where
    P: utoipa::Path + utoipa::__dev::SchemaReferences + for<'t> utoipa::__dev::Tags<'t>,
{
    let mut operation = P::operation();
    let tags = operation.tags.get_or_insert_with(Vec::new);
    for tag in P::tags() {
        if !tags.iter().any(|t| t == tag) {
            tags.push(tag.to_string());
        }
    }
    doc.paths
        .add_path_operation(P::path(), P::methods(), operation);
    let mut schemas = Vec::new();
    P::schemas(&mut schemas);
    let components = doc.components.get_or_insert_with(Default::default);
    for (name, schema) in schemas {
        match components.schemas.entry(name) {
            std::collections::btree_map::Entry::Vacant(v) => {
                v.insert(schema);
            }
            // Two types under one name would be documented as whichever came first (a report's
            // `Step` once took the place of the decision's): the document's tests build it in a
            // debug build, where this stops them.
            std::collections::btree_map::Entry::Occupied(o) => debug_assert!(
                *o.get() == schema,
                "two different types are documented as the schema {}",
                o.key()
            ),
        }
    }
}

/// A row of the table: `route!(GET "/path", module::handler, access, scope)`.
macro_rules! route {
    ($method:ident $path:literal, $module:ident :: $handler:ident, $access:expr, $scope:expr) => {
        pastey::paste! {
            Route {
                method: Method::$method,
                path: $path,
                access: $access,
                scope: $scope,
                kind: Kind::Api,
                handler: || web::route().method(Method::$method).to($module::$handler),
                document: Some(document::<$module::[<__path_ $handler>]>),
            }
        }
    };
}

/// A page of the table: `page!(GET "/path", module::handler, access[, scope])`.
macro_rules! page {
    ($method:ident $path:literal, $($handler:ident)::+, $access:expr) => {
        page!($method $path, $($handler)::+, $access, Scope::Any)
    };
    ($method:ident $path:literal, $($handler:ident)::+, $access:expr, $scope:expr) => {
        Route {
            method: Method::$method,
            path: $path,
            access: $access,
            scope: $scope,
            kind: Kind::Page,
            handler: || web::route().method(Method::$method).to($($handler)::+),
            document: None,
        }
    };
}

const OPEN: Access = Access::Open;
const STUDENTS: Access = Access::Roles(&[Admin, Counselor]);
const EVERY_KEY: Access = Access::Roles(&[Admin, Awarder, Counselor, Auditor, Author]);
const AUTHORS: Access = Access::Roles(&[Admin, Author]);
const PROGRAMS: Access = Access::Roles(&[Admin, Awarder]);
const LEDGER: Access = Access::Roles(&[Admin, Auditor, Awarder]);
const AUDIT: Access = Access::Roles(&[Admin, Auditor]);
const ADMIN: Access = Access::Roles(&[Admin]);
/// Batches: previews for those who may read students or award, awards for awarders (the
/// handler refuses a counselor's award batch, and an awarder's outside its sponsor).
/// Reports: every program for admins and auditors, an awarder's own (filtered, not refused).
const REPORTS: Access = Access::Roles(&[Admin, Auditor, Awarder]);
const BATCHES: Access = Access::Roles(&[Admin, Awarder, Counselor]);

/// Every route. Order matters where patterns overlap: actix tries resources in this order, so
/// a literal segment (`/v1/students/import`) comes before a parameter (`/v1/students/{id}`).
pub static ROUTES: std::sync::LazyLock<Vec<Route>> = std::sync::LazyLock::new(|| {
    use Scope::{Any, Sponsor};
    vec![
        route!(GET "/healthz", health::healthz, OPEN, Any),
        route!(GET "/readyz", health::readyz, OPEN, Any),
        route!(GET "/metrics", health::metrics, OPEN, Any),
        route!(GET "/v1/students", students::list_students, STUDENTS, Any),
        route!(POST "/v1/students/import", students::import_students, STUDENTS, Any),
        route!(GET "/v1/students/{id}", students::get_student, STUDENTS, Any),
        route!(PUT "/v1/students/{id}", students::put_student, STUDENTS, Any),
        route!(DELETE "/v1/students/{id}", students::delete_student, STUDENTS, Any),
        route!(POST "/v1/evaluations", evaluations::create_evaluation, STUDENTS, Any),
        route!(GET "/v1/policies", policies::list_policies, EVERY_KEY, Any),
        route!(POST "/v1/policies", policies::publish_policy, AUTHORS, Sponsor),
        route!(GET "/v1/policies/{id}", policies::get_policy, EVERY_KEY, Any),
        route!(GET "/v1/policies/{id}/budget", policies::get_budget, PROGRAMS, Sponsor),
        route!(PUT "/v1/policies/{id}/budget", policies::put_budget, PROGRAMS, Sponsor),
        route!(POST "/v1/policies/{id}/simulate", policies::simulate_policy, AUTHORS, Sponsor),
        route!(POST "/v1/awards", awards::create_award, PROGRAMS, Sponsor),
        route!(POST "/v1/awards/{id}/revoke", awards::revoke_award, PROGRAMS, Sponsor),
        route!(GET "/v1/ledger", ledger::list_ledger, LEDGER, Sponsor),
        route!(GET "/v1/ledger/verify", ledger::verify_ledger, AUDIT, Any),
        route!(POST "/v1/ledger/{seq}/replay", ledger::replay_entry, LEDGER, Sponsor),
        route!(POST "/v1/batches", batches::create_batch, BATCHES, Sponsor),
        route!(GET "/v1/batches/{id}", batches::get_batch, BATCHES, Any),
        route!(DELETE "/v1/batches/{id}", batches::cancel_batch, BATCHES, Any),
        route!(GET "/v1/batches/{id}/results", batches::batch_results, BATCHES, Any),
        route!(GET "/v1/reports/awards", reports::awards_report, REPORTS, Any),
        route!(GET "/v1/reports/progression", reports::progression_report, REPORTS, Any),
        route!(GET "/v1/reports/budget", reports::budget_report, REPORTS, Any),
        route!(GET "/v1/keys", keys::list_keys, ADMIN, Any),
        route!(POST "/v1/keys", keys::create_key, ADMIN, Any),
        route!(POST "/v1/keys/{id}/revoke", keys::revoke_key, ADMIN, Any),
        // Pages for people (signed in with a session cookie).
        page!(GET "/", pages::session::home, OPEN),
        page!(POST "/sign-in", pages::session::sign_in, OPEN),
        page!(POST "/sign-out", pages::session::sign_out, EVERY_KEY),
        page!(GET "/assets/{file}", pages::asset, OPEN),
        page!(GET "/students", pages::students::search, STUDENTS),
        page!(GET "/students/{id}", pages::students::student, STUDENTS),
        page!(POST "/students/{id}/try", pages::students::try_change, STUDENTS),
        page!(GET "/preview", pages::students::preview_form, STUDENTS),
        page!(POST "/preview", pages::students::preview, STUDENTS),
        page!(GET "/schools/{id}", pages::students::school, STUDENTS),
        page!(GET "/schools/{id}/students.csv", pages::students::school_csv, STUDENTS),
        page!(GET "/policies", pages::policies::list, AUTHORS),
        page!(GET "/policies/new", pages::policies::new_candidate, AUTHORS),
        page!(POST "/policies/check", pages::policies::check, AUTHORS, Sponsor),
        page!(POST "/policies/publish", pages::policies::publish, AUTHORS, Sponsor),
        page!(GET "/policies/{id}/versions/{version}", pages::policies::version, AUTHORS),
        page!(GET "/dashboard", pages::dashboard::dashboard, REPORTS),
        page!(GET "/dashboard/{table}", pages::dashboard::dashboard_csv, REPORTS),
        page!(POST "/batches", pages::dashboard::start_batch, BATCHES, Sponsor),
        page!(GET "/batches/{id}", pages::dashboard::batch, BATCHES),
        page!(GET "/batches/{id}/results.csv", pages::dashboard::batch_csv, BATCHES),
    ]
});

/// Routes served without a key outside the table: the OpenAPI document and its Swagger UI
/// (registered by `api::routes`).
pub const DOCUMENTATION: &[&str] = &["/openapi.json", "/docs", "/docs/{_:.*}"];

/// The table's row for a request's method and matched route pattern.
pub fn find(method: &Method, pattern: &str) -> Option<&'static Route> {
    ROUTES
        .iter()
        .find(|r| r.path == pattern && r.method == method)
}

/// Whether any row has this path pattern (whatever its method).
pub fn declares_path(pattern: &str) -> bool {
    ROUTES.iter().any(|r| r.path == pattern)
}

/// The methods the table serves on `path`, for `Allow`.
pub fn allowed_methods(path: &str) -> String {
    let methods: Vec<&str> = ROUTES
        .iter()
        .filter(|r| r.path == path)
        .map(|r| r.method.as_str())
        .collect();
    methods.join(", ")
}

/// Registers every route of the table, one resource per path; a method the table does not
/// serve on a path answers 405 with `Allow`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    let mut seen: Vec<&str> = Vec::new();
    for row in ROUTES.iter() {
        if seen.contains(&row.path) {
            continue;
        }
        seen.push(row.path);
        let allow = allowed_methods(row.path);
        let mut resource = web::resource(row.path).default_service(web::to(move || {
            let allow = allow.clone();
            async move { Err::<HttpResponse, _>(ApiError::method_not_allowed(&allow)) }
        }));
        for r in ROUTES.iter().filter(|r| r.path == row.path) {
            resource = resource.route((r.handler)());
        }
        cfg.service(resource);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_method_and_path_is_declared_once() {
        for (i, a) in ROUTES.iter().enumerate() {
            for b in &ROUTES[i + 1..] {
                assert!(
                    !(a.method == b.method && a.path == b.path),
                    "{} {} is declared twice",
                    a.method,
                    a.path
                );
            }
        }
    }

    #[test]
    fn every_v1_route_needs_a_key_and_is_documented() {
        for r in ROUTES.iter() {
            match r.access {
                Access::Open => assert!(!r.path.starts_with("/v1"), "{} is open", r.path),
                Access::Roles(roles) => assert!(!roles.is_empty(), "{} has no role", r.path),
            }
            assert_eq!(r.kind == Kind::Api, r.document.is_some(), "{}", r.path);
            assert_eq!(
                r.kind == Kind::Api,
                r.path.starts_with("/v1") || ["/healthz", "/readyz", "/metrics"].contains(&r.path),
                "{}",
                r.path
            );
        }
    }

    #[test]
    fn allow_lists_the_methods_of_a_path() {
        assert_eq!(allowed_methods("/v1/students/{id}"), "GET, PUT, DELETE");
        assert_eq!(allowed_methods("/v1/keys"), "GET, POST");
        assert!(find(&Method::GET, "/v1/keys").is_some());
        assert!(find(&Method::PATCH, "/v1/keys").is_none());
        assert!(!declares_path("/v1/nowhere"));
    }
}
