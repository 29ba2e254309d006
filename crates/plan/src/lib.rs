//! Resolving a validated manifest and its bundle into a [`Deployment`]. Pure.
//!
//! The CLI runs this offline before uploading and the server runs it again on the upload,
//! so a builder learns about a missing entry file before anything leaves their machine.

pub mod config;
pub mod hints;
pub mod namespaces;
pub mod pack;

pub use namespaces::{Approvers, NamespaceSettings, Namespaces, Tier};
pub use pack::{BUNDLE_LIMITS, pack_files};

use bundle::{Bundle, file_digest};
use deployment::{
    Admission, AppAccess, AppKey, BundleFile, Deployment, FunctionLimits, FunctionRoute, SecretsSource, StaticSite,
    Visibility,
};
use manifest::{Runtime, SecretsRef, ValidatedManifest};

/// Limits an app gets when its manifest leaves them out. Chosen by the operator; no `Default`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PlatformDefaults {
    pub cpu_ms_per_request: u64,
    pub memory_mib: u64,
    pub stack_kib: u64,
    pub wall_timeout_ms: u64,
    pub max_response_bytes: u64,
    pub max_outbound_requests: u32,
    /// Body bytes one request may send and receive over all its `fetch` calls.
    pub max_outbound_bytes: u64,
    /// Who may use an app whose manifest sets no `spec.access.visibility`.
    pub default_visibility: Visibility,
    /// Admission when `spec.quotas` leaves it out.
    pub requests_per_second: u32,
    pub burst: u32,
    pub concurrency: u32,
}

