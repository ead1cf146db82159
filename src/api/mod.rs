//! The HTTP API: actix handlers that turn requests into service calls and results into JSON.
//! `Application::build` binds a listener (port 0 in tests) and exposes `port()`.
// ApiError is large (a problem document in the making); it only travels the error path, once
// per request, so boxing it would buy nothing measurable.
#![allow(clippy::result_large_err)]

pub mod access;
pub mod awards;
pub mod batches;
pub mod body;
pub mod error;
pub mod evaluations;
pub mod health;
pub mod keys;
pub mod ledger;
pub mod metrics;
pub mod observe;
pub mod openapi;
pub mod policies;
pub mod reports;
pub mod routes;
pub mod students;

use std::net::TcpListener;

use actix_web::dev::Server;
use actix_web::{middleware, web, App, HttpResponse, HttpServer};
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

/// Registers every route: the route table's, then the open spec and docs.
pub fn routes(cfg: &mut web::ServiceConfig) {
    routes::configure(cfg);
    cfg.service(web::resource("/docs").route(web::get().to(|| async {
        HttpResponse::PermanentRedirect()
            .insert_header(("Location", "/docs/"))
            .finish()
    })))
    .service(match openapi::document_value() {
        Ok(doc) => SwaggerUi::new("/docs/{_:.*}").external_url_unchecked("/openapi.json", doc),
        // Serialization of the document is tested; should it ever fail, serve it as derived.
        Err(e) => {
            tracing::error!(error = %e, "cannot refine the OpenAPI document");
            SwaggerUi::new("/docs/{_:.*}").url("/openapi.json", openapi::openapi())
        }
    });
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
        // Versions published through another instance are served here within a second.
        tokio::spawn(service.clone().watch_policies());
        // Batches queued here or left by a stopped process are worked through.
        tokio::spawn(service.clone().run_batches());
        // The reports' evaluation of the cohort, kept current.
        tokio::spawn(service.clone().keep_cohort_warm());
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
        let form_limit = state.settings.max_body_bytes;
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
                // Page forms carry policy scripts and their cases: the API's body limit, and a
                // refusal that is a page saying so.
                .app_data(web::FormConfig::default().limit(form_limit).error_handler(
                    |err, _req| {
                        crate::pages::PageError::bad_request(format!(
                            "The form could not be read: {err}"
                        ))
                        .into()
                    },
                ))
                .app_data(
                    web::PathConfig::default()
                        .error_handler(|err, _req| ApiError::not_found(err.to_string()).into()),
                )
                .wrap(middleware::from_fn(access::authenticate))
                .wrap(middleware::from_fn(crate::pages::security_headers))
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
        // The handlers are installed here, before the server serves its first request, not in
        // the task: a signal that arrived before that task first ran could go unnoticed.
        let signalled = signals()?;
        tokio::spawn(async move {
            let name = signalled.await;
            tracing::info!("{name} received; finishing in-flight requests");
            handle.stop(true).await;
        });
        self.server.await
    }
}

/// Installs the SIGTERM and SIGINT handlers now; the future resolves with the first signal.
#[cfg(unix)]
fn signals() -> std::io::Result<impl std::future::Future<Output = &'static str>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        }
    })
}

#[cfg(not(unix))]
fn signals() -> std::io::Result<impl std::future::Future<Output = &'static str>> {
    Ok(async {
        let _ = tokio::signal::ctrl_c().await;
        "Ctrl-C"
    })
}
