//! Turns the YAML node tree into a [`MicroApp`], checking every field and reporting every problem.
//!
//! Each function decodes one part of the manifest and returns `None` when the part is absent or
//! has a problem; the problem is already in the report by then, with the file position and the
//! field path, and decoding goes on with the next field. Rules that span several fields (which
//! sections a runtime needs, duplicated routes) look at what the file contains rather than at what
//! decoded cleanly, so one mistake is never reported twice.

use std::borrow::Cow;
use std::collections::BTreeMap;

use deployment::RoutePattern;
use saphyr::{MarkedYaml, Scalar, YamlData};

use crate::diagnostic::{Position, Report};
use crate::model::{
    Access, Ai, Choice, Container, Data, DataClass, Function, KvBinding, KvSpec, Metadata, MicroApp, MonthlyBudget,
    Owner, Quotas, Runtime, SecretsRef, Slo, Spec, Sql, StaticSite, Vectors, Wasm,
};
use crate::rules::{self, Problem};

type Node<'i> = MarkedYaml<'i>;

pub(crate) fn decode(root: &Node<'_>, report: &mut Report) -> Option<MicroApp> {
    Decoder { report }.micro_app(root)
}

/// The path of field `key` inside `parent`: `spec.quotas`, or `metadata.labels["example.com/team"]`
/// when the key is not a plain word.
pub(crate) fn child_path(parent: &str, key: &str) -> String {
    let plain = !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    match (parent.is_empty(), plain) {
        (true, true) => key.to_owned(),
        (false, true) => format!("{parent}.{key}"),
        (_, false) => format!("{parent}[{key:?}]"),
    }
}

fn item_path(parent: &str, index: usize) -> String {
    format!("{parent}[{index}]")
}

/// Fields written by the control plane that `kubectl get -o yaml` includes: ignored, with a warning.
const CONTROL_PLANE_METADATA: [&str; 6] =
    ["uid", "resourceVersion", "generation", "creationTimestamp", "managedFields", "selfLink"];

pub(crate) const SPEC_FIELDS: [&str; 17] = [
    "owner",
    "description",
    "runtime",
    "templateRef",
    "static",
    "functions",
    "wasm",
    "container",
    "vars",
    "access",
    "secretsRef",
    "ttlDays",
    "allowedEgress",
    "quotas",
    "data",
    "ai",
    "slo",
];

const QUOTA_FIELDS: [&str; 9] = [
    "requestsPerSecond",
    "burst",
    "concurrency",
    "monthlyRequests",
    "cpuMsPerRequest",
    "memoryMiB",
    "monthlyBudget",
    "kvStorageMiB",
    "sqlStorageMiB",
];

/// The largest whole number most quotas may hold.
const U32_MAX: i64 = u32::MAX as i64;

struct Decoder<'r> {
    report: &'r mut Report,
}

/// The known fields of one group of fields (a YAML mapping), after unknown ones were reported.
struct Fields<'n, 'i> {
    path: String,
    at: Position,
    /// Field name, key and value, in file order.
    entries: Vec<(&'n str, &'n Node<'i>, &'n Node<'i>)>,
}

impl<'n, 'i> Fields<'n, 'i> {
    /// The value of field `name`, unless it is absent or empty (`name:` with nothing after it).
    fn get(&self, name: &str) -> Option<&'n Node<'i>> {
        self.get_even_if_empty(name).filter(|value| !is_null(value))
    }

    fn get_even_if_empty(&self, name: &str) -> Option<&'n Node<'i>> {
        self.entries.iter().find(|(key, _, _)| *key == name).map(|(_, _, value)| *value)
    }

    /// The key of field `name`, where messages about the field as a whole point.
    fn key(&self, name: &str) -> Option<&'n Node<'i>> {
        self.entries.iter().find(|(key, _, _)| *key == name).map(|(_, key, _)| *key)
    }
}

impl Decoder<'_> {
    // ----- The manifest, top-down. -----

    fn micro_app(&mut self, node: &Node<'_>) -> Option<MicroApp> {
        let fields = self.fields(node, "", &["apiVersion", "kind", "metadata", "spec"], &["status"])?;
        let api_version = self.required(&fields, "apiVersion", "apiVersion: terrarium.dev/v1", Self::choice);
        let kind = self.required(&fields, "kind", "kind: MicroApp", Self::choice);
        let metadata = self.required(&fields, "metadata", "metadata: with name and namespace below it", Self::metadata);
        let spec = self.required(&fields, "spec", "spec: with owner and runtime below it", Self::spec);
        Some(MicroApp { api_version: api_version?, kind: kind?, metadata: metadata?, spec: spec? })
    }

