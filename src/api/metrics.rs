//! Prometheus metrics: requests by route and status, latency histograms, decisions by policy
//! and outcome. Held in the app state, not in globals.

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry, TextEncoder,
};

use crate::policy::Decision;

#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    latency: HistogramVec,
    decisions: IntCounterVec,
    awards: IntCounterVec,
}

impl Metrics {
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new(
                "eligo_http_requests_total",
                "HTTP requests by route, method and status",
            ),
            &["route", "method", "status"],
        )?;
        let latency = HistogramVec::new(
            HistogramOpts::new(
                "eligo_http_request_duration_seconds",
                "HTTP request latency by route and method",
            )
            .buckets(vec![
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
            ]),
            &["route", "method"],
        )?;
        let decisions = IntCounterVec::new(
            Opts::new(
                "eligo_decisions_total",
                "Policy decisions by policy and outcome",
            ),
            &["policy", "outcome"],
        )?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(latency.clone()))?;
        let awards = IntCounterVec::new(
            Opts::new(
                "eligo_awards_total",
                "Award responses by policy and decision (granted, denied)",
            ),
            &["policy", "decision"],
        )?;
        registry.register(Box::new(decisions.clone()))?;
        registry.register(Box::new(awards.clone()))?;
        Ok(Self {
            registry,
            requests,
            latency,
            decisions,
            awards,
        })
    }

    pub fn observe_request(&self, route: &str, method: &str, status: u16, seconds: f64) {
        self.requests
            .with_label_values(&[route, method, &status.to_string()])
            .inc();
        self.latency
            .with_label_values(&[route, method])
            .observe(seconds);
    }

    pub fn observe_decisions(&self, decisions: &[Decision]) {
        for d in decisions {
            self.decisions
                .with_label_values(&[&d.policy_id, d.outcome.as_str()])
                .inc();
        }
    }

    pub fn observe_award(&self, policy: &str, decision: &str) {
        self.awards.with_label_values(&[policy, decision]).inc();
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        // Encoding into a Vec cannot fail for the text format.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        String::from_utf8(out).unwrap_or_default()
    }
}
