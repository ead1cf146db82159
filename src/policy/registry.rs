//! Loads policy scripts, reads and validates their metadata, hashes their source, and picks the
//! version in effect on a date.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::NaiveDate;
use rhai::{CallFnOptions, Dynamic, Engine, Scope, AST};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use super::decision::Award;
use super::engine::{build_engine, Limits};
use super::tests::TestSuite;
use super::PolicyError;

/// What `fn policy()` returns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PolicyMeta {
    /// Lower-case letters, digits and dashes; stable across versions.
    pub id: String,
    /// A positive integer; a published version never changes.
    pub version: u32,
    pub title: String,
    pub sponsor: String,
    /// `incentive` (the default: awarded and budgeted) or `requirement` (never awarded; shown
    /// as progress, and referred to by incentives through `student.meets(id)`).
    #[serde(default, skip_serializing_if = "PolicyKind::is_incentive")]
    pub kind: PolicyKind,
    /// What an incentive grants; a requirement has none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub award: Option<Award>,
    /// A requirement for one endorsement: its area. `student.meets` passes the requirement's
    /// missing items on as steps only to students with this endorsement in progress.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub endorsement_area: Option<super::student::EndorsementArea>,
    #[schema(value_type = String, format = Date)]
    pub effective_from: NaiveDate,
    /// Exclusive: the version is in effect on dates before this one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = Date)]
    pub effective_to: Option<NaiveDate>,
    #[serde(default = "default_true")]
    pub once_per_student: bool,
    /// The words of each criterion, by code: `require(code, check)` takes its reason label and
    /// missing text from here, so the script keeps only the logic.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub criteria: BTreeMap<String, CriterionText>,
}

/// What a policy is for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PolicyKind {
    /// A scholarship or a waiver: awarded, budgeted.
    #[default]
    Incentive,
    /// A set of requirements (an endorsement's, say): never awarded, shown as progress.
    Requirement,
}

impl PolicyKind {
    pub fn is_incentive(&self) -> bool {
        *self == Self::Incentive
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Incentive => "incentive",
            Self::Requirement => "requirement",
        }
    }
}

/// What people read about one criterion.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CriterionText {
    /// The reason's message (the check's detail follows it).
    pub label: String,
    /// What to do when the criterion is not met.
    pub missing: String,
}

fn default_true() -> bool {
    true
}

impl PolicyMeta {
    /// Whether this version is in effect on `date`.
    pub fn in_effect(&self, date: NaiveDate) -> bool {
        self.effective_from <= date && self.effective_to.is_none_or(|to| date < to)
    }

    /// Whether a student's evaluation includes this policy: every incentive; a requirement for
    /// an endorsement area only for students whose record lists that endorsement (earned or
    /// in progress), since it is their progress.
    pub fn concerns(&self, student: &super::student::Student) -> bool {
        match self.endorsement_area {
            None => true,
            Some(area) => student
                .endorsements
                .as_ref()
                .is_some_and(|list| list.iter().any(|e| e.area == area)),
        }
    }