    fn metadata(&mut self, node: &Node<'_>, path: &str) -> Option<Metadata> {
        let fields =
            self.fields(node, path, &["name", "namespace", "labels", "annotations"], &CONTROL_PLANE_METADATA)?;
        let name = self.required(&fields, "name", "name: where2eat", |d, node, path| {
            d.checked_text(node, path, |name| rules::dns_label(name, "name"))
        });
        let namespace = self.required(&fields, "namespace", "namespace: growth", |d, node, path| {
            d.checked_text(node, path, |namespace| rules::dns_label(namespace, "namespace"))
        });
        let labels = self.optional(&fields, "labels", Self::labels);
        let annotations = self.optional(&fields, "annotations", Self::annotations);
        Some(Metadata { name: name?, namespace: namespace?, labels, annotations })
    }

    fn labels(&mut self, node: &Node<'_>, path: &str) -> Option<BTreeMap<String, String>> {
        let mut labels = BTreeMap::new();
        let mut valid = true;
        for (key, key_node, value_node) in self.entries(node, path)? {
            let label_path = child_path(path, key);
            valid &= self.check(key_node, &label_path, rules::label_key(key));
            let value = match key {
                Metadata::DATA_CLASS_LABEL => {
                    self.choice::<DataClass>(value_node, &label_path).map(|class| class.as_str().to_owned())
                }
                _ => self.checked_text(value_node, &label_path, rules::label_value),
            };
            match value {
                Some(value) => {
                    labels.insert(key.to_owned(), value);
                }
                None => valid = false,
            }
        }
        valid.then_some(labels)
    }

    fn annotations(&mut self, node: &Node<'_>, path: &str) -> Option<BTreeMap<String, String>> {
        let mut annotations = BTreeMap::new();
        let mut valid = true;
        for (key, key_node, value_node) in self.entries(node, path)? {
            let annotation_path = child_path(path, key);
            valid &= self.check(key_node, &annotation_path, rules::label_key(key));
            match self.text(value_node, &annotation_path) {
                Some(value) => {
                    annotations.insert(key.to_owned(), value);
                }
                None => valid = false,
            }
        }
        valid.then_some(annotations)
    }

    fn spec(&mut self, node: &Node<'_>, path: &str) -> Option<Spec> {
        let fields = self.fields(node, path, &SPEC_FIELDS, &[])?;
        let owner = self.required(&fields, "owner", "owner: user:<your user name>", Self::owner);
        let description = self.optional(&fields, "description", Self::text);
        let runtime = self.required(&fields, "runtime", "runtime: static", Self::choice);
        let template_ref =
            self.optional(&fields, "templateRef", |d, node, path| d.checked_text(node, path, rules::template_ref));
        let static_site = self.optional(&fields, "static", Self::static_site);
        let functions = self.optional(&fields, "functions", Self::functions);
        let wasm = self.optional(&fields, "wasm", Self::wasm);
        let container = self.optional(&fields, "container", Self::container);
        let vars = self.optional(&fields, "vars", Self::vars);
        let access = self.optional(&fields, "access", Self::access);
        let secrets_ref = self.optional(&fields, "secretsRef", Self::secrets_ref);
        let ttl_days = self.optional(&fields, "ttlDays", |d, node, path| d.whole_number(node, path, "days", 1, 3650));
        let allowed_egress = self.optional(&fields, "allowedEgress", Self::allowed_egress);
        let quotas = self.optional(&fields, "quotas", Self::quotas);
        let data = self.optional(&fields, "data", Self::data);
        let ai = self.optional(&fields, "ai", Self::ai);
        let slo = self.optional(&fields, "slo", Self::slo);
        if let Some(runtime) = runtime {
            self.check_runtime_sections(&fields, runtime);
        }
        if let (Some(data), Some(data_node)) = (&data, fields.get("data")) {
            self.check_bindings(data, vars.as_ref(), data_node);
        }
        Some(Spec {
            owner: owner?,
            description,
            runtime: runtime?,
            template_ref,
            static_site,
            functions,
            wasm,
            container,
            vars,
            access,
            secrets_ref,
            ttl_days,
            allowed_egress,
            quotas,
            data,
            ai,
            slo,
        })
    }

