//! eligo: an eligibility rules engine for scholarships and tuition waivers.

pub mod cli;
pub mod cohort;
pub mod policy;