    /// Checks the metadata; a problem names the key it is about.
    fn validate(&self) -> Result<(), (String, String)> {
        fn bad(key: impl Into<String>, message: impl Into<String>) -> Result<(), (String, String)> {
            Err((key.into(), message.into()))
        }
        let id_ok = !self.id.is_empty()
            && self.id.len() <= 64
            && self
                .id
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !id_ok {
            return bad(
                "id",
                format!(
                    "id {:?} must be 1-64 lower-case letters, digits or dashes",
                    self.id
                ),
            );
        }
        if self.version == 0 || self.version > i32::MAX as u32 {
            return bad(
                "version",
                format!("version must be an integer from 1 to {}", i32::MAX),
            );
        }
        if self.title.trim().is_empty() {
            return bad("title", "title must not be empty");
        }
        if self.sponsor.trim().is_empty() {
            return bad("sponsor", "sponsor must not be empty");
        }
        match (self.kind, &self.award) {
            (PolicyKind::Incentive, None) => {
                return bad("award", "an incentive must say what it awards (award)")
            }
            (PolicyKind::Requirement, Some(_)) => {
                return bad("award", "a requirement is never awarded: remove award")
            }
            (PolicyKind::Incentive, _) if self.endorsement_area.is_some() => {
                return bad(
                    "endorsement_area",
                    "only a requirement names an endorsement area",
                )
            }
            _ => {}
        }
        match self
            .award
            .as_ref()
            .unwrap_or(&Award::Scholarship { amount_cents: 1 })
        {
            Award::Scholarship { amount_cents } if *amount_cents <= 0 => {
                return bad(
                    "award.amount_cents",
                    "award.amount_cents must be a positive number of cents",
                )
            }
            Award::TuitionWaiver {
                credit_hours,
                institution_id,
            } => {
                if !credit_hours.is_finite() || *credit_hours <= 0.0 {
                    return bad("award.credit_hours", "award.credit_hours must be positive");
                }
                if !super::student::is_valid_id(institution_id) {
                    return bad(
                        "award.institution_id",
                        "award.institution_id must be a valid id",
                    );
                }
            }
            Award::Scholarship { .. } => {}
        }
        if let Some(to) = self.effective_to {
            if to <= self.effective_from {
                return bad(
                    "effective_to",
                    format!(
                        "effective_to {to} must be after effective_from {}",
                        self.effective_from
                    ),
                );
            }
        }
        for (code, text) in &self.criteria {
            let code_ok = !code.is_empty()
                && code.len() <= 64
                && code
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
            if !code_ok {
                return bad(
                    "criteria",
                    format!(
                        "criteria: code {code:?} must be 1-64 lower-case letters, digits or underscores"
                    ),
                );
            }
            if text.label.trim().is_empty() || text.missing.trim().is_empty() {
                return bad(
                    format!("criteria.{code}"),
                    format!("criteria.{code}: label and missing must not be empty"),
                );
            }
        }
        Ok(())
    }
}

/// One immutable policy version: its metadata, source and the SHA-256 of the source.
#[derive(Debug, Clone, PartialEq)]
pub struct PolicyVersion {
    pub meta: PolicyMeta,
    pub source: Arc<str>,
    /// Lower-case hex SHA-256 of `source`.
    pub hash: String,
    /// Where it came from: a file path or another label.
    pub origin: String,
    /// Every version of each requirement policy the script refers to with
    /// `student.meets("id")`, themselves linked; filled by [`Registry::new`], which checks that
    /// each exists, is a requirement, and that no chain comes back to where it started.
    pub links: Vec<Arc<PolicyVersion>>,
    /// The requirement ids the script names in `meets("...")`, in order, each once (read from
    /// the source once: evaluations look them up on every decision).
    requires: Vec<String>,
}

impl PolicyVersion {
    /// A version as read from its source, not yet linked.
    pub fn new(meta: PolicyMeta, source: Arc<str>, hash: String, origin: String) -> Self {
        let requires = required_ids(&source);
        Self {
            meta,
            source,
            hash,
            origin,
            links: Vec::new(),
            requires,
        }
    }

    /// The requirement ids the script names in `meets("...")`, in order, each once.
    pub fn requires(&self) -> &[String] {
        &self.requires
    }
}

fn required_ids(source: &str) -> Vec<String> {
    {
        let mut ids: Vec<String> = Vec::new();
        let code = without_comments(source);
        let mut rest = code.as_str();
        while let Some(at) = rest.find("meets(") {
            rest = &rest[at + "meets(".len()..];
            let trimmed = rest.trim_start();
            if let Some(quoted) = trimmed.strip_prefix('"') {
                if let Some(end) = quoted.find('"') {
                    let id = &quoted[..end];
                    if !ids.iter().any(|i| i == id) {
                        ids.push(id.to_string());
                    }
                }
            }
        }
        ids
    }
}

/// SHA-256 of a policy's source, lower-case hex.
pub fn source_hash(source: &str) -> String {
    hex::encode(Sha256::digest(source.as_bytes()))
}