/// Builds the deployment record, or every reason the bundle cannot be deployed.
pub fn plan(
    validated: &ValidatedManifest,
    bundle: &Bundle,
    revision: i64,
    defaults: &PlatformDefaults,
) -> Result<Deployment, Vec<String>> {
    let manifest = validated.manifest();
    let spec = &manifest.spec;
    let mut problems = Vec::new();

    match spec.runtime {
        Runtime::Static | Runtime::StaticEdge | Runtime::Function => {}
        Runtime::Wasm | Runtime::Container => problems.push(format!(
            "spec.runtime: {} apps are not supported by this Terrarium server yet; use static, static+edge or function",
            spec.runtime
        )),
    }

    problems.extend(missing_files(validated, bundle));
    // Confidential and restricted data is encrypted at rest: KV values one by one, SQL as the
    // app's own database file, which the namespace's shared files cannot be.
    let data_class = manifest.metadata.data_class();
    let sealed = matches!(data_class, Some(manifest::DataClass::Confidential | manifest::DataClass::Restricted));
    if let Some(sql) = spec.data.as_ref().and_then(|data| data.sql.as_ref())
        && sealed
        && sql.isolation() != manifest::SqlIsolation::Isolated
    {
        let class = if data_class == Some(manifest::DataClass::Restricted) { "restricted" } else { "confidential" };
        let tier = match sql.isolation() {
            manifest::SqlIsolation::Shared => "shared",
            _ => "schema",
        };
        problems.push(format!(
            "metadata.labels.dataClass is {class}, whose SQL data is encrypted at rest in a database file of the app's own: \
             that needs spec.data.sql.isolation: isolated (it is {tier}); move data already there with \
             `terrarium data migrate {}/{} --isolation isolated`",
            manifest.metadata.namespace, manifest.metadata.name
        ));
    }
    let secrets = spec.secrets_ref.as_ref().map(|secrets_ref| secrets_source(secrets_ref, manifest));
    let secrets = match secrets {
        None => None,
        Some(Ok(source)) => Some(source),
        Some(Err(problem)) => {
            problems.push(problem);
            None
        }
    };
    let static_site = spec.static_site.as_ref().map(|site| StaticSite {
        dir: bundle::normalize_path(&site.dir).unwrap_or_else(|_| site.dir.clone()),
        spa: site.spa.unwrap_or(false),
    });
    let functions: Vec<FunctionRoute> = spec
        .functions
        .iter()
        .flatten()
        .map(|function| FunctionRoute {
            route: function.route.clone(),
            entry: bundle::normalize_path(&function.entry).unwrap_or_else(|_| function.entry.clone()),
        })
        .collect();

    if !problems.is_empty() {
        return Err(problems);
    }

    let files = bundle
        .files()
        .iter()
        .map(|(path, contents)| {
            (path.clone(), BundleFile { digest: file_digest(contents), size: contents.len() as u64 })
        })
        .collect();
    let quotas = spec.quotas.as_ref();
    let cpu_ms = quotas.and_then(|q| q.cpu_ms_per_request).map_or(defaults.cpu_ms_per_request, u64::from);
    let memory_mib = quotas.and_then(|q| q.memory_mib).map_or(defaults.memory_mib, u64::from);
    Ok(Deployment {
        app: AppKey::new(&manifest.metadata.namespace, &manifest.metadata.name),
        revision,
        bundle_digest: bundle.digest(),
        static_site,
        files,
        functions,
        vars: spec.vars.clone().unwrap_or_default(),
        allowed_egress: spec.allowed_egress.clone().unwrap_or_default(),
        secrets,
        ttl_days: spec.ttl_days,
        monthly_budget: quotas
            .and_then(|q| q.monthly_budget.as_ref())
            .map(|budget| deployment::Budget { amount: budget.amount, currency: budget.currency.clone() }),
        monthly_requests: quotas.and_then(|q| q.monthly_requests),
        slo: spec
            .slo
            .as_ref()
            .map(|slo| deployment::SloTarget { availability: slo.availability, latency_p95_ms: slo.latency_p95_ms }),
        kv_binding: spec
            .data
            .as_ref()
            .and_then(|data| data.kv.as_ref())
            .and_then(manifest::KvSpec::binding)
            .map(str::to_owned),
        kv_max_mib: quotas.and_then(|q| q.kv_storage_mib),
        ai_models: spec.ai.as_ref().and_then(|ai| ai.models.clone()).unwrap_or_default(),
        vectors: spec.data.as_ref().and_then(|data| data.vectors.as_ref()).map(|vectors| deployment::VectorIndex {
            binding: vectors.binding().to_owned(),
            dimensions: vectors.dimensions(),
            pii_redaction: vectors.pii_redaction.unwrap_or(true),
            ttl_days: vectors.ttl_days,
        }),
        seal_data: sealed,
        data_class: validated.manifest().metadata.labels.as_ref().and_then(|labels| labels.get("dataClass")).cloned(),
        sql: spec.data.as_ref().and_then(|data| data.sql.as_ref()).map(|sql| deployment::SqlDatabase {
            binding: sql.binding().to_owned(),
            isolation: match sql.isolation() {
                manifest::SqlIsolation::Shared => deployment::SqlTier::Shared,
                manifest::SqlIsolation::Schema => deployment::SqlTier::Schema,
                manifest::SqlIsolation::Isolated => deployment::SqlTier::Isolated,
            },
            max_mib: quotas.and_then(|q| q.sql_storage_mib),
            restricted: validated.manifest().metadata.data_class() == Some(manifest::DataClass::Restricted),
            encrypted: sealed,
        }),
        // Never zero: the manifest requires at least 1, and a zero default would refuse everything.
        admission: Admission {
            requests_per_second: quotas
                .and_then(|q| q.requests_per_second)
                .unwrap_or(defaults.requests_per_second)
                .max(1),
            burst: quotas.and_then(|q| q.burst).unwrap_or(defaults.burst).max(1),
            concurrency: quotas.and_then(|q| q.concurrency).unwrap_or(defaults.concurrency).max(1),
        },
        access: AppAccess {
            owner: spec.owner.to_string(),
            visibility: spec
                .access
                .as_ref()
                .and_then(|access| access.visibility)
                .map_or(defaults.default_visibility, visibility),
            groups: spec.access.as_ref().and_then(|access| access.groups.clone()).unwrap_or_default(),
        },
        limits: FunctionLimits {
            cpu_ms_per_request: cpu_ms,
            memory_bytes: memory_mib * 1024 * 1024,
            stack_bytes: defaults.stack_kib * 1024,
            wall_timeout_ms: defaults.wall_timeout_ms,
            max_response_bytes: defaults.max_response_bytes,
            max_outbound_requests: defaults.max_outbound_requests,
            max_outbound_bytes: defaults.max_outbound_bytes,
        },
    })
}