    /// Each runtime needs some of `static`, `functions`, `wasm` and `container`, and uses no other.
    fn check_runtime_sections(&mut self, fields: &Fields<'_, '_>, runtime: Runtime) {
        let needed: &[&str] = match runtime {
            Runtime::Static => &["static"],
            Runtime::StaticEdge => &["static", "functions"],
            Runtime::Function => &["functions"],
            Runtime::Wasm => &["wasm"],
            Runtime::Container => &["container"],
        };
        let Some(runtime_node) = fields.get("runtime") else {
            return;
        };
        for section in ["static", "functions", "wasm", "container"] {
            // An empty list of functions counts as no functions.
            let written = fields.get(section).is_some_and(|value| !is_empty_sequence(value));
            let is_needed = needed.contains(&section);
            if is_needed && !written {
                let (what, example) = match section {
                    "static" => ("a static section with the folder of files to serve", "static: { dir: public }"),
                    "functions" => ("at least one function", "functions: [{ route: /api/*, entry: functions/api.js }]"),
                    "wasm" => ("a wasm section with the component to run", "wasm: { component: app.wasm }"),
                    _ => (
                        "a container section with the image to run",
                        "container: { image: registry.example.com/team/app:1.0, port: 8080 }",
                    ),
                };
                let message = format!("runtime \"{runtime}\" needs {what}");
                let hint = format!("add it to spec, for example: {example}");
                self.error(runtime_node, &fields.path, message, Some(hint));
            }
            if let (false, true, Some(key)) = (is_needed, written, fields.key(section)) {
                let used_by = match section {
                    "static" => "static or static+edge",
                    "functions" => "function or static+edge",
                    other => other,
                };
                let message = format!("runtime \"{runtime}\" does not use {section}; only runtime {used_by} does");
                let hint = "remove this section or change spec.runtime";
                self.error(key, &child_path(&fields.path, section), message, Some(hint.into()));
            }
        }
    }

    fn static_site(&mut self, node: &Node<'_>, path: &str) -> Option<StaticSite> {
        let fields = self.fields(node, path, &["dir", "spa"], &[])?;
        let dir = self
            .required(&fields, "dir", "dir: public", |d, node, path| d.checked_text(node, path, rules::relative_path));
        let spa = self.optional(&fields, "spa", Self::boolean);
        Some(StaticSite { dir: dir?, spa })
    }