/// Compiles a script and checks that it defines `policy()` and `evaluate(student, ctx)`.
pub fn compile(engine: &Engine, source: &str, origin: &str) -> Result<AST, PolicyError> {
    let ast = engine.compile(source).map_err(|e| PolicyError::Compile {
        origin: origin.to_string(),
        line: e.1.line(),
        column: e.1.position(),
        message: e.0.to_string(),
    })?;
    let has = |name: &str, params: usize| {
        ast.iter_functions()
            .any(|f| f.name == name && f.params.len() == params)
    };
    if !has("policy", 0) {
        return Err(PolicyError::Metadata {
            origin: origin.to_string(),
            key: None,
            message: "the script must define fn policy() returning its metadata".into(),
        });
    }
    if !has("evaluate", 2) {
        return Err(PolicyError::Metadata {
            origin: origin.to_string(),
            key: None,
            message: "the script must define fn evaluate(student, ctx)".into(),
        });
    }
    Ok(ast)
}

/// Compiles a policy source, reads and validates its metadata.
pub fn load_version(
    engine: &Engine,
    source: &str,
    origin: &str,
) -> Result<PolicyVersion, PolicyError> {
    let ast = compile(engine, source, origin)?;
    let meta_err = |key: Option<String>, message: String| PolicyError::Metadata {
        origin: origin.to_string(),
        key,
        message,
    };
    let value: Dynamic = engine
        .call_fn_with_options(
            CallFnOptions::new().eval_ast(false),
            &mut Scope::new(),
            &ast,
            "policy",
            (),
        )
        .map_err(|e| meta_err(None, format!("fn policy() failed: {e}")))?;
    // Through JSON, so a problem names the key it is about (`award.amount_cents`).
    let json: serde_json::Value = rhai::serde::from_dynamic(&value)
        .map_err(|e| meta_err(None, format!("fn policy() returned bad metadata: {e}")))?;
    let meta: PolicyMeta = serde_path_to_error::deserialize(json).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner().to_string();
        // A missing key is not on the path: serde names it, in backquotes.
        let named = inner.split('`').nth(1).map(str::to_string);
        let key = match (path.as_str(), named) {
            (".", named) => named,
            (p, Some(k)) if inner.starts_with("missing field") => Some(format!("{p}.{k}")),
            (p, _) => Some(p.to_string()),
        };
        meta_err(
            key,
            format!("fn policy() returned bad metadata: {path}: {inner}"),
        )
    })?;
    meta.validate()
        .map_err(|(key, message)| meta_err(Some(key), message))?;
    Ok(PolicyVersion::new(
        meta,
        Arc::from(source),
        source_hash(source),
        origin.to_string(),
    ))
}

/// Why two versions of one policy cannot both be published.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Conflict {
    /// The same version, with the same source, from two places.
    Duplicate(String),
    /// The same version number with another source: a published version never changes.
    Changed(String),
    /// Effective periods that overlap: two versions would be in effect on one day.
    Overlap(String),
}

impl std::fmt::Display for Conflict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Duplicate(m) | Self::Changed(m) | Self::Overlap(m) => f.write_str(m),
        }
    }
}

/// Whether `a` and `b` (versions of the same policy) conflict. The one rule `rules/` loading and
/// publishing both apply.
pub fn conflict(a: &PolicyVersion, b: &PolicyVersion) -> Option<Conflict> {
    let id = &a.meta.id;
    if a.meta.version == b.meta.version {
        return Some(if a.hash == b.hash {
            Conflict::Duplicate(format!(
                "{id} version {} is defined twice ({} and {})",
                a.meta.version, a.origin, b.origin
            ))
        } else {
            Conflict::Changed(format!(
                "{id} version {} has two different sources ({} and {}); \
                 a published version never changes: give the new source a new version number",
                a.meta.version, a.origin, b.origin
            ))
        });
    }
    // An open-ended version ends where the next one begins (a new version supersedes it);
    // a version that gives its end must end by the time the next one starts, and a version
    // that starts later must have a higher number.
    let (first, second) = if a.meta.effective_from <= b.meta.effective_from {
        (a, b)
    } else {
        (b, a)
    };
    // Only a version with no end of its own is superseded, and only by one that has no end
    // either (a bounded one inside its run would leave a gap after it).
    let overlapping = first.meta.effective_from == second.meta.effective_from
        || match first.meta.effective_to {
            Some(to) => to > second.meta.effective_from,
            None => second.meta.effective_to.is_some(),
        };
    if overlapping {
        return Some(Conflict::Overlap(format!(
            "{id} versions {} ({}) and {} ({}) have overlapping effective periods",
            a.meta.version, a.origin, b.meta.version, b.origin
        )));
    }
    // Superseding needs a higher number (so the later rule is the newer one).
    (first.meta.effective_to.is_none() && second.meta.version < first.meta.version).then(|| {
        Conflict::Overlap(format!(
            "{id} version {} ({}) starts after version {} ({}) but has a lower number: a later \
             version needs a higher number",
            second.meta.version, second.origin, first.meta.version, first.origin
        ))
    })
}

