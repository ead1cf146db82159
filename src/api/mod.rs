//! The HTTP API: actix handlers that turn requests into service calls and results into JSON.
//! `Application::build` binds a listener (port 0 in tests) and exposes `port()`.
// ApiError is large (a problem document in the making); it only travels the error path, once
// per request, so boxing it would buy nothing measurable.
#![allow(clippy::result_large_err)]

pub mod access;
pub mod awards;
pub mod body;
pub mod error;
pub mod evaluations;
pub mod health;
pub mod json;
pub mod keys;
pub mod ledger;
pub mod metrics;
pub mod observe;
pub mod openapi;
pub mod policies;
pub mod students;

use std::net::TcpListener;

use actix_web::dev::Server;
use actix_web::{middleware, web, App, HttpResponse, HttpServer, Resource};
use utoipa::OpenApi;
use utoipa_swagger_ui::SwaggerUi;

use crate::config::Settings;
use crate::service::Service;
use error::ApiError;
use metrics::Metrics;

/// What every handler can reach.
pub struct AppState {
    pub service: Service,
    pub settings: Settings,
    pub metrics: web::Data<Metrics>,
}

/// A resource that answers 405 with `Allow` for methods it does not serve.
fn resource(path: &str, allow: &'static str) -> Resource {
    web::resource(path).default_service(web::to(move || async move {
        Err::<HttpResponse, _>(ApiError::method_not_allowed(allow))
    }))
}

/// Registers every route.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/healthz", "GET").route(web::get().to(health::healthz)))
        .service(resource("/readyz", "GET").route(web::get().to(health::readyz)))
        .service(resource("/metrics", "GET").route(web::get().to(health::metrics)))
        .service(resource("/v1/students", "GET").route(web::get().to(students::list_students)))
        .service(
            resource("/v1/students/import", "POST")
                .route(web::post().to(students::import_students)),
        )
        .service(
            resource("/v1/students/{id}", "GET, PUT, DELETE")
                .route(web::get().to(students::get_student))
                .route(web::put().to(students::put_student))
                .route(web::delete().to(students::delete_student)),
        )
        .service(
            resource("/v1/evaluations", "POST")
                .route(web::post().to(evaluations::create_evaluation)),
        )
        .service(resource("/v1/policies", "GET").route(web::get().to(policies::list_policies)))
        .service(resource("/v1/policies/{id}", "GET").route(web::get().to(policies::get_policy)))
        .service(
            resource("/v1/policies/{id}/budget", "GET, PUT")
                .route(web::get().to(policies::get_budget))
                .route(web::put().to(policies::put_budget)),
        )
        .service(resource("/v1/awards", "POST").route(web::post().to(awards::create_award)))
        .service(
            resource("/v1/awards/{id}/revoke", "POST").route(web::post().to(awards::revoke_award)),
        )
        .service(
            resource("/v1/keys", "GET, POST")
                .route(web::get().to(keys::list_keys))
                .route(web::post().to(keys::create_key)),
        )
        .service(resource("/v1/keys/{id}/revoke", "POST").route(web::post().to(keys::revoke_key)))
        .service(resource("/v1/ledger", "GET").route(web::get().to(ledger::list_ledger)))
        .service(resource("/v1/ledger/verify", "GET").route(web::get().to(ledger::verify_ledger)))
        .service(
            resource("/v1/ledger/{seq}/replay", "POST").route(web::post().to(ledger::replay_entry)),
        )
        .service(web::resource("/docs").route(web::get().to(|| async {
            HttpResponse::PermanentRedirect()
                .insert_header(("Location", "/docs/"))
                .finish()
        })))
        .service(SwaggerUi::new("/docs/{_:.*}").url("/openapi.json", openapi::ApiDoc::openapi()));
}

/// A running server: the port it listens on and the future that serves.
pub struct Application {
    port: u16,
    server: Server,
}

impl Application {
    /// Starts the service (database, migrations, policies) and binds the listener.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let for_start = settings.clone();
        let service = tokio::task::spawn_blocking(move || Service::start(&for_start)).await??;
        let listener = TcpListener::bind(&settings.bind)
            .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", settings.bind))?;
        let port = listener.local_addr()?.port();
        let metrics = web::Data::new(Metrics::new()?);
        let workers = settings
            .workers
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
        let state = web::Data::new(AppState {
            service,
            settings,
            metrics: metrics.clone(),
        });
        let server = HttpServer::new(move || {
            App::new()
                .app_data(state.clone())
                .app_data(metrics.clone())
                .app_data(web::QueryConfig::default().error_handler(|err, _req| {
                    ApiError::new(
                        actix_web::http::StatusCode::BAD_REQUEST,
                        "bad-query",
                        "Invalid query parameters",
                        err.to_string(),
                    )
                    .into()
                }))
                .app_data(
                    web::PathConfig::default()
                        .error_handler(|err, _req| ApiError::not_found(err.to_string()).into()),
                )
                .wrap(middleware::from_fn(access::authenticate))
                .wrap(middleware::from_fn(observe::observe))
                .configure(routes)
                .default_service(web::to(|req: actix_web::HttpRequest| async move {
                    Err::<HttpResponse, _>(ApiError::not_found(format!("no route {}", req.path())))
                }))
        })
        .workers(workers)
        .shutdown_timeout(10)
        // Signals are ours (see run_until_stopped): actix treats SIGINT as a forced stop.
        .disable_signals()
        .listen(listener)?
        .run();
        Ok(Self { port, server })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serves until the server stops (tests drop it with the runtime).
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.server.await
    }

    /// Serves until SIGINT or SIGTERM, then stops accepting and drains in-flight requests
    /// (up to 10 s) before returning.
    pub async fn run_until_signalled(self) -> std::io::Result<()> {
        let handle = self.server.handle();
        tokio::spawn(async move {
            let name = wait_for_signal().await;
            tracing::info!("{name} received; finishing in-flight requests");
            handle.stop(true).await;
        });
        self.server.await
    }
}

#[cfg(unix)]
async fn wait_for_signal() -> &'static str {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        std::future::pending::<()>().await;
        return "";
    };
    tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    }
}

#[cfg(not(unix))]
async fn wait_for_signal() -> &'static str {
    let _ = tokio::signal::ctrl_c().await;
    "Ctrl-C"
}