/// An app reads only its own secrets: `terrarium://` names exactly this app, and a Vault path
/// lies under the app's namespace, so one tenant cannot name another's secrets.
fn secrets_source(secrets_ref: &SecretsRef, manifest: &manifest::MicroApp) -> Result<SecretsSource, String> {
    let namespace = &manifest.metadata.namespace;
    let name = &manifest.metadata.name;
    match secrets_ref {
        SecretsRef::Terrarium { namespace: ref_namespace, app } if ref_namespace == namespace && app == name => {
            Ok(SecretsSource::Terrarium { namespace: namespace.clone(), app: name.clone() })
        }
        SecretsRef::Terrarium { .. } => Err(format!(
            "spec.secretsRef: {secrets_ref} names another app's secrets; an app reads only its own, so write terrarium://{namespace}/{name}"
        )),
        SecretsRef::Vault { mount, path } if path.starts_with(&format!("{namespace}/")) => {
            Ok(SecretsSource::Vault { mount: mount.clone(), path: path.clone() })
        }
        SecretsRef::Vault { mount, path } => Err(format!(
            "spec.secretsRef: {secrets_ref} is outside the namespace's part of Vault; Vault paths start with the namespace, as in vault://{mount}/{namespace}/{}",
            path.rsplit('/').next().unwrap_or(name)
        )),
    }
}

fn visibility(visibility: manifest::Visibility) -> Visibility {
    match visibility {
        manifest::Visibility::Private => Visibility::Private,
        manifest::Visibility::Team => Visibility::Team,
        manifest::Visibility::Org => Visibility::Org,
        manifest::Visibility::Public => Visibility::Public,
    }
}

/// The files the manifest names that are not in the bundle, as sentences a builder can act on:
/// every `spec.functions[].entry`, and a non-empty `spec.static.dir`.
pub fn missing_files(validated: &ValidatedManifest, bundle: &Bundle) -> Vec<String> {
    let spec = &validated.manifest().spec;
    let mut problems = Vec::new();
    for (index, function) in spec.functions.iter().flatten().enumerate() {
        let field = format!("spec.functions[{index}].entry");
        match bundle::normalize_path(&function.entry) {
            Ok(path) if bundle.get(&path).is_some() => {}
            Ok(path) => problems.push(format!("{path} ({field}) is not in the app folder; create it or fix the path")),
            Err(error) => problems.push(format!("{field}: {error}")),
        }
    }
    if let Some(site) = &spec.static_site {
        match bundle::normalize_path(&site.dir) {
            Ok(dir) => {
                let prefix = format!("{dir}/");
                if !bundle.files().keys().any(|path| path.starts_with(&prefix)) {
                    problems.push(format!(
                        "{dir}/ (spec.static.dir) is not in the app folder or has no files; create it with at least an index.html"
                    ));
                }
            }
            Err(error) => problems.push(format!("spec.static.dir: {error}")),
        }
    }
    problems
}

/// Likely secrets in the bundle's files, as the scanner reports them (masked).
pub fn secret_findings(scanner: &scan::Scanner, bundle: &Bundle) -> Vec<scan::Finding> {
    bundle.files().iter().flat_map(|(path, contents)| scanner.scan(path, contents)).collect()
}

/// What to do about secrets found in an app's files.
pub fn secrets_hint(namespace: &str, app: &str) -> String {
    format!(
        "keep secrets out of the code: `printf %s \"$VALUE\" | terrarium secrets set {namespace}/{app} NAME`, set `spec.secretsRef: terrarium://{namespace}/{app}` and read `env.NAME` in the function; if a line is not a secret, add the comment `terrarium:allow-secret` to it"
    )
}