/// The script with its comments blanked (a comment may mention `meets("...")` without calling
/// it). Strings are kept as they are.
fn without_comments(source: &str) -> String {
    let mut out = String::with_capacity(source.len());
    let mut chars = source.chars().peekable();
    let mut in_string = false;
    while let Some(c) = chars.next() {
        if in_string {
            out.push(c);
            if c == '\\' {
                if let Some(n) = chars.next() {
                    out.push(n);
                }
            } else if c == '"' {
                in_string = false;
            }
            continue;
        }
        match (c, chars.peek()) {
            ('"', _) => {
                in_string = true;
                out.push(c);
            }
            ('/', Some('/')) => {
                for n in chars.by_ref() {
                    if n == '\n' {
                        out.push('\n');
                        break;
                    }
                }
            }
            ('/', Some('*')) => {
                chars.next();
                let mut last = ' ';
                for n in chars.by_ref() {
                    if last == '*' && n == '/' {
                        break;
                    }
                    last = n;
                }
                out.push(' ');
            }
            _ => out.push(c),
        }
    }
    out
}

/// Links every version to the versions of the requirements it refers to, requirements first.
/// Refuses a reference to an unknown policy or to an incentive, and a chain that comes back to
/// where it started.
fn link(
    by_id: BTreeMap<String, Vec<PolicyVersion>>,
) -> Result<Vec<Arc<PolicyVersion>>, PolicyError> {
    let mut needs: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (id, list) in &by_id {
        let mut ids: Vec<String> = Vec::new();
        for v in list {
            for r in v.requires().iter().cloned() {
                let Some(target) = by_id.get(&r) else {
                    return Err(PolicyError::Conflict(format!(
                        "{}: {id} version {} refers to meets({r:?}), but no policy {r} is published",
                        v.origin, v.meta.version
                    )));
                };
                if target
                    .iter()
                    .any(|t| t.meta.kind != PolicyKind::Requirement)
                {
                    return Err(PolicyError::Conflict(format!(
                        "{}: {id} refers to meets({r:?}), but {r} is not a requirement policy",
                        v.origin
                    )));
                }
                if !ids.contains(&r) {
                    ids.push(r);
                }
            }
        }
        needs.insert(id.clone(), ids);
    }
    // Depth-first, requirements before what refers to them; a policy met again on the path is
    // a circle.
    fn visit(
        id: &str,
        needs: &BTreeMap<String, Vec<String>>,
        path: &mut Vec<String>,
        order: &mut Vec<String>,
    ) -> Result<(), PolicyError> {
        if order.iter().any(|o| o == id) {
            return Ok(());
        }
        if let Some(at) = path.iter().position(|p| p == id) {
            let mut circle: Vec<String> = path[at..].to_vec();
            circle.push(id.to_string());
            return Err(PolicyError::Conflict(format!(
                "policies refer to each other in a circle: {}",
                circle.join(" -> ")
            )));
        }
        path.push(id.to_string());
        for r in needs.get(id).map(Vec::as_slice).unwrap_or_default() {
            visit(r, needs, path, order)?;
        }
        path.pop();
        order.push(id.to_string());
        Ok(())
    }
    let mut order = Vec::new();
    for id in needs.keys() {
        visit(id, &needs, &mut Vec::new(), &mut order)?;
    }
    let mut linked: BTreeMap<String, Vec<Arc<PolicyVersion>>> = BTreeMap::new();
    let mut by_id = by_id;
    for id in order {
        let list = by_id.remove(&id).unwrap_or_default();
        let versions = list
            .into_iter()
            .map(|mut v| {
                v.links = v
                    .requires()
                    .iter()
                    .flat_map(|r| linked.get(r).cloned().unwrap_or_default())
                    .collect();
                Arc::new(v)
            })
            .collect();
        linked.insert(id, versions);
    }
    Ok(linked.into_values().flatten().collect())
}

