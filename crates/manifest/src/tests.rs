//! Tests of loading manifests: every rule with a passing and a failing case, the limits on
//! hostile input, the rendering of problems, and the JSON Schema.

use crate::model::Choice;
use crate::{DataClass, Kind, Owner, PiiMode, Runtime, SecretsRef, SqlIsolation, Visibility, json_schema, load};

/// The full example of `manifest.md`, with its comments and its `status`.
const FULL_EXAMPLE: &str = r#"apiVersion: terrarium.dev/v1
kind: MicroApp
metadata:
  name: where2eat                 # DNS label: [a-z0-9-], 1..40 chars, unique within the namespace
  namespace: growth               # the tenant: a team or business unit; quotas, budgets and RBAC attach here
  labels:                         # free-form, filterable (`terrarium apps list -l dataClass=internal`)
    dataClass: internal           # public | internal | confidential | restricted (policy reads it)
  annotations: {}
spec:
  owner: user:beckayu             # user:<subject> or group:<name>; must resolve through the identity provider
  description: Pick a lunch place with friends
  runtime: static+edge            # static | static+edge | function | wasm | container
  templateRef: static-edge@1      # catalog template and version it was created from (optional)

  static:                         # static front end (runtime static or static+edge)
    dir: public
    spa: true                     # unknown paths fall back to index.html
  functions:                      # edge functions (static+edge, function)
    - route: /api/*               # path pattern inside the app
      entry: functions/api.js     # ES module: export default { fetch(request, env, ctx) }
  # wasm:  { component: app.wasm }          # runtime wasm: a wasi:http proxy component
  # container: { image: ..., port: 8080 }   # runtime container: rendered for Kubernetes, or sandboxed locally

  vars:                           # non-secret configuration, handed to functions as env.NAME
    DEFAULT_CITY: Lisbon

  access:
    visibility: org               # private (owner only) | team (namespace members) | org (any signed-in user) | public
    groups: []                    # extra groups allowed in
  secretsRef: vault://microapp/where2eat    # or terrarium://growth/where2eat; never a literal value
  ttlDays: 90                     # the app expires after this many days without renewal; policy sets the maximum
  allowedEgress:                  # hosts the app's code may call; empty = no outbound network at all
    - internal-api.company.svc.cluster.local
    - https://maps.company.com
  quotas:
    requestsPerSecond: 20
    burst: 40
    concurrency: 8                # in-flight requests
    monthlyRequests: 1000000
    cpuMsPerRequest: 50           # hard CPU budget per request
    memoryMiB: 64                 # per instance
    monthlyBudget: { amount: 25, currency: USD }
  data:
    kv: true                      # a key-value namespace of its own
    sql: { isolation: isolated }  # shared | schema | isolated
    vectors: { piiRedaction: true, ttlDays: 30 }
  ai:
    models: [chat-default]        # model aliases defined by the platform operator
    pii: mask                     # mask | block | allow (allow needs an approval)
  slo:
    availability: 99.5
    latencyP95Ms: 300

status:                           # written by the control plane
  phase: Active                   # Pending | PendingApproval | Active | Expiring | Suspended | Archived | Rejected
  url: https://where2eat.growth.apps.example.com
  revision: 7
  digest: sha256:...
  expiresAt: 2027-02-20T00:00:00Z
  conditions: []                  # Ready, PolicyCompliant, WithinBudget, ... in the Kubernetes conditions shape
"#;

/// The full example without its `status`.
fn full_example_without_status() -> &'static str {
    let end = FULL_EXAMPLE.find("\nstatus:").expect("the example has a status");
    &FULL_EXAMPLE[..end + 1]
}

/// Loads `yaml` and renders the outcome: the problems as `Display` prints them, or `ok`
/// followed by any warnings.
fn render(yaml: &str) -> String {
    match load("terrarium.yaml", yaml) {
        Ok(validated) if validated.warnings().is_empty() => "ok".to_owned(),
        Ok(validated) => format!("ok\n{}", validated.warnings()),
        Err(diagnostics) => diagnostics.to_string(),
    }
}

/// Loads `yaml` and compares the rendered outcome with `expect`, ignoring the indentation that
/// `expect` shares on every line.
#[track_caller]
fn check(yaml: &str, expect: &str) {
    let actual = render(yaml);
    let expect = dedent(expect);
    assert!(
        actual.trim() == expect.trim(),
        "\n--- input ---\n{yaml}\n--- expected ---\n{expect}\n--- actual ---\n{actual}\n"
    );
}

fn dedent(text: &str) -> String {
    let indent = text
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| line.len() - line.trim_start().len())
        .min()
        .unwrap_or(0);
    text.lines().map(|line| line.get(indent..).unwrap_or("").trim_end()).collect::<Vec<_>>().join("\n")
}

fn indent(lines: &str, by: usize) -> String {
    let padding = " ".repeat(by);
    dedent(lines).lines().map(|line| format!("{padding}{line}\n")).collect()
}

/// A manifest for `where2eat` in `growth` owned by `user:beckayu`, with `spec_lines` after the
/// owner: they start on line 8, indented by two spaces.
fn spec(spec_lines: &str) -> String {
    format!(
        "apiVersion: terrarium.dev/v1\nkind: MicroApp\nmetadata:\n  name: where2eat\n  namespace: growth\nspec:\n  owner: user:beckayu\n{}",
        indent(spec_lines, 2)
    )
}

/// A valid static app with `extra` at the end of `spec`: it starts on line 11, column 3.
fn app(extra: &str) -> String {
    spec(&format!("runtime: static\nstatic:\n  dir: public\n{}", dedent(extra)))
}

// ----- Whole manifests. -----

#[test]
fn full_example_loads() {
    let validated =
        load("terrarium.yaml", full_example_without_status()).unwrap_or_else(|problems| panic!("{problems}"));
    assert!(validated.warnings().is_empty(), "{}", validated.warnings());
    let manifest = validated.manifest();
    assert_eq!(validated.app_key().to_string(), "growth/where2eat");
    assert_eq!(manifest.spec.owner, Owner::User("beckayu".into()));
    assert_eq!(manifest.spec.runtime, Runtime::StaticEdge);
    assert_eq!(manifest.metadata.data_class(), Some(DataClass::Internal));
    let functions = manifest.spec.functions.as_ref().unwrap();
    assert_eq!(functions[0].route.as_str(), "/api/*");
    assert_eq!(functions[0].entry, "functions/api.js");
    assert_eq!(
        manifest.spec.secrets_ref,
        Some(SecretsRef::Vault { mount: "microapp".into(), path: "where2eat".into() })
    );
    let quotas = manifest.spec.quotas.as_ref().unwrap();
    assert_eq!(quotas.memory_mib, Some(64));
    assert_eq!(quotas.monthly_budget.as_ref().unwrap().amount, 25.0);
    assert_eq!(manifest.spec.data.as_ref().unwrap().sql.as_ref().unwrap().isolation, Some(SqlIsolation::Isolated));
    assert_eq!(manifest.spec.ai.as_ref().unwrap().pii, Some(PiiMode::Mask));
    assert_eq!(manifest.spec.access.as_ref().unwrap().visibility, Some(Visibility::Org));
    assert_eq!(manifest.spec.slo.as_ref().unwrap().availability, Some(99.5));
    insta::assert_json_snapshot!("full_example_as_json", manifest);
}

#[test]
fn full_example_with_status_loads_with_a_warning() {
    insta::assert_snapshot!(render(FULL_EXAMPLE), @r#"
    ok
    terrarium.yaml:54:1: warning: status: status is written by the control plane and is ignored here
      hint: remove it; the file was probably copied from "kubectl get -o yaml"
    "#);
}

#[test]
fn three_mistakes_give_three_precise_messages() {
    let yaml = "\
apiVersion: terrarium.dev/v1
kind: MicroApp
metadata:
  name: Where2Eat
  namespace: growth
spec:
  owner: user:beckayu
  runtime: static
  static:
    dir: public
  ttlDays: ninety
  quotas:
    brust: 40
";
    let problems = load("terrarium.yaml", yaml).unwrap_err();
    assert_eq!(problems.len(), 3);
    insta::assert_snapshot!(problems, @r#"
    terrarium.yaml:4:9: metadata.name: "Where2Eat" has capital letters; a name uses only lowercase letters, digits and "-"
      hint: write it as "where2eat"
    terrarium.yaml:11:12: spec.ttlDays: expected a whole number of days, found text "ninety"
    terrarium.yaml:13:5: spec.quotas.brust: unknown field "brust"
      hint: did you mean "burst"?
    "#);
    let first = problems.iter().next().unwrap();
    assert_eq!((first.line, first.column, first.path.as_str()), (4, 9, "metadata.name"));
}

#[test]
fn problems_in_every_part_are_reported_together() {
    let yaml = "\
apiVersion: terrarium.dev/v2
kind: MicroApp
metadata:
  name: where2eat
spec:
  owner: beckayu
  runtime: function
  functions:
    - route: /api/*
      entry: functions/api.ts
  quotas:
    memoryMiB: 8
    concurrency: lots
";
    insta::assert_snapshot!(render(yaml), @r#"
    terrarium.yaml:1:13: apiVersion: "terrarium.dev/v2" is not a valid apiVersion; use one of: terrarium.dev/v1
      hint: did you mean "terrarium.dev/v1"?
    terrarium.yaml:4:3: metadata: the required field "namespace" is missing
      hint: add it, for example: namespace: growth
    terrarium.yaml:6:10: spec.owner: "beckayu" does not say whether the owner is a user or a group
      hint: write user:beckayu for a person or group:beckayu for a group
    terrarium.yaml:10:14: spec.functions[0].entry: "functions/api.ts" is not a JavaScript module; the entry must end in .js or .mjs
      hint: compile TypeScript to JavaScript first and point to the .js file
    terrarium.yaml:12:16: spec.quotas.memoryMiB: must be from 16 to 4096 MiB, found 8
    terrarium.yaml:13:18: spec.quotas.concurrency: expected a whole number of requests, found text "lots"
    "#);
}

#[test]
fn diagnostics_are_sorted_and_typed() {
    let problems = load("apps/where2eat/terrarium.yaml", &app("ttlDays: 0\nburst: 4")).unwrap_err();
    let positions: Vec<(usize, usize)> = problems.iter().map(|problem| (problem.line, problem.column)).collect();
    assert_eq!(positions, [(11, 12), (12, 3)]);
    assert!(problems.has_errors());
    assert_eq!(problems.errors().count(), 2);
    assert_eq!(problems.warnings().count(), 0);
    let first = problems.iter().next().unwrap();
    assert_eq!(first.file, "apps/where2eat/terrarium.yaml");
    assert_eq!(first.path, "spec.ttlDays");
    assert_eq!(first.hint, None);
    let error: &dyn std::error::Error = &problems;
    assert!(error.to_string().starts_with("apps/where2eat/terrarium.yaml:11:12: spec.ttlDays: "));
    insta::assert_json_snapshot!(problems.iter().nth(1).unwrap(), @r#"
    {
      "severity": "error",
      "file": "apps/where2eat/terrarium.yaml",
      "line": 12,
      "column": 3,
      "path": "spec.burst",
      "message": "unknown field \"burst\"",
      "hint": "the fields allowed in spec are: owner, description, runtime, templateRef, static, functions, wasm, container, vars, access, secretsRef, ttlDays, allowedEgress, quotas, data, ai, slo"
    }
    "#);
}

#[test]
fn minimal_manifest_leaves_the_rest_to_policy() {
    let validated = load("terrarium.yaml", &app("")).unwrap();
    let spec = &validated.manifest().spec;
    assert_eq!(spec.static_site.as_ref().unwrap().dir, "public");
    assert_eq!((spec.quotas.as_ref(), spec.ttl_days, spec.access.as_ref()), (None, None, None));
    assert_eq!(validated.manifest().metadata.data_class(), None);
}

// ----- Reading YAML. -----

#[test]
fn yaml_syntax_errors() {
    check(
        "apiVersion: terrarium.dev/v1\nkind: [MicroApp\n",
        r#"
        terrarium.yaml:3:1: this is not valid YAML: while parsing a flow sequence, expected ',' or ']'
          hint: check the indentation of this line and the line before it; put quotes around values that contain ": " or " #", or that start with one of * & ! | > ' " % @ `
        "#,
    );
    check(
        "apiVersion: terrarium.dev/v1\nkind: MicroApp\nmetadata:\n\tname: x\n",
        r#"
        terrarium.yaml:4:2: this is not valid YAML: tabs disallowed within this context (block indentation)
          hint: indent with spaces; YAML does not allow tabs for indentation
        "#,
    );
    check(
        "",
        "terrarium.yaml:1:1: the file is empty\n  hint: a terrarium.yaml starts with the line apiVersion: terrarium.dev/v1",
    );
    check(
        "# only a comment\n",
        "terrarium.yaml:1:1: the file is empty\n  hint: a terrarium.yaml starts with the line apiVersion: terrarium.dev/v1",
    );
    check(
        "- a\n- b\n",
        "terrarium.yaml:1:1: expected a group of fields (apiVersion, kind, metadata, spec), found a list\n  hint: write the fields on the lines below, each indented by two more spaces",
    );
}

#[test]
fn duplicate_keys_are_each_reported() {
    check(
        &app("ttlDays: 30\nttlDays: 60\nquotas:\n  burst: 1\n  burst: 2"),
        r#"
        terrarium.yaml:12:3: spec.ttlDays: the field "ttlDays" appears twice here
          hint: it is already set on line 11; keep only one of them
        terrarium.yaml:15:5: spec.quotas.burst: the field "burst" appears twice here
          hint: it is already set on line 14; keep only one of them
        "#,
    );
    check(&app("vars:\n  A: 1\n  B: 1"), "ok");
}

#[test]
fn a_second_document_is_an_error() {
    check(
        &format!("{}---\napiVersion: terrarium.dev/v1\n", app("")),
        r#"
        terrarium.yaml:11:1: the file holds more than one YAML document; only the first one is read
          hint: keep one app per terrarium.yaml and remove the line with ---
        "#,
    );
    check(&format!("---\n{}...\n", app("")), "ok");
}

#[test]
fn tags_and_merge_keys_are_refused() {
    check(
        &app("ttlDays: !days 30"),
        r#"
        terrarium.yaml:11:12: spec.ttlDays: YAML tags like "!days" are not supported
          hint: remove the tag
        "#,
    );
    check(&app("ttlDays: !!int 30"), "ok");
    check(
        &app("quotas:\n  <<: { burst: 1 }"),
        r#"
        terrarium.yaml:12:5: spec.quotas["<<"]: merge keys (<<) are not supported
          hint: write the fields out in full
        "#,
    );
}

#[test]
fn aliases_work_within_limits() {
    check(&app("ai:\n  models: &models [chat-default]\ndata:\n  kv: true\nvars:\n  MODEL: chat-default"), "ok");
    let yaml = app("allowedEgress: &hosts [a.example.com]\nai:\n  models: *hosts");
    let validated = load("terrarium.yaml", &yaml).unwrap();
    assert_eq!(validated.manifest().spec.ai.as_ref().unwrap().models, Some(vec!["a.example.com".to_owned()]));
}

#[test]
fn billion_laughs_is_refused() {
    let mut yaml = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for level in 1..10 {
        let previous = format!("*a{}", level - 1);
        yaml.push_str(&format!("a{level}: &a{level} [{}]\n", vec![previous; 10].join(", ")));
    }
    check(
        &yaml,
        r#"
        terrarium.yaml:5:10: a4[0]: the file holds more than 20000 values, counting each copy that an alias (*name) makes
          hint: a manifest needs far fewer values; write them out instead of repeating anchors
        "#,
    );
}

#[test]
fn aliases_hidden_in_keys_are_counted() {
    let mut yaml = String::from("k0: &k0 [x, x, x, x, x, x, x, x, x, x]\n");
    for level in 1..8 {
        let previous = format!("*k{}", level - 1);
        yaml.push_str(&format!("k{level}: &k{level} {{ ? [{}] : x }}\n", vec![previous; 10].join(", ")));
    }
    let problems = load("terrarium.yaml", &yaml).unwrap_err();
    assert!(problems.to_string().contains("more than 20000 values"), "{problems}");
}

#[test]
fn deep_nesting_is_refused_without_recursion() {
    // Block sequences nest two characters at a time: 100 000 levels fit in 200 KB.
    let yaml = "- ".repeat(100_000) + "x\n";
    check(
        &yaml,
        r#"
        terrarium.yaml:1:65: [0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0]: the file nests lists and fields more than 32 levels deep
          hint: a manifest needs only a few levels; check the indentation
        "#,
    );
    let flow = "[".repeat(100_000);
    assert_eq!(load("terrarium.yaml", &flow).unwrap_err().len(), 1);
}

#[test]
fn huge_files_are_refused() {
    let yaml = app(&format!("description: \"{}\"", "x".repeat(300 * 1024)));
    check(
        &yaml,
        r#"
        terrarium.yaml:1:1: the file is 301 KiB; a manifest may be at most 256 KiB
          hint: a manifest only describes the app: keep code and data in other files
        "#,
    );
}

// ----- Fields and types. -----

#[test]
fn unknown_fields() {
    check(
        &app("quotas:\n  brust: 40"),
        r#"
        terrarium.yaml:12:5: spec.quotas.brust: unknown field "brust"
          hint: did you mean "burst"?
        "#,
    );
    check(
        &app("quotas:\n  speed: 40"),
        r#"
        terrarium.yaml:12:5: spec.quotas.speed: unknown field "speed"
          hint: the fields allowed in spec.quotas are: requestsPerSecond, burst, concurrency, monthlyRequests, cpuMsPerRequest, memoryMiB, monthlyBudget, kvStorageMiB, sqlStorageMiB
        "#,
    );
    check(
        &app("Static: {}").replacen("apiVersion", "apiversion", 1),
        r#"
        terrarium.yaml:1:1: apiversion: unknown field "apiversion"
          hint: did you mean "apiVersion"?
        terrarium.yaml:1:1: the required field "apiVersion" is missing
          hint: add it, for example: apiVersion: terrarium.dev/v1
        terrarium.yaml:11:3: spec.Static: unknown field "Static"
          hint: did you mean "static"?
        "#,
    );
    check(
        &app("").replace("spec:", "specification:"),
        r#"
        terrarium.yaml:1:1: the required field "spec" is missing
          hint: add it, for example: spec: with owner and runtime below it
        terrarium.yaml:6:1: specification: unknown field "specification"
          hint: the fields allowed here are: apiVersion, kind, metadata, spec
        "#,
    );
}

#[test]
fn control_plane_fields_are_ignored_with_a_warning() {
    check(
        &app("").replace("metadata:\n", "metadata:\n  uid: 0b4f\n  resourceVersion: \"42\"\n"),
        r#"
        ok
        terrarium.yaml:4:3: warning: metadata.uid: uid is written by the control plane and is ignored here
          hint: remove it; the file was probably copied from "kubectl get -o yaml"
        terrarium.yaml:5:3: warning: metadata.resourceVersion: resourceVersion is written by the control plane and is ignored here
          hint: remove it; the file was probably copied from "kubectl get -o yaml"
        "#,
    );
}

#[test]
fn wrong_types() {
    check(
        &app("ttlDays: ninety"),
        r#"terrarium.yaml:11:12: spec.ttlDays: expected a whole number of days, found text "ninety""#,
    );
    check(
        &app("ttlDays: \"90\""),
        r#"
        terrarium.yaml:11:12: spec.ttlDays: expected a whole number of days, found text "90"
          hint: remove the quotes so it is read as a number
        "#,
    );
    check(
        &app("ttlDays: 2.5"),
        "terrarium.yaml:11:12: spec.ttlDays: expected a whole number of days, found the number 2.5",
    );
    check(&app("ttlDays: [30]"), "terrarium.yaml:11:12: spec.ttlDays: expected a whole number of days, found a list");
    check(
        &app("description: 42"),
        r#"
        terrarium.yaml:11:16: spec.description: expected text, found the number 42
          hint: put quotes around it so it is read as text
        "#,
    );
    check(
        &app("data:\n  kv: yes"),
        r#"
        terrarium.yaml:12:9: spec.data.kv: expected true, false or { binding: NAME }, found text "yes"
          hint: write kv: true to bind it as env.KV
        "#,
    );
    check(&app("data:\n  kv:\n    binding: VOTES"), "ok");
    check(
        &app("data:\n  kv:\n    binding: 2fast"),
        r#"terrarium.yaml:13:16: spec.data.kv.binding: "2fast" is not a valid variable name; use letters, digits and "_", not starting with a digit"#,
    );
    check(
        &app("vars:\n  KV: x\ndata:\n  kv: true"),
        r#"
        terrarium.yaml:14:5: spec.data.kv: the KV binding KV has the name of a variable in spec.vars; env.KV can only be one of them
          hint: rename one of them
        "#,
    );
    check(
        &app("quotas: 20"),
        r#"
        terrarium.yaml:11:11: spec.quotas: expected a group of fields (requestsPerSecond, burst, concurrency, …), found the number 20
          hint: write the fields on the lines below, each indented by two more spaces
        "#,
    );
    check(
        &app("allowedEgress: api.example.com"),
        r#"
        terrarium.yaml:11:18: spec.allowedEgress: expected a list, found text "api.example.com"
          hint: write each item on its own line starting with "- ", or as [first, second]
        "#,
    );
    check(
        &app("slo:\n  availability: high"),
        r#"terrarium.yaml:12:19: spec.slo.availability: expected a number, found text "high""#,
    );
    check(
        &app("access:\n  visibility: 3"),
        "terrarium.yaml:12:17: spec.access.visibility: expected one of: private, team, org, public, found the number 3",
    );
    check(
        &app("").replace("metadata:\n  name: where2eat\n  namespace: growth\n", "metadata:\n"),
        r#"
        terrarium.yaml:3:9: metadata: expected a group of fields (name, namespace, labels, annotations), found nothing
          hint: write the fields on the lines below, each indented by two more spaces
        "#,
    );
    check(&app("{ ttlDays: 30 }: x"), "terrarium.yaml:11:3: spec: expected a field name, found a group of fields");
}

#[test]
fn empty_optional_fields_count_as_left_out() {
    check(&app("description:\nquotas:\nvars: {}\nallowedEgress: []"), "ok");
}

#[test]
fn long_values_are_shortened_in_messages() {
    check(
        &app(&format!("ttlDays: {}", "n".repeat(100))),
        &format!(
            r#"terrarium.yaml:11:12: spec.ttlDays: expected a whole number of days, found text "{}…""#,
            "n".repeat(40)
        ),
    );
}

// ----- Rules, each with a passing and a failing case. -----

#[test]
fn api_version_and_kind() {
    check(
        &app("").replace("kind: MicroApp", "kind: Deployment"),
        r#"terrarium.yaml:2:7: kind: "Deployment" is not a valid kind; use one of: MicroApp"#,
    );
    check(
        &app("").replace("terrarium.dev/v1", "apps/v1"),
        r#"terrarium.yaml:1:13: apiVersion: "apps/v1" is not a valid apiVersion; use one of: terrarium.dev/v1"#,
    );
}

#[test]
fn names_and_namespaces_are_dns_labels() {
    let with_name = |name: &str| app("").replace("name: where2eat", &format!("name: {name}"));
    check(&with_name("a"), "ok");
    check(&with_name(&"a".repeat(40)), "ok");
    check(&with_name("lunch-2-go"), "ok");
    check(
        &with_name(&"a".repeat(41)),
        &format!(
            r#"terrarium.yaml:4:9: metadata.name: "{}" is 41 characters long; a name may have at most 40"#,
            "a".repeat(41)
        ),
    );
    check(
        &with_name("where_2_eat"),
        r#"
        terrarium.yaml:4:9: metadata.name: "where_2_eat" contains "_"; a name uses only lowercase letters, digits and "-"
          hint: write it as "where-2-eat"
        "#,
    );
    check(
        &with_name("-where2eat"),
        r#"
        terrarium.yaml:4:9: metadata.name: "-where2eat" must start and end with a letter or a digit
          hint: write it as "where2eat"
        "#,
    );
    check(
        &with_name("\"\""),
        r#"terrarium.yaml:4:9: metadata.name: the name is empty; a name uses only lowercase letters, digits and "-""#,
    );
    check(
        &with_name("2048"),
        r#"
        terrarium.yaml:4:9: metadata.name: expected text, found the number 2048
          hint: put quotes around it so it is read as text
        "#,
    );
    check(&with_name("\"2048\""), "ok");
    check(
        &app("").replace("namespace: growth", "namespace: Growth Team"),
        r#"
        terrarium.yaml:5:14: metadata.namespace: "Growth Team" has capital letters; a namespace uses only lowercase letters, digits and "-"
          hint: write it as "growth-team"
        "#,
    );
}

#[test]
fn owner() {
    let with_owner = |owner: &str| app("").replace("owner: user:beckayu", &format!("owner: {owner}"));
    check(&with_owner("group:growth-admins"), "ok");
    check(&with_owner("user:00u1abcd@example.com"), "ok");
    check(
        &with_owner("team:growth"),
        r#"
        terrarium.yaml:7:10: spec.owner: "team:" is not a kind of owner; an owner is user:<subject> or group:<name>
          hint: write user:<subject> for a person or group:<name> for a group
        "#,
    );
    check(
        &with_owner("User:beckayu"),
        r#"
        terrarium.yaml:7:10: spec.owner: "User:" is not a kind of owner; an owner is user:<subject> or group:<name>
          hint: did you mean "user:beckayu"?
        "#,
    );
    check(
        &with_owner("\"group:\""),
        r#"
        terrarium.yaml:7:10: spec.owner: the owner's name is missing after "group:"
          hint: write user:<subject> for a person or group:<name> for a group
        "#,
    );
    check(
        &app("").replace("  owner: user:beckayu\n", ""),
        r#"
        terrarium.yaml:7:3: spec: the required field "owner" is missing
          hint: add it, for example: owner: user:<your user name>
        "#,
    );
}

#[test]
fn runtimes_and_their_sections() {
    let functions = "functions:\n  - route: /api/*\n    entry: functions/api.js";
    let static_site = "static:\n  dir: public";
    check(&spec(&format!("runtime: static\n{static_site}")), "ok");
    check(&spec(&format!("runtime: static+edge\n{static_site}\n{functions}")), "ok");
    check(&spec(&format!("runtime: function\n{functions}")), "ok");
    check(&spec("runtime: wasm\nwasm:\n  component: app.wasm"), "ok");
    check(&spec("runtime: container\ncontainer:\n  image: registry.example.com/team/app:1.0\n  port: 8080"), "ok");
    check(&spec(&format!("runtime: static\n{static_site}\nfunctions: []")), "ok");
    check(
        &spec(&format!("runtime: static\n{static_site}\n{functions}")),
        r#"
        terrarium.yaml:11:3: spec.functions: runtime "static" does not use functions; only runtime function or static+edge does
          hint: remove this section or change spec.runtime
        "#,
    );
    check(
        &spec("runtime: static"),
        r#"
        terrarium.yaml:8:12: spec: runtime "static" needs a static section with the folder of files to serve
          hint: add it to spec, for example: static: { dir: public }
        "#,
    );
    check(
        &spec(&format!("runtime: static+edge\n{static_site}")),
        r#"
        terrarium.yaml:8:12: spec: runtime "static+edge" needs at least one function
          hint: add it to spec, for example: functions: [{ route: /api/*, entry: functions/api.js }]
        "#,
    );
    check(
        &spec("runtime: function\nfunctions: []"),
        r#"
        terrarium.yaml:8:12: spec: runtime "function" needs at least one function
          hint: add it to spec, for example: functions: [{ route: /api/*, entry: functions/api.js }]
        "#,
    );
    check(
        &spec(&format!("runtime: function\n{functions}\n{static_site}")),
        r#"
        terrarium.yaml:12:3: spec.static: runtime "function" does not use static; only runtime static or static+edge does
          hint: remove this section or change spec.runtime
        "#,
    );
    check(
        &spec("runtime: wasm\ncontainer:\n  image: app\n  port: 80"),
        r#"
        terrarium.yaml:8:12: spec: runtime "wasm" needs a wasm section with the component to run
          hint: add it to spec, for example: wasm: { component: app.wasm }
        terrarium.yaml:9:3: spec.container: runtime "wasm" does not use container; only runtime container does
          hint: remove this section or change spec.runtime
        "#,
    );
    check(
        &spec("runtime: container"),
        r#"
        terrarium.yaml:8:12: spec: runtime "container" needs a container section with the image to run
          hint: add it to spec, for example: container: { image: registry.example.com/team/app:1.0, port: 8080 }
        "#,
    );
    check(
        &spec("runtime: lambda"),
        r#"
        terrarium.yaml:8:12: spec.runtime: "lambda" is not a valid runtime; use one of: static, static+edge, function, wasm, container
        "#,
    );
    check(
        &spec("runtime: Static\nstatic:\n  dir: public"),
        r#"
        terrarium.yaml:8:12: spec.runtime: "Static" is not a valid runtime; use one of: static, static+edge, function, wasm, container
          hint: did you mean "static"?
        "#,
    );
    // A section with a problem of its own is not also reported as missing.
    check(
        &spec("runtime: static\nstatic: public"),
        r#"
        terrarium.yaml:9:11: spec.static: expected a group of fields (dir, spa), found text "public"
          hint: write the fields on the lines below, each indented by two more spaces
        "#,
    );
}

#[test]
fn routes() {
    let with_functions = |functions: &str| spec(&format!("runtime: function\nfunctions:\n{}", indent(functions, 2)));
    check(&with_functions("- { route: /api/pick, entry: a.js }\n- { route: /api/*, entry: b.mjs }"), "ok");
    check(
        &with_functions("- { route: api, entry: a.js }"),
        r#"
        terrarium.yaml:10:16: spec.functions[0].route: route "api" must start with /
          hint: a route is a path inside the app, like /api/pick, or /api/* for every path under /api
        "#,
    );
    check(
        &with_functions("- { route: /api/*/x, entry: a.js }"),
        r#"
        terrarium.yaml:10:16: spec.functions[0].route: route "/api/*/x" may only end in /* (a prefix); * elsewhere is not supported
          hint: a route is a path inside the app, like /api/pick, or /api/* for every path under /api
        "#,
    );
    check(
        &with_functions("- { route: /api/*, entry: a.js }\n- { route: /api/*, entry: b.js }"),
        r#"
        terrarium.yaml:11:16: spec.functions[1].route: the route "/api/*" is already used by spec.functions[0]
          hint: each route may appear once; change or remove one of them
        "#,
    );
    check(
        &with_functions(
            "- { route: /api/*, entry: a.js }\n- { route: /api/pick, entry: b.js }\n- { route: /api/v2/*, entry: c.js }",
        ),
        r#"
        ok
        terrarium.yaml:11:16: warning: spec.functions[1].route: this function is never called: spec.functions[0] comes first and its route "/api/*" matches every path this one does
          hint: the first matching route wins; move this function above the other one
        terrarium.yaml:12:16: warning: spec.functions[2].route: this function is never called: spec.functions[0] comes first and its route "/api/*" matches every path this one does
          hint: the first matching route wins; move this function above the other one
        "#,
    );
    check(
        &with_functions("- { entry: a.js }"),
        r#"
        terrarium.yaml:10:7: spec.functions[0]: the required field "route" is missing
          hint: add it, for example: route: /api/*
        "#,
    );
}

#[test]
fn paths_are_relative_and_plain() {
    let with_entry = |entry: &str| spec(&format!("runtime: function\nfunctions:\n  - route: /*\n    entry: {entry}"));
    for good in ["api.js", "functions/api.mjs", "a/b/c.js"] {
        check(&with_entry(good), "ok");
    }
    check(
        &with_entry("../api.js"),
        r#"terrarium.yaml:11:14: spec.functions[0].entry: "../api.js" uses ".." to leave the app's folder; paths must stay inside it"#,
    );
    check(
        &with_entry("/srv/api.js"),
        r#"
        terrarium.yaml:11:14: spec.functions[0].entry: "/srv/api.js" starts with "/"; paths are relative to the app's folder
          hint: write it as "srv/api.js"
        "#,
    );
    check(
        &with_entry("'functions\\api.js'"),
        r#"
        terrarium.yaml:11:14: spec.functions[0].entry: "functions\api.js" uses "\"; paths use "/" between folders
          hint: write it as "functions/api.js"
        "#,
    );
    check(
        &with_entry("./functions//api.js"),
        r#"
        terrarium.yaml:11:14: spec.functions[0].entry: "./functions//api.js" is not written plainly
          hint: write it as "functions/api.js"
        "#,
    );
    check(
        &with_entry("functions/api.py"),
        r#"terrarium.yaml:11:14: spec.functions[0].entry: "functions/api.py" is not a JavaScript module; the entry must end in .js or .mjs"#,
    );
    let with_dir = |dir: &str| spec(&format!("runtime: static\nstatic:\n  dir: {dir}\n  spa: true"));
    check(&with_dir("site/public"), "ok");
    check(
        &with_dir("public/"),
        r#"
        terrarium.yaml:10:10: spec.static.dir: "public/" is not written plainly
          hint: write it as "public"
        "#,
    );
    check(
        &with_dir("."),
        r#"
        terrarium.yaml:10:10: spec.static.dir: "." does not name anything inside the app's folder
          hint: name a folder or file inside it, like public or functions/api.js
        "#,
    );
    check(&with_dir("\"\""), r#"terrarium.yaml:10:10: spec.static.dir: the path is empty"#);
}

#[test]
fn wasm_and_container() {
    check(
        &spec("runtime: wasm\nwasm:\n  component: app.js"),
        r#"terrarium.yaml:10:16: spec.wasm.component: "app.js" is not a WebAssembly file; it must end in .wasm"#,
    );
    check(
        &spec("runtime: wasm\nwasm:\n  component: ../app.wasm"),
        r#"terrarium.yaml:10:16: spec.wasm.component: "../app.wasm" uses ".." to leave the app's folder; paths must stay inside it"#,
    );
    check(
        &spec("runtime: container\ncontainer:\n  image: https://registry.example.com/app\n  port: 0"),
        r#"
        terrarium.yaml:10:12: spec.container.image: "https://registry.example.com/app" is a URL, not an image reference
          hint: leave out the scheme, like registry.example.com/team/app:1.2
        terrarium.yaml:11:11: spec.container.port: must be from 1 to 65535, found 0
        "#,
    );
    check(
        &spec("runtime: container\ncontainer:\n  image: app\n  port: 70000"),
        r#"terrarium.yaml:11:11: spec.container.port: must be from 1 to 65535, found 70000"#,
    );
    check(
        &spec("runtime: container\ncontainer: { port: 8080 }"),
        r#"
        terrarium.yaml:9:14: spec.container: the required field "image" is missing
          hint: add it, for example: image: registry.example.com/team/app:1.0
        "#,
    );
}

#[test]
fn vars() {
    let validated =
        load("terrarium.yaml", &app("vars:\n  CITY: Lisbon\n  _LIMIT: 10\n  RATIO: 1.50\n  DEBUG: false\n  CODE: 007"))
            .unwrap();
    let vars = validated.manifest().spec.vars.as_ref().unwrap();
    let pairs: Vec<(&str, &str)> = vars.iter().map(|(name, value)| (name.as_str(), value.as_str())).collect();
    assert_eq!(pairs, [("CITY", "Lisbon"), ("CODE", "007"), ("DEBUG", "false"), ("RATIO", "1.50"), ("_LIMIT", "10")]);
    check(
        &app("vars:\n  default-city: Lisbon\n  9LIVES: x"),
        r#"
        terrarium.yaml:12:5: spec.vars.default-city: "default-city" is not a valid variable name; use letters, digits and "_", not starting with a digit
          hint: write it as "default_city"
        terrarium.yaml:13:5: spec.vars.9LIVES: "9LIVES" is not a valid variable name; use letters, digits and "_", not starting with a digit
        "#,
    );
    check(
        &app("vars:\n  CITY:\n  CITIES: [Lisbon, Porto]"),
        r#"
        terrarium.yaml:12:9: spec.vars.CITY: the variable has no value
          hint: write CITY: "" for an empty value
        terrarium.yaml:13:13: spec.vars.CITIES: expected text, a number or true/false, found a list
        "#,
    );
    check(
        &app("vars:\n  MAPS_API_KEY: abc"),
        r#"
        ok
        terrarium.yaml:12:5: warning: spec.vars.MAPS_API_KEY: vars are not secret: anyone who can read the app's manifest sees them
          hint: keep secrets in the secret store that spec.secretsRef names
        "#,
    );
    check(
        &app("vars: [CITY]"),
        "terrarium.yaml:11:9: spec.vars: expected a group of names and values (NAME: value), found a list\n  hint: write the fields on the lines below, each indented by two more spaces",
    );
}

#[test]
fn secrets_ref() {
    let with_ref = |value: &str| app(&format!("secretsRef: {value}"));
    for good in ["terrarium://growth/where2eat", "vault://microapp/where2eat", "vault://kv/teams/growth/where2eat"] {
        check(&with_ref(good), "ok");
    }
    check(
        &with_ref("sk-live-0123456789abcdef"),
        r#"
        terrarium.yaml:11:15: spec.secretsRef: this looks like a secret value; secrets never go in the manifest
          hint: store the secret in terrarium's secret store or in Vault and write where it is here, like terrarium://<namespace>/<app> or vault://<mount>/<path>; if this file was shared or committed, treat the secret as leaked and replace it
        "#,
    );
    check(
        &with_ref("where2eat"),
        r#"
        terrarium.yaml:11:15: spec.secretsRef: secretsRef must say where the secrets are kept: terrarium://<namespace>/<app> or vault://<mount>/<path>
          hint: it names a place, never a secret value
        "#,
    );
    check(
        &with_ref("postgres://admin:hunter2@db.example.com/app"),
        r#"
        terrarium.yaml:11:15: spec.secretsRef: secretsRef must be terrarium://<namespace>/<app> or vault://<mount>/<path>
          hint: it names where secrets are kept and never holds a secret value, a password or a connection string
        "#,
    );
    check(
        &with_ref("terrarium://growth"),
        r#"terrarium.yaml:11:15: spec.secretsRef: a terrarium:// reference names a namespace and an app, like terrarium://growth/where2eat"#,
    );
    for traversal in ["vault://microapp/../root", "vault://kv/growth/%2e%2e/finance", "vault://kv/growth\\..\\finance"]
    {
        check(
            &with_ref(traversal),
            r#"
        terrarium.yaml:11:15: spec.secretsRef: a vault:// reference names a mount and a path, like vault://microapp/where2eat
          hint: parts are separated by single "/" and use only letters, digits, '_', '-' and '.' (not "." or "..")
        "#,
        );
    }
    check(
        &with_ref("123456789012"),
        r#"
        terrarium.yaml:11:15: spec.secretsRef: expected a reference like terrarium://<namespace>/<app>, found a number or true/false
          hint: it names where secrets are kept, never a secret value
        "#,
    );
}

#[test]
fn secret_values_never_appear_in_messages() {
    for secret in [
        "ghp_0123456789abcdefghij",
        "correct-horse-battery-staple-42",
        "postgres://admin:hunter2@db/app",
        "9876543210123",
    ] {
        let problems = load("terrarium.yaml", &app(&format!("secretsRef: {secret}"))).unwrap_err();
        let rendered = problems.to_string();
        assert!(!rendered.contains(secret), "{rendered}");
        assert!(!rendered.contains("hunter2"), "{rendered}");
    }
}

#[test]
fn ttl_days() {
    check(&app("ttlDays: 1"), "ok");
    check(&app("ttlDays: 3650"), "ok");
    check(&app("ttlDays: 0"), "terrarium.yaml:11:12: spec.ttlDays: must be from 1 to 3650 days, found 0");
    check(&app("ttlDays: 3651"), "terrarium.yaml:11:12: spec.ttlDays: must be from 1 to 3650 days, found 3651");
    check(&app("ttlDays: -5"), "terrarium.yaml:11:12: spec.ttlDays: must be from 1 to 3650 days, found -5");
}

#[test]
fn allowed_egress() {
    check(&app("allowedEgress:\n  - api.example.com\n  - https://maps.example.com:8443"), "ok");
    check(
        &app("allowedEgress:\n  - api.example.com\n  - \"\"\n  - maps example com"),
        r#"
        terrarium.yaml:13:7: spec.allowedEgress[1]: the entry is empty; write a host such as "api.example.com"
        terrarium.yaml:14:7: spec.allowedEgress[2]: the entry contains spaces or control characters; write only the host, such as "api.example.com"
        "#,
    );
    // The egress crate's foot-gun refusals surface at validation time, on the builder's machine.
    check(
        &app("allowedEgress:\n  - \"*\"\n  - \"*.com\"\n  - ftp://files.example.com\n  - \"*.co.uk\""),
        r#"
        terrarium.yaml:12:7: spec.allowedEgress[0]: "*" would allow every host on the internet; list the hosts the app calls, such as "api.example.com" or "*.example.com"
        terrarium.yaml:13:7: spec.allowedEgress[1]: "*.com" would allow every site registered under the public suffix ".com"; name the domain, such as "*.example.com"
        terrarium.yaml:14:7: spec.allowedEgress[2]: only http and https are supported, not "ftp"; write "https://files.example.com" or just the host
        terrarium.yaml:15:7: spec.allowedEgress[3]: "*.co.uk" would allow every site registered under the public suffix ".co.uk"; name the domain, such as "*.example.co.uk"
        "#,
    );
    check(
        &app("allowedEgress:\n  - 443"),
        "terrarium.yaml:12:7: spec.allowedEgress[0]: expected text, found the number 443\n  hint: put quotes around it so it is read as text",
    );
}

#[test]
fn quotas() {
    check(
        &app(
            "quotas:\n  requestsPerSecond: 1\n  burst: 1\n  concurrency: 1\n  monthlyRequests: 1\n  cpuMsPerRequest: 60000\n  memoryMiB: 4096\n  monthlyBudget: { amount: 0, currency: EUR }",
        ),
        "ok",
    );
    check(
        &app("quotas:\n  memoryMiB: 16\n  cpuMsPerRequest: 1\n  monthlyBudget: { amount: 12.50, currency: USD }"),
        "ok",
    );
    check(
        &app(
            "quotas:\n  requestsPerSecond: 0\n  burst: 0\n  concurrency: -1\n  monthlyRequests: 0\n  cpuMsPerRequest: 60001\n  memoryMiB: 5000",
        ),
        r#"
        terrarium.yaml:12:24: spec.quotas.requestsPerSecond: must be at least 1, found 0
        terrarium.yaml:13:12: spec.quotas.burst: must be at least 1, found 0
        terrarium.yaml:14:18: spec.quotas.concurrency: must be at least 1, found -1
        terrarium.yaml:15:22: spec.quotas.monthlyRequests: must be at least 1, found 0
        terrarium.yaml:16:22: spec.quotas.cpuMsPerRequest: must be from 1 to 60000 milliseconds, found 60001
        terrarium.yaml:17:16: spec.quotas.memoryMiB: must be from 16 to 4096 MiB, found 5000
        "#,
    );
    check(
        &app("quotas:\n  monthlyBudget: { amount: -1, currency: usd }"),
        r#"
        terrarium.yaml:12:30: spec.quotas.monthlyBudget.amount: must be 0 or more, found -1
        terrarium.yaml:12:44: spec.quotas.monthlyBudget.currency: "usd" is not a currency code; use three capital letters like USD or EUR
          hint: write it as "USD"
        "#,
    );
    check(
        &app("quotas:\n  monthlyBudget: { amount: .nan, currency: EURO }"),
        r#"
        terrarium.yaml:12:30: spec.quotas.monthlyBudget.amount: must be 0 or more, found NaN
        terrarium.yaml:12:46: spec.quotas.monthlyBudget.currency: "EURO" is not a currency code; use three capital letters like USD or EUR
        "#,
    );
    check(
        &app("quotas:\n  monthlyBudget: { amount: 25 }"),
        r#"
        terrarium.yaml:12:20: spec.quotas.monthlyBudget: the required field "currency" is missing
          hint: add it, for example: currency: USD
        "#,
    );
}

#[test]
fn slo() {
    check(&app("slo:\n  availability: 99.95\n  latencyP95Ms: 1"), "ok");
    check(&app("slo:\n  availability: 99"), "ok");
    check(
        &app("slo:\n  availability: 100\n  latencyP95Ms: 0"),
        r#"
        terrarium.yaml:12:19: spec.slo.availability: must be more than 0 and less than 100 (a percentage like 99.5), found 100
        terrarium.yaml:13:19: spec.slo.latencyP95Ms: must be at least 1, found 0
        "#,
    );
    check(
        &app("slo:\n  availability: 0"),
        "terrarium.yaml:12:19: spec.slo.availability: must be more than 0 and less than 100 (a percentage like 99.5), found 0",
    );
}

#[test]
fn labels_and_annotations() {
    let with_metadata =
        |lines: &str| app("").replace("  namespace: growth\n", &format!("  namespace: growth\n{}", indent(lines, 2)));
    check(
        &with_metadata(
            "labels:\n  dataClass: restricted\n  app.kubernetes.io/part-of: lunch\n  tier: \"\"\nannotations:\n  example.com/notes: \"Anything, even: this.\"",
        ),
        "ok",
    );
    check(
        &with_metadata("labels:\n  dataClass: secret"),
        r#"
        terrarium.yaml:7:16: metadata.labels.dataClass: "secret" is not a valid data class; use one of: public, internal, confidential, restricted
        "#,
    );
    check(
        &with_metadata("labels:\n  dataClass: Internal"),
        r#"
        terrarium.yaml:7:16: metadata.labels.dataClass: "Internal" is not a valid data class; use one of: public, internal, confidential, restricted
          hint: did you mean "internal"?
        "#,
    );
    check(
        &with_metadata("labels:\n  team name: growth\n  Example.com/x: y\n  cost-center: \"12 34\"\n  enabled: true"),
        r#"
        terrarium.yaml:7:5: metadata.labels["team name"]: "team name" is not a valid key
          hint: keys are up to 63 letters, digits, "-", "_" and ".", starting and ending with a letter or digit, optionally after a prefix like example.com/
        terrarium.yaml:8:5: metadata.labels["Example.com/x"]: the prefix "Example.com" of "Example.com/x" is not a domain name
          hint: a prefix is a lowercase domain name like example.com
        terrarium.yaml:9:18: metadata.labels.cost-center: "12 34" is not a valid label value
          hint: label values are up to 63 letters, digits, "-", "_" and ".", starting and ending with a letter or digit
        terrarium.yaml:10:14: metadata.labels.enabled: expected text, found true
          hint: put quotes around it so it is read as text
        "#,
    );
    check(
        &with_metadata(&format!("labels:\n  {}: x", "k".repeat(64))),
        &format!(
            "terrarium.yaml:7:5: metadata.labels.{k}: \"{k}\" is not a valid key\n  hint: keys are up to 63 letters, digits, \"-\", \"_\" and \".\", starting and ending with a letter or digit, optionally after a prefix like example.com/",
            k = "k".repeat(64)
        ),
    );
    check(
        &with_metadata("annotations:\n  -notes: x"),
        r#"
        terrarium.yaml:7:5: metadata.annotations.-notes: "-notes" is not a valid key
          hint: keys are up to 63 letters, digits, "-", "_" and ".", starting and ending with a letter or digit, optionally after a prefix like example.com/
        "#,
    );
}

#[test]
fn enums() {
    for visibility in ["private", "team", "org", "public"] {
        check(&app(&format!("access:\n  visibility: {visibility}")), "ok");
    }
    check(
        &app("access:\n  visibility: everyone"),
        r#"terrarium.yaml:12:17: spec.access.visibility: "everyone" is not a valid visibility; use one of: private, team, org, public"#,
    );
    for isolation in ["shared", "schema", "isolated"] {
        check(&app(&format!("data:\n  sql: {{ isolation: {isolation} }}")), "ok");
    }
    check(
        &app("data:\n  sql: { isolation: isolate }"),
        r#"
        terrarium.yaml:12:23: spec.data.sql.isolation: "isolate" is not a valid isolation; use one of: shared, schema, isolated
          hint: did you mean "isolated"?
        "#,
    );
    for pii in ["mask", "block", "allow"] {
        check(&app(&format!("ai:\n  pii: {pii}")), "ok");
    }
    check(
        &app("ai:\n  pii: redact"),
        r#"terrarium.yaml:12:10: spec.ai.pii: "redact" is not a valid pii mode; use one of: mask, block, allow"#,
    );
}

#[test]
fn words_in_lists() {
    check(&app("access:\n  groups: [growth-admins, lunch]\nai:\n  models: [chat-default, embed-small]"), "ok");
    check(
        &app("access:\n  groups: [growth admins]\nai:\n  models: [\"\"]"),
        r#"
        terrarium.yaml:12:14: spec.access.groups[0]: "growth admins" contains a space; a group name is a single word
        terrarium.yaml:14:14: spec.ai.models[0]: the model name is empty
        "#,
    );
}

#[test]
fn data_and_template_ref() {
    check(
        &app("templateRef: static-edge@1\ndata:\n  kv: false\n  vectors: { piiRedaction: false, ttlDays: 3650 }"),
        "ok",
    );
    check(
        &app("templateRef: static-edge\ndata:\n  vectors: { ttlDays: 0 }"),
        r#"
        terrarium.yaml:11:16: spec.templateRef: "static-edge" is not a template reference
          hint: write <template>@<version>, like static-edge@1
        terrarium.yaml:13:25: spec.data.vectors.ttlDays: must be from 1 to 3650 days, found 0
        "#,
    );
    check(&app("data:\n  vectors: { binding: WIKI, dimensions: 768 }"), "ok");
    check(
        &app("data:\n  kv: { binding: WIKI }\n  vectors: { binding: WIKI, dimensions: 2000 }"),
        r#"
        terrarium.yaml:12:5: spec.data.vectors.binding: the KV and vectors bindings are both named WIKI; env.WIKI can only be one of them
          hint: write binding: ANOTHER_NAME under vectors
        terrarium.yaml:13:43: spec.data.vectors.dimensions: must be from 1 to 1536 dimensions, found 2000
        "#,
    );
}

// ----- Types and the schema. -----

#[test]
fn spellings_match_serde() {
    fn check_choice<T: Choice + serde::Serialize>() {
        for choice in T::ALL {
            assert_eq!(serde_json::to_value(choice).unwrap(), choice.as_str());
        }
    }
    check_choice::<crate::ApiVersion>();
    check_choice::<Kind>();
    check_choice::<Runtime>();
    check_choice::<Visibility>();
    check_choice::<SqlIsolation>();
    check_choice::<PiiMode>();
    check_choice::<DataClass>();
}

#[test]
fn manifest_round_trips_through_json() {
    let manifest = load("terrarium.yaml", FULL_EXAMPLE).unwrap().into_manifest();
    let json = serde_json::to_value(&manifest).unwrap();
    assert_eq!(json["spec"]["owner"], "user:beckayu");
    assert_eq!(json["spec"]["secretsRef"], "vault://microapp/where2eat");
    assert_eq!(json["spec"]["quotas"]["memoryMiB"], 64);
    assert_eq!(json["spec"]["static"]["dir"], "public");
    assert!(json["spec"].get("wasm").is_none());
    let back: crate::MicroApp = serde_json::from_value(json).unwrap();
    assert_eq!(back, manifest);
    assert!(serde_json::from_value::<Owner>(serde_json::json!("beckayu")).is_err());
    assert!(serde_json::from_value::<SecretsRef>(serde_json::json!("hunter2")).is_err());
    assert_eq!("group:growth".parse::<Owner>(), Ok(Owner::Group("growth".into())));
    assert_eq!(
        "terrarium://growth/where2eat".parse::<SecretsRef>(),
        Ok(SecretsRef::Terrarium { namespace: "growth".into(), app: "where2eat".into() })
    );
}

#[test]
fn schema_is_strict_and_documented() {
    let schema = json_schema();
    assert_eq!(schema["title"], "MicroApp");
    assert_eq!(schema["additionalProperties"], false);
    assert_eq!(schema["required"], serde_json::json!(["apiVersion", "kind", "metadata", "spec"]));
    assert_eq!(schema["properties"]["status"]["deprecated"], true);
    // Every object with fixed properties refuses unknown ones.
    let definitions = schema["$defs"].as_object().unwrap();
    for (name, definition) in definitions {
        if definition.get("properties").is_some() {
            assert_eq!(definition["additionalProperties"], false, "{name}");
        }
    }
    let quotas = &definitions["Quotas"]["properties"];
    assert!(quotas["burst"]["description"].as_str().unwrap().contains("burst"));
    assert!(quotas.get("memoryMiB").is_some());
    let spec = &definitions["Spec"]["properties"];
    assert!(spec.get("static").is_some() && spec.get("vars").is_some());
    insta::assert_json_snapshot!("schema", schema);
}

#[test]
fn schema_knows_every_field_the_decoder_knows() {
    let schema = json_schema();
    let spec_fields: Vec<&String> = schema["$defs"]["Spec"]["properties"].as_object().unwrap().keys().collect();
    let mut expected: Vec<&str> = crate::decode::SPEC_FIELDS.to_vec();
    expected.sort_unstable();
    let mut actual: Vec<&str> = spec_fields.iter().map(|field| field.as_str()).collect();
    actual.sort_unstable();
    assert_eq!(actual, expected);
}

#[test]
fn windows_line_endings_and_byte_order_mark() {
    let windows = format!("\u{feff}{}", app("ttlDays: 30").replace('\n', "\r\n"));
    check(&windows, "ok");
}

/// Mutates the full example many times over (deleting, repeating and replacing characters) and
/// checks that loading never panics and that every failure says where and what.
#[test]
fn damaged_manifests_never_panic() {
    let alphabet: Vec<char> = " \n-:#[]{}&*!|>'\",?%@`\t0a~.".chars().collect();
    let original: Vec<char> = FULL_EXAMPLE.chars().collect();
    // A small xorshift generator keeps the test deterministic without another dependency.
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = |bound: usize| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state % bound as u64) as usize
    };
    for _ in 0..2000 {
        let mut chars = original.clone();
        for _ in 0..1 + next(4) {
            let at = next(chars.len());
            match next(3) {
                0 => {
                    chars.remove(at);
                }
                1 => chars.insert(at, chars[at]),
                _ => chars[at] = alphabet[next(alphabet.len())],
            }
        }
        let yaml: String = chars.into_iter().collect();
        if let Err(problems) = load("terrarium.yaml", &yaml) {
            assert!(problems.has_errors(), "{yaml}");
            for problem in &problems {
                assert!(problem.line >= 1 && problem.column >= 1, "{yaml}\n{problem}");
                assert!(!problem.message.is_empty());
            }
        }
    }
}