    /// The functions in file order. Routes must be unique, and a warning says when an earlier
    /// route catches every path of a later one (the first match wins).
    fn functions(&mut self, node: &Node<'_>, path: &str) -> Option<Vec<Function>> {
        let items = self.sequence(node, path)?;
        let mut functions: Vec<(usize, Function, &Node<'_>)> = Vec::new();
        let mut valid = true;
        for (index, item) in items.iter().enumerate() {
            match self.function(item, &item_path(path, index)) {
                Some((function, route_node)) => functions.push((index, function, route_node)),
                None => valid = false,
            }
        }
        for (later, (later_index, later_function, route_node)) in functions.iter().enumerate() {
            let route = &later_function.route;
            let route_path = child_path(&item_path(path, *later_index), "route");
            for (earlier_index, earlier_function, _) in &functions[..later] {
                let earlier = &earlier_function.route;
                let earlier_path = item_path(path, *earlier_index);
                if earlier == route {
                    self.error(
                        route_node,
                        &route_path,
                        format!("the route \"{}\" is already used by {earlier_path}", route.as_str()),
                        Some("each route may appear once; change or remove one of them".into()),
                    );
                    valid = false;
                    break;
                }
                if covers(earlier, route) {
                    self.warning(
                        route_node,
                        &route_path,
                        format!(
                            "this function is never called: {earlier_path} comes first and its route \"{}\" matches every path this one does",
                            earlier.as_str()
                        ),
                        Some("the first matching route wins; move this function above the other one".into()),
                    );
                    break;
                }
            }
        }
        valid.then(|| functions.into_iter().map(|(_, function, _)| function).collect())
    }

    /// One function, and the node of its route for messages about routes.
    fn function<'n, 'i>(&mut self, node: &'n Node<'i>, path: &str) -> Option<(Function, &'n Node<'i>)> {
        let fields = self.fields(node, path, &["route", "entry"], &[])?;
        let route = self.required(&fields, "route", "route: /api/*", Self::route);
        let entry = self.required(&fields, "entry", "entry: functions/api.js", |d, node, path| {
            d.checked_text(node, path, rules::function_entry)
        });
        let route_node = fields.get("route")?;
        Some((Function { route: route?, entry: entry? }, route_node))
    }

    fn route(&mut self, node: &Node<'_>, path: &str) -> Option<RoutePattern> {
        let raw = self.text(node, path)?;
        match RoutePattern::parse(&raw) {
            Ok(route) => Some(route),
            Err(error) => {
                let hint = "a route is a path inside the app, like /api/pick, or /api/* for every path under /api";
                self.error(node, path, error.to_string(), Some(hint.into()));
                None
            }
        }
    }

    fn wasm(&mut self, node: &Node<'_>, path: &str) -> Option<Wasm> {
        let fields = self.fields(node, path, &["component"], &[])?;
        let component = self.required(&fields, "component", "component: app.wasm", |d, node, path| {
            d.checked_text(node, path, rules::wasm_component)
        });
        Some(Wasm { component: component? })
    }

    fn container(&mut self, node: &Node<'_>, path: &str) -> Option<Container> {
        let fields = self.fields(node, path, &["image", "port"], &[])?;
        let image = self.required(&fields, "image", "image: registry.example.com/team/app:1.0", |d, node, path| {
            d.checked_text(node, path, rules::container_image)
        });
        let port =
            self.required(&fields, "port", "port: 8080", |d, node, path| d.whole_number(node, path, "", 1, 65535));
        Some(Container { image: image?, port: port? })
    }

    /// Variables are text; numbers and true/false are accepted and kept as written.
    fn vars(&mut self, node: &Node<'_>, path: &str) -> Option<BTreeMap<String, String>> {
        let mut vars = BTreeMap::new();
        let mut valid = true;
        for (name, name_node, value_node) in self.entries(node, path)? {
            let var_path = child_path(path, name);
            valid &= self.check(name_node, &var_path, rules::var_name(name));
            if rules::var_name_suggests_secret(name) {
                self.warning(
                    name_node,
                    &var_path,
                    "vars are not secret: anyone who can read the app's manifest sees them".into(),
                    Some("keep secrets in the secret store that spec.secretsRef names".into()),
                );
            }
            let value = match scalar(value_node) {
                Some((raw, Scalar::String(_) | Scalar::Integer(_) | Scalar::FloatingPoint(_) | Scalar::Boolean(_))) => {
                    Some(raw.to_owned())
                }
                Some((_, Scalar::Null)) => {
                    let hint = format!("write {name}: \"\" for an empty value");
                    self.error(value_node, &var_path, "the variable has no value".into(), Some(hint));
                    None
                }
                _ => {
                    let message = format!("expected text, a number or true/false, found {}", describe(value_node));
                    self.error(value_node, &var_path, message, None);
                    None
                }
            };
            match value {
                Some(value) => {
                    vars.insert(name.to_owned(), value);
                }
                None => valid = false,
            }
        }
        valid.then_some(vars)
    }

    fn access(&mut self, node: &Node<'_>, path: &str) -> Option<Access> {
        let fields = self.fields(node, path, &["visibility", "groups"], &[])?;
        let visibility = self.optional(&fields, "visibility", Self::choice);
        let groups = self.optional(&fields, "groups", |d, node, path| {
            d.list(node, path, |d, node, path| d.checked_text(node, path, |group| rules::word(group, "group name")))
        });
        Some(Access { visibility, groups })
    }

    fn owner(&mut self, node: &Node<'_>, path: &str) -> Option<Owner> {
        let text = self.text(node, path)?;
        match rules::parse_owner(&text) {
            Ok(owner) => Some(owner),
            Err(problem) => {
                self.problem(node, path, problem);
                None
            }
        }
    }

    /// Never repeats the value: it may be a secret pasted by mistake.
    fn secrets_ref(&mut self, node: &Node<'_>, path: &str) -> Option<SecretsRef> {
        let raw = match scalar(node) {
            Some((raw, Scalar::String(_))) => raw,
            Some((_, Scalar::Null)) | None => {
                let message =
                    format!("expected a reference like terrarium://<namespace>/<app>, found {}", describe(node));
                self.error(node, path, message, None);
                return None;
            }
            Some(_) => {
                let message =
                    "expected a reference like terrarium://<namespace>/<app>, found a number or true/false".into();
                self.error(node, path, message, Some("it names where secrets are kept, never a secret value".into()));
                return None;
            }
        };
        match rules::parse_secrets_ref(raw) {
            Ok(secrets_ref) => Some(secrets_ref),
            Err(problem) => {
                self.problem(node, path, problem);
                None
            }
        }
    }

    fn allowed_egress(&mut self, node: &Node<'_>, path: &str) -> Option<Vec<String>> {
        let entries = self.list(node, path, |d, node, path| d.text(node, path))?;
        let problems = rules::validate_egress_entries(&entries);
        let items = self.sequence(node, path)?;
        for (index, problem) in &problems {
            self.problem(&items[*index], &item_path(path, *index), problem.clone());
        }
        problems.is_empty().then_some(entries)
    }

    fn quotas(&mut self, node: &Node<'_>, path: &str) -> Option<Quotas> {
        let fields = self.fields(node, path, &QUOTA_FIELDS, &[])?;
        let requests = |d: &mut Self, node: &Node<'_>, path: &str| d.whole_number(node, path, "requests", 1, U32_MAX);
        Some(Quotas {
            requests_per_second: self.optional(&fields, "requestsPerSecond", requests),
            burst: self.optional(&fields, "burst", requests),
            concurrency: self.optional(&fields, "concurrency", requests),
            monthly_requests: self.optional(&fields, "monthlyRequests", |d, node, path| {
                d.whole_number(node, path, "requests", 1, i64::MAX)
            }),
            cpu_ms_per_request: self.optional(&fields, "cpuMsPerRequest", |d, node, path| {
                d.whole_number(node, path, "milliseconds", 1, 60_000)
            }),
            memory_mib: self
                .optional(&fields, "memoryMiB", |d, node, path| d.whole_number(node, path, "MiB", 16, 4096)),
            monthly_budget: self.optional(&fields, "monthlyBudget", Self::monthly_budget),
            kv_storage_mib: self
                .optional(&fields, "kvStorageMiB", |d, node, path| d.whole_number(node, path, "MiB", 1, 1 << 20)),
            sql_storage_mib: self
                .optional(&fields, "sqlStorageMiB", |d, node, path| d.whole_number(node, path, "MiB", 1, 1 << 20)),
        })
    }

    fn monthly_budget(&mut self, node: &Node<'_>, path: &str) -> Option<MonthlyBudget> {
        let fields = self.fields(node, path, &["amount", "currency"], &[])?;
        let amount = self.required(&fields, "amount", "amount: 25", |d, node, path| {
            d.number(node, path).filter(|amount| d.check(node, path, rules::budget_amount(*amount)))
        });
        let currency = self.required(&fields, "currency", "currency: USD", |d, node, path| {
            d.checked_text(node, path, rules::currency)
        });
        Some(MonthlyBudget { amount: amount?, currency: currency? })
    }

    /// Each data binding's name is its own in `env`: no variable and no other binding has it.
    fn check_bindings(&mut self, data: &Data, vars: Option<&BTreeMap<String, String>>, data_node: &Node<'_>) {
        let kv = data.kv.as_ref().and_then(KvSpec::binding).map(|binding| ("spec.data.kv", "KV", binding));
        let sql = data.sql.as_ref().map(|sql| ("spec.data.sql", "SQL", sql.binding()));
        let vectors = data.vectors.as_ref().map(|vectors| ("spec.data.vectors", "vectors", vectors.binding()));
        for (path, what, binding) in [kv, sql, vectors].into_iter().flatten() {
            if vars.is_some_and(|vars| vars.contains_key(binding)) {
                let message = format!(
                    "the {what} binding {binding} has the name of a variable in spec.vars; env.{binding} can only be one of them"
                );
                self.error(data_node, path, message, Some("rename one of them".into()));
            }
        }
        let bindings: Vec<_> = [kv, sql, vectors].into_iter().flatten().collect();
        for (index, (path, what, binding)) in bindings.iter().enumerate() {
            if let Some((_, other, _)) = bindings[..index].iter().find(|(_, _, earlier)| earlier == binding) {
                let message = format!(
                    "the {other} and {what} bindings are both named {binding}; env.{binding} can only be one of them"
                );
                self.error(
                    data_node,
                    &format!("{path}.binding"),
                    message,
                    Some(format!("write binding: ANOTHER_NAME under {}", &path["spec.data.".len()..])),
                );
            }
        }
    }

    fn data(&mut self, node: &Node<'_>, path: &str) -> Option<Data> {
        let fields = self.fields(node, path, &["kv", "sql", "vectors"], &[])?;
        let kv = self.optional(&fields, "kv", Self::kv);
        let sql = self.optional(&fields, "sql", |d, node, path| {
            let fields = d.fields(node, path, &["isolation", "binding"], &[])?;
            let binding = d.optional(&fields, "binding", |d, node, path| {
                let name = d.text(node, path)?;
                d.check(node, path, rules::var_name(&name)).then_some(name)
            });
            Some(Sql { isolation: d.optional(&fields, "isolation", Self::choice), binding })
        });
        let vectors = self.optional(&fields, "vectors", |d, node, path| {
            let fields = d.fields(node, path, &["binding", "dimensions", "piiRedaction", "ttlDays"], &[])?;
            let binding = d.optional(&fields, "binding", |d, node, path| {
                let name = d.text(node, path)?;
                d.check(node, path, rules::var_name(&name)).then_some(name)
            });
            Some(Vectors {
                binding,
                dimensions: d
                    .optional(&fields, "dimensions", |d, node, path| d.whole_number(node, path, "dimensions", 1, 1536)),
                pii_redaction: d.optional(&fields, "piiRedaction", Self::boolean),
                ttl_days: d.optional(&fields, "ttlDays", |d, node, path| d.whole_number(node, path, "days", 1, 3650)),
            })
        });
        Some(Data { kv, sql, vectors })
    }

    /// `true`/`false`, or `{ binding: NAME }`.
    fn kv(&mut self, node: &Node<'_>, path: &str) -> Option<KvSpec> {
        if let Some((_, Scalar::Boolean(enabled))) = scalar(node) {
            return Some(KvSpec::Enabled(enabled));
        }
        if scalar(node).is_some() {
            let message = format!("expected true, false or {{ binding: NAME }}, found {}", describe(node));
            self.error(node, path, message, Some("write kv: true to bind it as env.KV".into()));
            return None;
        }
        let fields = self.fields(node, path, &["binding"], &[])?;
        let binding = self.required(&fields, "binding", "binding: VOTES", |d, node, path| {
            let name = d.text(node, path)?;
            d.check(node, path, rules::var_name(&name)).then_some(name)
        })?;
        Some(KvSpec::Bound(KvBinding { binding }))
    }

    fn ai(&mut self, node: &Node<'_>, path: &str) -> Option<Ai> {
        let fields = self.fields(node, path, &["models", "pii"], &[])?;
        let models = self.optional(&fields, "models", |d, node, path| {
            d.list(node, path, |d, node, path| d.checked_text(node, path, |model| rules::word(model, "model name")))
        });
        let pii = self.optional(&fields, "pii", Self::choice);
        Some(Ai { models, pii })
    }

    fn slo(&mut self, node: &Node<'_>, path: &str) -> Option<Slo> {
        let fields = self.fields(node, path, &["availability", "latencyP95Ms"], &[])?;
        let availability = self.optional(&fields, "availability", |d, node, path| {
            d.number(node, path).filter(|availability| d.check(node, path, rules::availability(*availability)))
        });
        let latency_p95_ms = self
            .optional(&fields, "latencyP95Ms", |d, node, path| d.whole_number(node, path, "milliseconds", 1, U32_MAX));
        Some(Slo { availability, latency_p95_ms })
    }

    // ----- Groups of fields and lists. -----

    /// The fields of a group, after reporting fields that are not in `allowed` (with a
    /// suggestion) and warning about `ignored` ones, which the control plane writes.
    fn fields<'n, 'i>(
        &mut self,
        node: &'n Node<'i>,
        path: &str,
        allowed: &[&str],
        ignored: &[&str],
    ) -> Option<Fields<'n, 'i>> {
        let at = position(node);
        let entries = self.entries_or_expected(node, path, &format!("a group of fields ({})", some_of(allowed)))?;
        let mut known = Vec::new();
        for (key, key_node, value) in entries {
            let field_path = child_path(path, key);
            if allowed.contains(&key) {
                known.push((key, key_node, value));
            } else if ignored.contains(&key) {
                let message = format!("{key} is written by the control plane and is ignored here");
                let hint = "remove it; the file was probably copied from \"kubectl get -o yaml\"";
                self.warning(key_node, &field_path, message, Some(hint.into()));
            } else if key == "<<" {
                let hint = "write the fields out in full";
                self.error(key_node, &field_path, "merge keys (<<) are not supported".into(), Some(hint.into()));
            } else {
                let hint = match rules::did_you_mean(key, allowed) {
                    Some(close) => format!("did you mean \"{close}\"?"),
                    None if path.is_empty() => {
                        format!("the fields allowed here are: {}", allowed.join(", "))
                    }
                    None => format!("the fields allowed in {path} are: {}", allowed.join(", ")),
                };
                self.error(key_node, &field_path, format!("unknown field \"{}\"", shorten(key)), Some(hint));
            }
        }
        Some(Fields { path: path.to_owned(), at, entries: known })
    }

    /// The entries of a group whose keys are names chosen by the author (labels, vars).
    fn entries<'n, 'i>(
        &mut self,
        node: &'n Node<'i>,
        path: &str,
    ) -> Option<Vec<(&'n str, &'n Node<'i>, &'n Node<'i>)>> {
        self.entries_or_expected(node, path, "a group of names and values (NAME: value)")
    }

    fn entries_or_expected<'n, 'i>(
        &mut self,
        node: &'n Node<'i>,
        path: &str,
        expected: &str,
    ) -> Option<Vec<(&'n str, &'n Node<'i>, &'n Node<'i>)>> {
        let YamlData::Mapping(mapping) = &untagged(node).data else {
            let hint = "write the fields on the lines below, each indented by two more spaces";
            self.error(node, path, format!("expected {expected}, found {}", describe(node)), Some(hint.into()));
            return None;
        };
        let mut entries = Vec::new();
        for (key, value) in mapping {
            match scalar(key) {
                Some((
                    name,
                    Scalar::String(_) | Scalar::Integer(_) | Scalar::FloatingPoint(_) | Scalar::Boolean(_),
                )) => {
                    entries.push((name, key, value));
                }
                _ => self.error(key, path, format!("expected a field name, found {}", describe(key)), None),
            }
        }
        Some(entries)
    }

    fn sequence<'n, 'i>(&mut self, node: &'n Node<'i>, path: &str) -> Option<&'n [Node<'i>]> {
        match &untagged(node).data {
            YamlData::Sequence(items) => Some(items),
            _ => {
                let hint = "write each item on its own line starting with \"- \", or as [first, second]";
                self.error(node, path, format!("expected a list, found {}", describe(node)), Some(hint.into()));
                None
            }
        }
    }