/// Every known policy version, and the test cases that came with them.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    /// Sorted by id, then effective_from.
    versions: Vec<Arc<PolicyVersion>>,
    suites: Vec<TestSuite>,
}

impl Registry {
    /// Loads every `*.rhai` (policies) and `*.tests.json` (test cases) in `dir`.
    pub fn load_dir(dir: impl AsRef<Path>) -> Result<Self, PolicyError> {
        let dir = dir.as_ref();
        let io = |path: &Path, e: std::io::Error| PolicyError::Io {
            path: path.display().to_string(),
            message: e.to_string(),
        };
        let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(|e| io(dir, e))?
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|p| p.is_file())
            .collect();
        paths.sort();
        let engine = build_engine(&Limits::default());
        let mut versions = Vec::new();
        let mut suites = Vec::new();
        for path in paths {
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default();
            if name.ends_with(".rhai") {
                let source = std::fs::read_to_string(&path).map_err(|e| io(&path, e))?;
                versions.push(load_version(&engine, &source, &path.display().to_string())?);
            } else if name.ends_with(".tests.json") {
                let text = std::fs::read_to_string(&path).map_err(|e| io(&path, e))?;
                suites.push(TestSuite::parse(&text, &path.display().to_string())?);
            }
        }
        Self::new(versions, suites)
    }

    /// Builds a registry, refusing two sources for one (id, version) and overlapping periods.
    pub fn new(versions: Vec<PolicyVersion>, suites: Vec<TestSuite>) -> Result<Self, PolicyError> {
        let mut by_id: BTreeMap<String, Vec<PolicyVersion>> = BTreeMap::new();
        for v in versions {
            by_id.entry(v.meta.id.clone()).or_default().push(v);
        }
        for list in by_id.values_mut() {
            list.sort_by_key(|v| (v.meta.effective_from, v.meta.version));
            for (i, a) in list.iter().enumerate() {
                for b in &list[i + 1..] {
                    if let Some(conflict) = conflict(a, b) {
                        return Err(PolicyError::Conflict(conflict.to_string()));
                    }
                }
            }
            // An open-ended version is in effect until the next one begins.
            for i in 1..list.len() {
                let next = list[i].meta.effective_from;
                let before = &mut list[i - 1].meta;
                if before.effective_to.is_none() {
                    before.effective_to = Some(next);
                }
            }
        }
        let all = link(by_id)?;
        Ok(Self {
            versions: all,
            suites,
        })
    }

    /// Every version, sorted by id then effective date.
    pub fn versions(&self) -> &[Arc<PolicyVersion>] {
        &self.versions
    }

    /// The test suites loaded with the policies.
    pub fn suites(&self) -> &[TestSuite] {
        &self.suites
    }

    /// Policy ids, sorted, each once.
    pub fn ids(&self) -> Vec<&str> {
        let mut ids: Vec<&str> = self.versions.iter().map(|v| v.meta.id.as_str()).collect();
        ids.dedup();
        ids
    }

    pub fn versions_of<'a>(
        &'a self,
        id: &'a str,
    ) -> impl Iterator<Item = &'a Arc<PolicyVersion>> + 'a {
        self.versions.iter().filter(move |v| v.meta.id == id)
    }

    pub fn contains(&self, id: &str) -> bool {
        self.versions.iter().any(|v| v.meta.id == id)
    }

    /// The version of `id` in effect on `as_of`, if any.
    pub fn in_effect(&self, id: &str, as_of: NaiveDate) -> Option<&Arc<PolicyVersion>> {
        self.versions
            .iter()
            .find(|v| v.meta.id == id && v.meta.in_effect(as_of))
    }

    /// One version per policy id in effect on `as_of`.
    pub fn all_in_effect(&self, as_of: NaiveDate) -> impl Iterator<Item = &Arc<PolicyVersion>> {
        self.versions
            .iter()
            .filter(move |v| v.meta.in_effect(as_of))
    }

    /// A version by id and number.
    pub fn version(&self, id: &str, version: u32) -> Option<&Arc<PolicyVersion>> {
        self.versions
            .iter()
            .find(|v| v.meta.id == id && v.meta.version == version)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn script(
        id: &str,
        version: u32,
        from: &str,
        to: Option<&str>,
        body: &str,
    ) -> String {
        let to = to
            .map(|t| format!("effective_to: \"{t}\","))
            .unwrap_or_default();
        format!(
            r#"fn policy() {{ #{{ id: "{id}", version: {version}, title: "T", sponsor: "S",
                award: #{{ kind: "scholarship", amount_cents: 100 }},
                effective_from: "{from}", {to} }} }}
               fn evaluate(s, ctx) {{ {body} }}"#
        )
    }

    fn load(src: &str) -> Result<PolicyVersion, PolicyError> {
        load_version(&build_engine(&Limits::default()), src, "test")
    }

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn reads_metadata_and_hashes_source() {
        let src = script("p", 1, "2024-01-01", None, "checks()");
        let v = load(&src).unwrap();
        assert_eq!(v.meta.id, "p");
        assert_eq!(v.meta.version, 1);
        assert!(v.meta.once_per_student);
        assert_eq!(v.hash, source_hash(&src));
        assert_eq!(v.hash.len(), 64);
        assert_ne!(v.hash, source_hash(&format!("{src} ")));
    }

    #[test]
    fn reports_compile_errors_with_line_and_column() {
        let err =
            load("fn policy() { #{ id: \"x\" }\n fn evaluate(s, ctx) { let = ; }").unwrap_err();
        match err {
            PolicyError::Compile { line, column, .. } => {
                assert!(line.is_some());
                assert!(column.is_some());
            }
            other => panic!("expected a compile error, got {other}"),
        }
    }

    #[test]
    fn refuses_missing_functions_and_bad_metadata() {
        assert!(matches!(
            load("fn evaluate(s, ctx) { 1 }"),
            Err(PolicyError::Metadata { .. })
        ));
        assert!(matches!(
            load("fn policy() { #{} }"),
            Err(PolicyError::Metadata { .. })
        ));
        let bad_id = script("Bad Id", 1, "2024-01-01", None, "1");
        assert!(load(&bad_id).unwrap_err().to_string().contains("id"));
        let backwards = script("p", 1, "2024-01-01", Some("2023-01-01"), "1");
        assert!(load(&backwards)
            .unwrap_err()
            .to_string()
            .contains("effective_to"));
        let zero = script("p", 0, "2024-01-01", None, "1");
        assert!(load(&zero).unwrap_err().to_string().contains("version"));
        let unknown_key = "fn policy() { #{ id: \"p\", version: 1, title: \"T\", sponsor: \"S\", \
            award: #{ kind: \"scholarship\", amount_cents: 1 }, effective_from: \"2024-01-01\", colour: 1 } }
            fn evaluate(s, ctx) { 1 }";
        assert!(load(unknown_key)
            .unwrap_err()
            .to_string()
            .contains("colour"));
        let bad_date = script("p", 1, "2024-13-01", None, "1");
        assert!(load(&bad_date).is_err());
        let neg = script("p", 1, "2024-01-01", None, "1")
            .replace("amount_cents: 100", "amount_cents: -5");
        assert!(load(&neg).unwrap_err().to_string().contains("amount_cents"));
    }

    #[test]
    fn bad_metadata_names_its_key() {
        let key = |src: &str| match load(src) {
            Err(PolicyError::Metadata { key, .. }) => key,
            other => panic!("expected a metadata error, got {other:?}"),
        };
        let base = script("p", 1, "2024-01-01", None, "1");
        assert_eq!(
            key(&base.replace("amount_cents: 100", "amount_cents: -5")).as_deref(),
            Some("award.amount_cents")
        );
        assert_eq!(
            // Inside the tagged `award`, serde knows only the enclosing key.
            key(&base.replace("amount_cents: 100", "amount_cents: \"lots\"")).as_deref(),
            Some("award")
        );
        assert_eq!(
            key(&base.replace("\"2024-01-01\"", "\"2024-13-01\"")).as_deref(),
            Some("effective_from")
        );
        assert_eq!(
            key(&base.replace("title: \"T\",", "")).as_deref(),
            Some("title")
        );
        assert_eq!(
            key(&base.replace("title: \"T\",", "title: \"T\", colour: 1,")).as_deref(),
            Some("colour")
        );
        assert_eq!(
            key(&script("Bad Id", 1, "2024-01-01", None, "1")).as_deref(),
            Some("id")
        );
        // Stored as a 32-bit integer on both databases.
        assert_eq!(
            key(&script("p", 3_000_000_000, "2024-01-01", None, "1")).as_deref(),
            Some("version")
        );
    }

    #[test]
    fn criteria_words_are_read_and_validated() {
        let with = |criteria: &str| {
            script("p", 1, "2024-01-01", None, "1").replace(
                "effective_from: \"2024-01-01\",",
                &format!("effective_from: \"2024-01-01\", criteria: #{{ {criteria} }},"),
            )
        };
        let v = load(&with(
            r#"grad: #{ label: "Graduation", missing: "Graduate" }"#,
        ))
        .unwrap();
        assert_eq!(v.meta.criteria["grad"].label, "Graduation");
        assert_eq!(v.meta.criteria["grad"].missing, "Graduate");
        for (bad, needle) in [
            (r#"Grad: #{ label: "L", missing: "M" }"#, "code"),
            (
                r#"grad: #{ label: " ", missing: "M" }"#,
                "must not be empty",
            ),
            (r#"grad: #{ label: "L" }"#, "missing"),
            (
                r#"grad: #{ label: "L", missing: "M", colour: 1 }"#,
                "colour",
            ),
        ] {
            let err = load(&with(bad)).unwrap_err().to_string();
            assert!(err.contains(needle), "{bad}: {err}");
        }
    }

    #[test]
    fn picks_the_version_in_effect() {
        let v1 = load(&script("p", 1, "2022-07-01", Some("2023-07-01"), "1")).unwrap();
        let v2 = load(&script("p", 2, "2023-07-01", None, "2")).unwrap();
        let r = Registry::new(vec![v2, v1], vec![]).unwrap();
        assert!(r.in_effect("p", d("2022-06-30")).is_none());
        assert_eq!(r.in_effect("p", d("2022-07-01")).unwrap().meta.version, 1);
        assert_eq!(r.in_effect("p", d("2023-06-30")).unwrap().meta.version, 1);
        assert_eq!(r.in_effect("p", d("2023-07-01")).unwrap().meta.version, 2);
        assert_eq!(r.in_effect("p", d("2099-01-01")).unwrap().meta.version, 2);
        assert!(r.in_effect("q", d("2024-01-01")).is_none());
        assert_eq!(r.ids(), vec!["p"]);
        assert_eq!(r.all_in_effect(d("2024-01-01")).count(), 1);
    }

    #[test]
    fn refuses_same_version_with_different_source() {
        let a = load(&script("p", 1, "2022-07-01", Some("2023-07-01"), "1")).unwrap();
        let b = load(&script("p", 1, "2022-07-01", Some("2023-07-01"), "2")).unwrap();
        let err = Registry::new(vec![a, b], vec![]).unwrap_err().to_string();
        assert!(err.contains("new version number"), "{err}");
    }

    #[test]
    fn refuses_overlapping_periods() {
        let a = load(&script("p", 1, "2022-07-01", Some("2023-07-02"), "1")).unwrap();
        let b = load(&script("p", 2, "2023-07-01", None, "2")).unwrap();
        let err = Registry::new(vec![a, b], vec![]).unwrap_err().to_string();
        assert!(err.contains("overlapping"), "{err}");
        // Two versions starting on the same day overlap; a later start needs a higher number.
        let same_a = load(&script("p", 1, "2022-07-01", None, "1")).unwrap();
        let same_b = load(&script("p", 2, "2022-07-01", None, "2")).unwrap();
        assert!(Registry::new(vec![same_a, same_b], vec![]).is_err());
        let low = load(&script("p", 1, "2030-07-01", None, "1")).unwrap();
        let high = load(&script("p", 2, "2022-07-01", None, "2")).unwrap();
        let err = Registry::new(vec![low, high], vec![])
            .unwrap_err()
            .to_string();
        assert!(err.contains("higher number"), "{err}");
    }

    #[test]
    fn a_new_version_supersedes_an_open_ended_one_from_its_start() {
        let open_a = load(&script("p", 1, "2022-07-01", None, "1")).unwrap();
        let open_b = load(&script("p", 2, "2030-07-01", None, "2")).unwrap();
        let r = Registry::new(vec![open_b, open_a], vec![]).unwrap();
        assert_eq!(r.in_effect("p", d("2030-06-30")).unwrap().meta.version, 1);
        assert_eq!(r.in_effect("p", d("2030-07-01")).unwrap().meta.version, 2);
        assert_eq!(
            r.version("p", 1).unwrap().meta.effective_to,
            Some(d("2030-07-01"))
        );
        assert_eq!(r.version("p", 2).unwrap().meta.effective_to, None);
        // A bounded version inside an open-ended one's run would leave a gap after it.
        let open = load(&script("p", 1, "2022-07-01", None, "1")).unwrap();
        let inside = load(&script("p", 2, "2024-01-01", Some("2025-01-01"), "2")).unwrap();
        let err = Registry::new(vec![open, inside], vec![])
            .unwrap_err()
            .to_string();
        assert!(err.contains("overlapping"), "{err}");
        // Bounded versions need no number order (as before supersession).
        let later_low = load(&script("p", 1, "2024-07-01", Some("2025-07-01"), "1")).unwrap();
        let earlier_high = load(&script("p", 2, "2023-07-01", Some("2024-07-01"), "2")).unwrap();
        assert!(Registry::new(vec![later_low, earlier_high], vec![]).is_ok());
    }

    #[test]
    fn references_must_be_known_requirements_without_a_circle() {
        let requirement = |id: &str, body: &str| {
            load(&script(id, 1, "2024-01-01", None, body).replace(
                "award: #{ kind: \"scholarship\", amount_cents: 100 },",
                "kind: \"requirement\",",
            ))
            .unwrap()
        };
        let a = requirement("a", "require(\"x\", s.meets(\"b\"), \"X\", \"x\");");
        let b = requirement("b", "require(\"y\", s.meets(\"a\"), \"Y\", \"y\");");
        let err = Registry::new(vec![a.clone(), b], vec![])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("circle") && err.contains("a -> b -> a"),
            "{err}"
        );
        let err = Registry::new(vec![a.clone()], vec![])
            .unwrap_err()
            .to_string();
        assert!(err.contains("no policy b"), "{err}");
        let incentive = load(&script("b", 1, "2024-01-01", None, "1")).unwrap();
        let err = Registry::new(vec![a.clone(), incentive], vec![])
            .unwrap_err()
            .to_string();
        assert!(err.contains("not a requirement"), "{err}");
        // Linked: a's versions carry b's.
        let b = requirement("b", "require(\"y\", true, \"Y\", \"y\");");
        let r = Registry::new(vec![a, b], vec![]).unwrap();
        assert_eq!(r.version("a", 1).unwrap().links[0].meta.id, "b");
        // A comment that mentions meets(...) is not a reference.
        let c = requirement(
            "c",
            "// s.meets(\"zzz\")\n require(\"z\", true, \"Z\", \"z\");",
        );
        assert!(c.requires().is_empty());
    }

    #[test]
    fn loads_the_seed_rules() {
        let r = Registry::load_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/rules")).unwrap();
        assert_eq!(
            r.ids(),
            vec![
                "ccpe-health-requirements",
                "ccpe-mett-requirements",
                "ima-mett-scholarship",
                "ivcc-ccpe-waiver",
                "jjc-ccpe-waiver"
            ]
        );
        assert_eq!(r.versions_of("ima-mett-scholarship").count(), 3);
        assert!(!r.suites().is_empty());
    }
}
