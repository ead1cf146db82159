//! eligo: an eligibility rules engine for scholarships and tuition waivers.

pub mod api;
pub mod cli;
pub mod cohort;
pub mod config;
pub mod pages;
pub mod policy;
pub mod service;
pub mod store;