    /// A list whose items all decode; every item's problem is reported.
    fn list<T>(
        &mut self,
        node: &Node<'_>,
        path: &str,
        mut decode_item: impl FnMut(&mut Self, &Node<'_>, &str) -> Option<T>,
    ) -> Option<Vec<T>> {
        let items = self.sequence(node, path)?;
        let decoded: Vec<Option<T>> =
            items.iter().enumerate().map(|(index, item)| decode_item(self, item, &item_path(path, index))).collect();
        decoded.into_iter().collect()
    }

    /// A field that must be present; `example` shows how to write it.
    fn required<'n, 'i, T>(
        &mut self,
        fields: &Fields<'n, 'i>,
        name: &str,
        example: &str,
        decode_value: impl FnOnce(&mut Self, &'n Node<'i>, &str) -> Option<T>,
    ) -> Option<T> {
        match fields.get_even_if_empty(name) {
            Some(value) => decode_value(self, value, &child_path(&fields.path, name)),
            None => {
                let message = format!("the required field \"{name}\" is missing");
                let hint = format!("add it, for example: {example}");
                self.report.error(fields.at, &fields.path, message, Some(hint));
                None
            }
        }
    }

    /// A field that may be left out; left out or empty, it is `None`.
    fn optional<'n, 'i, T>(
        &mut self,
        fields: &Fields<'n, 'i>,
        name: &str,
        decode_value: impl FnOnce(&mut Self, &'n Node<'i>, &str) -> Option<T>,
    ) -> Option<T> {
        let value = fields.get(name)?;
        decode_value(self, value, &child_path(&fields.path, name))
    }

    // ----- Single values. -----

    /// Text, written with or without quotes. A number or true/false is refused with a hint,
    /// because the same file must also pass Kubernetes' stricter checks.
    fn text(&mut self, node: &Node<'_>, path: &str) -> Option<String> {
        match scalar(node) {
            Some((raw, Scalar::String(_))) => Some(raw.to_owned()),
            Some((_, Scalar::Integer(_) | Scalar::FloatingPoint(_) | Scalar::Boolean(_))) => {
                let hint = "put quotes around it so it is read as text";
                self.error(node, path, format!("expected text, found {}", describe(node)), Some(hint.into()));
                None
            }
            _ => {
                self.error(node, path, format!("expected text, found {}", describe(node)), None);
                None
            }
        }
    }

    /// Text that must pass `rule`.
    fn checked_text(
        &mut self,
        node: &Node<'_>,
        path: &str,
        rule: impl FnOnce(&str) -> Result<(), Problem>,
    ) -> Option<String> {
        let text = self.text(node, path)?;
        self.check(node, path, rule(&text)).then_some(text)
    }

    /// A whole number from `min` to `max`; `unit` (`days`) makes the messages clearer.
    fn whole_number<T: TryFrom<i64>>(
        &mut self,
        node: &Node<'_>,
        path: &str,
        unit: &str,
        min: i64,
        max: i64,
    ) -> Option<T> {
        let expected = match unit {
            "" => "a whole number".to_owned(),
            unit => format!("a whole number of {unit}"),
        };
        let number = match scalar(node) {
            Some((_, Scalar::Integer(number))) => number,
            Some((raw, Scalar::String(_))) if raw.trim().parse::<i64>().is_ok() => {
                let hint = "remove the quotes so it is read as a number";
                self.error(node, path, format!("expected {expected}, found text \"{raw}\""), Some(hint.into()));
                return None;
            }
            _ => {
                self.error(node, path, format!("expected {expected}, found {}", describe(node)), None);
                return None;
            }
        };
        if (min..=max).contains(&number) {
            return T::try_from(number).ok();
        }
        let message = match (max >= U32_MAX, unit) {
            (true, _) => format!("must be at least {min}, found {number}"),
            (false, "") => format!("must be from {min} to {max}, found {number}"),
            (false, unit) => format!("must be from {min} to {max} {unit}, found {number}"),
        };
        self.error(node, path, message, None);
        None
    }

    /// A number, whole or with decimals.
    fn number(&mut self, node: &Node<'_>, path: &str) -> Option<f64> {
        match scalar(node) {
            Some((_, Scalar::Integer(number))) => Some(number as f64),
            Some((_, Scalar::FloatingPoint(number))) => Some(number.into_inner()),
            Some((raw, Scalar::String(_))) if raw.trim().parse::<f64>().is_ok() => {
                let hint = "remove the quotes so it is read as a number";
                self.error(
                    node,
                    path,
                    format!("expected a number, found text \"{}\"", shorten(raw)),
                    Some(hint.into()),
                );
                None
            }
            _ => {
                self.error(node, path, format!("expected a number, found {}", describe(node)), None);
                None
            }
        }
    }

    fn boolean(&mut self, node: &Node<'_>, path: &str) -> Option<bool> {
        match scalar(node) {
            Some((_, Scalar::Boolean(value))) => Some(value),
            _ => {
                let message = format!("expected true or false, found {}", describe(node));
                self.error(node, path, message, None);
                None
            }
        }
    }

    /// One of a fixed set of spellings, like a runtime or a visibility.
    fn choice<T: Choice>(&mut self, node: &Node<'_>, path: &str) -> Option<T> {
        let spellings: Vec<&str> = T::ALL.iter().map(|choice| choice.as_str()).collect();
        let raw = match scalar(node) {
            Some((raw, Scalar::String(_))) => raw,
            _ => {
                let message = format!("expected one of: {}, found {}", spellings.join(", "), describe(node));
                self.error(node, path, message, None);
                return None;
            }
        };
        if let Some(choice) = T::ALL.iter().find(|choice| choice.as_str() == raw) {
            return Some(*choice);
        }
        let message = format!("\"{}\" is not a valid {}; use one of: {}", shorten(raw), T::WHAT, spellings.join(", "));
        let hint = rules::did_you_mean(raw, &spellings).map(|close| format!("did you mean \"{close}\"?"));
        self.error(node, path, message, hint);
        None
    }

    // ----- Reporting. -----

    fn error(&mut self, node: &Node<'_>, path: &str, message: String, hint: Option<String>) {
        self.report.error(position(node), path, message, hint);
    }

    fn warning(&mut self, node: &Node<'_>, path: &str, message: String, hint: Option<String>) {
        self.report.warning(position(node), path, message, hint);
    }

    fn problem(&mut self, node: &Node<'_>, path: &str, problem: Problem) {
        self.error(node, path, problem.message, problem.hint);
    }

    /// Reports the problem, if any; true when there is none.
    fn check(&mut self, node: &Node<'_>, path: &str, result: Result<(), Problem>) -> bool {
        match result {
            Ok(()) => true,
            Err(problem) => {
                self.problem(node, path, problem);
                false
            }
        }
    }
}

// ----- Nodes. -----

/// The node under any tags; tags themselves are reported while reading the file.
fn untagged<'n, 'i>(node: &'n Node<'i>) -> &'n Node<'i> {
    match &node.data {
        YamlData::Tagged(_, inner) => untagged(inner),
        _ => node,
    }
}

/// A scalar's text as written (without quotes) and its value under YAML 1.2's core schema.
fn scalar<'n>(node: &'n Node<'_>) -> Option<(&'n str, Scalar<'n>)> {
    match &untagged(node).data {
        YamlData::Representation(raw, style, tag) => {
            let value = Scalar::parse_from_cow_and_metadata(Cow::Borrowed(raw.as_ref()), *style, tag.as_ref())?;
            Some((raw.as_ref(), value))
        }
        _ => None,
    }
}

fn is_null(node: &Node<'_>) -> bool {
    matches!(scalar(node), Some((_, Scalar::Null)))
}

fn is_empty_sequence(node: &Node<'_>) -> bool {
    matches!(&untagged(node).data, YamlData::Sequence(items) if items.is_empty())
}

fn position(node: &Node<'_>) -> Position {
    Position::from_marker(node.span.start)
}

/// What a node holds, in words, for "expected …, found …".
fn describe(node: &Node<'_>) -> String {
    match &untagged(node).data {
        YamlData::Sequence(_) => return "a list".into(),
        YamlData::Mapping(_) => return "a group of fields".into(),
        _ => {}
    }
    match scalar(node) {
        Some((raw, Scalar::String(_))) => format!("text \"{}\"", shorten(raw)),
        Some((raw, Scalar::Integer(_) | Scalar::FloatingPoint(_))) => format!("the number {raw}"),
        Some((raw, Scalar::Boolean(_))) => raw.to_owned(),
        Some((_, Scalar::Null)) => "nothing".into(),
        None => "a value that cannot be read".into(),
    }
}

/// At most 40 characters of `text`, so a long value does not swamp the message.
fn shorten(text: &str) -> String {
    match text.char_indices().nth(40) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
}

/// The first few of `names`, for messages that would otherwise grow long.
fn some_of(names: &[&str]) -> String {
    match names.len() {
        0..=4 => names.join(", "),
        _ => format!("{}, …", names[..3].join(", ")),
    }
}

/// Whether the earlier route catches every path the later one would.
fn covers(earlier: &RoutePattern, later: &RoutePattern) -> bool {
    match later.as_str().strip_suffix("/*") {
        // A prefix route serves its prefix itself and everything below it.
        Some(prefix) => earlier.matches(prefix) && earlier.matches(&format!("{prefix}/")),
        None => earlier.matches(later.as_str()),
    }
}
