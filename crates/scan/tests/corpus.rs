//! The secret-scanning corpus: positives (one secret each, with the rule that must find it) and
//! tricky negatives (things that look like secrets and are not). Prints precision and recall.
//!
//! The secrets are synthetic: built here from a fixed-seed generator in each provider's format,
//! so no real credential, and no literal that other scanners would flag, lives in the repository.

use scan::Scanner;

/// A deterministic generator of token characters.
struct Chars(u64);

impl Chars {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        self.0 >> 33
    }

    fn from(&mut self, alphabet: &str, n: usize) -> String {
        let alphabet: Vec<char> = alphabet.chars().collect();
        (0..n).map(|_| alphabet[(self.next() as usize) % alphabet.len()]).collect()
    }
}

const ALNUM: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
const UPPER_NUM: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
const B64: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const URLSAFE: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
const LETTERS: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const DIGITS: &str = "0123456789";

/// (file, contents, the rule that must report it).
fn positives() -> Vec<(String, String, &'static str)> {
    let mut g = Chars(42);
    let mut samples = Vec::new();
    let mut add = |file: &str, contents: String, rule: &'static str| samples.push((file.to_owned(), contents, rule));
    for prefix in ["AKIA", "ASIA", "AKIA"] {
        let key = format!("{prefix}{}", g.from(UPPER_NUM, 16));
        add("functions/aws.js", format!("const accessKeyId = \"{key}\";"), "aws-access-key-id");
    }
    for _ in 0..2 {
        add(
            "functions/s3.js",
            format!("const aws_secret_access_key = \"{}\";", g.from(B64, 40)),
            "aws-secret-access-key",
        );
    }
    add("config.py", format!("AWS_SECRET = '{}'", g.from(B64, 40)), "aws-secret-access-key");
    for _ in 0..3 {
        add(
            "public/maps.html",
            format!(
                "<script src=\"https://maps.googleapis.com/maps/api/js?key=AIza{}\"></script>",
                g.from(URLSAFE, 35)
            ),
            "gcp-api-key",
        );
    }
    add(
        "sa.json",
        "{\n  \"type\": \"service_account\",\n  \"project_id\": \"acme-prod\"\n}".to_owned(),
        "gcp-service-account-key",
    );
    for _ in 0..2 {
        add(
            "functions/blob.js",
            format!(
                "const conn = \"DefaultEndpointsProtocol=https;AccountName=acme;AccountKey={}==;EndpointSuffix=core.windows.net\";",
                g.from(B64, 86)
            ),
            "azure-storage-account-key",
        );
    }
    add(
        "functions/graph.js",
        format!("const clientSecret = \"{}8Q~{}\";", g.from(ALNUM, 3), g.from(ALNUM, 34)),
        "azure-ad-client-secret",
    );
    for prefix in ["ghp", "gho", "ghs", "ghu", "ghr"] {
        add(
            "functions/gh.js",
            format!("fetch(url, {{ headers: {{ authorization: \"token {prefix}_{}\" }} }});", g.from(ALNUM, 36)),
            "github-token",
        );
    }
    add(
        "functions/gh2.js",
        format!("const pat = \"github_pat_{}\";", g.from(&format!("{ALNUM}_"), 82)),
        "github-fine-grained-token",
    );
    for _ in 0..2 {
        add("functions/gitlab.ts", format!("const token = 'glpat-{}';", g.from(URLSAFE, 20)), "gitlab-token");
    }
    for prefix in ["sk-", "sk-proj-", "sk-svcacct-"] {
        add(
            "functions/ai.js",
            format!(
                "const openai = new OpenAI({{ apiKey: \"{prefix}{}T3BlbkFJ{}\" }});",
                g.from(URLSAFE, 24),
                g.from(URLSAFE, 24)
            ),
            "openai-api-key",
        );
    }
    for _ in 0..3 {
        add(
            "functions/claude.js",
            format!("const key = \"sk-ant-api03-{}\";", g.from(URLSAFE, 95)),
            "anthropic-api-key",
        );
    }
    for _ in 0..2 {
        add("functions/hf.py", format!("HF_TOKEN = \"hf_{}\"", g.from(LETTERS, 34)), "huggingface-token");
    }
    for kind in ["xoxb", "xoxp"] {
        add(
            "functions/slack.js",
            format!("const slack = \"{kind}-{}-{}-{}\";", g.from(DIGITS, 12), g.from(DIGITS, 13), g.from(ALNUM, 24)),
            "slack-token",
        );
    }
    add(
        "functions/notify.js",
        format!(
            "await fetch(\"https://hooks.slack.com/services/T{}/B{}/{}\", {{ method: \"POST\" }});",
            g.from(UPPER_NUM, 9),
            g.from(UPPER_NUM, 9),
            g.from(ALNUM, 24)
        ),
        "slack-webhook-url",
    );
    for prefix in ["sk_live_", "rk_live_"] {
        add(
            "functions/pay.js",
            format!("const stripe = Stripe(\"{prefix}{}\");", g.from(ALNUM, 32)),
            "stripe-secret-key",
        );
    }
    for kind in ["RSA ", "EC ", "OPENSSH ", ""] {
        add(
            "keys/deploy.pem",
            format!("-----BEGIN {kind}PRIVATE KEY-----\n{}\n-----END {kind}PRIVATE KEY-----\n", g.from(B64, 64)),
            "private-key",
        );
    }
    for _ in 0..3 {
        add(
            "functions/auth.js",
            format!(
                "const session = \"eyJ{}.eyJ{}.{}\";",
                g.from(URLSAFE, 30),
                g.from(URLSAFE, 60),
                g.from(URLSAFE, 43)
            ),
            "jwt",
        );
    }
    add("functions/db.js", format!("const password = \"{}\";", g.from(ALNUM, 20)), "generic-secret-assignment");
    add("settings.yaml", format!("api_key: \"{}\"", g.from(ALNUM, 32)), "generic-secret-assignment");
    add("functions/mail.js", format!("const SENDGRID_TOKEN = '{}';", g.from(URLSAFE, 40)), "generic-secret-assignment");
    add("functions/x.go", format!("clientSecret := \"{}\"", g.from(ALNUM, 28)), "generic-secret-assignment");
    add("app.json", format!("{{ \"webhookSecret\": \"{}\" }}", g.from(ALNUM, 24)), "generic-secret-assignment");
    // Keys of formats no vendor rule knows, under names with key or auth in them.
    add("functions/ai.js", format!("const KEY = \"sk-proj-{}\";", g.from(URLSAFE, 48)), "generic-key-assignment");
    add(
        "functions/weather.js",
        format!("const WEATHER_KEY = \"{}\";", g.from("0123456789abcdef", 32)),
        "generic-key-assignment",
    );
    add("functions/crm.js", format!("const auth = '{}';", g.from(ALNUM, 28)), "generic-key-assignment");
    add("config.toml", format!("license_key = \"{}\"", g.from(UPPER_NUM, 25)), "generic-key-assignment");
    add("functions/maps.ts", format!("const mapsKey: string = \"{}\";", g.from(URLSAFE, 39)), "generic-key-assignment");
    // Literal Authorization values.
    add(
        "functions/crm.js",
        format!("fetch(url, {{ headers: {{ Authorization: \"Bearer {}\" }} }});", g.from(URLSAFE, 40)),
        "authorization-header-value",
    );
    add(
        "functions/legacy.js",
        format!("headers.set('authorization', 'Basic {}');", g.from(B64, 28)),
        "authorization-header-value",
    );
    add(
        "functions/api.py",
        format!("headers = {{\"Authorization\": \"bearer {}\"}}", g.from(ALNUM, 36)),
        "authorization-header-value",
    );
    samples
}

/// Things that look like secrets and are not.
fn negatives() -> Vec<(String, String)> {
    let mut g = Chars(7);
    let samples: Vec<(&str, String)> = vec![
        ("functions/a.js", "const apiKey = env.MAPS_API_KEY;".into()),
        ("functions/b.js", "const token = process.env.GITHUB_TOKEN;".into()),
        ("functions/c.js", "const password = \"\";".into()),
        ("functions/d.js", "const password = \"changeme\";".into()),
        ("functions/e.js", "const apiKey = \"YOUR_API_KEY_HERE\";".into()),
        ("functions/f.js", "const secret = \"<your-secret>\";".into()),
        ("functions/g.js", "const token = \"xxxxxxxxxxxxxxxxxxxxxxxx\";".into()),
        ("README.md", "Set `MAPS_KEY` with `terrarium secrets set demo/app MAPS_KEY`.".into()),
        ("docs.md", "AWS keys look like AKIAIOSFODNN7EXAMPLE; never paste one.".into()),
        ("public/app.css", ".button { color: #ff00aa; background: #0a0b0c; }".into()),
        ("public/logo.svg", format!("<svg><path d=\"M{}\"/></svg>", g.from(DIGITS, 60))),
        ("package-lock.json", format!("\"integrity\": \"sha512-{}==\"", g.from(B64, 86))),
        ("functions/h.js", format!("const commit = \"{}\";", g.from("0123456789abcdef", 40))),
        ("functions/i.js", "const id = \"3f2a9c1e-8b7d-4e6f-a5c4-1d2e3f4a5b6c\";".into()),
        ("keys/public.pem", format!("-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----", g.from(B64, 64))),
        ("functions/j.js", "// Use a private key from the secret store, never a BEGIN line in code.".into()),
        ("functions/k.js", "const tokenize = (text) => text.split(/\\s+/);".into()),
        ("functions/l.js", "const passwordHint = \"at least twelve characters\";".into()),
        ("functions/m.js", "if (password.length < 12) throw new Error(\"too short\");".into()),
        ("functions/n.js", "const secretsRef = \"terrarium://growth/where2eat\";".into()),
        ("functions/o.js", "const skip = \"sk-not-a-real-key\";".into()),
        ("functions/p.js", "const url = \"https://hooks.slack.com/services/\" + env.SLACK_PATH;".into()),
        ("functions/q.js", "const ghp = \"ghp_short\";".into()),
        ("functions/r.js", "const key = \"AKIA\" + suffix;".into()),
        ("functions/s.js", "const hf = \"hf_transfer\";".into()),
        ("functions/t.js", "const model = \"gpt-4o-mini\"; const region = \"eu-west-1\";".into()),
        ("functions/u.js", "const token = \"aaaaaaaaaaaaaaaaaaaaaaaa\";".into()),
        ("functions/v.js", "const secret = \"abcabcabcabcabcabcabc\";".into()),
        ("functions/w.js", "const apiKey = \"${API_KEY}\";".into()),
        ("functions/x.js", "const jwtLike = \"eyJhbGciOi\";".into()),
        ("public/index.html", "<input type=\"password\" name=\"password\" autocomplete=\"current-password\">".into()),
        ("functions/y.js", format!("const pixel = \"data:image/png;base64,{}\";", g.from(B64, 120))),
        ("functions/z.js", "const stripePublishable = \"pk_live_51Habc\";".into()),
        ("functions/aa.js", "const tokenUrl = \"https://login.example.com/oauth2/token\";".into()),
        ("functions/ab.js", "const password_field = \"password\";".into()),
        ("functions/ac.js", format!("const sha = \"sha256:{}\";", g.from("0123456789abcdef", 64))),
        ("functions/ad.js", "const example = \"sk_live_EXAMPLEEXAMPLEEXAMPLE1234\";".into()),
        ("functions/ae.js", "const slackChannel = \"#xoxb-announcements\";".into()),
        ("functions/af.py", "token = os.environ[\"HF_TOKEN\"]".into()),
        (
            "functions/ag.js",
            format!("const key = \"ghp_{}\"; // terrarium:allow-secret (a revoked test token)", g.from(ALNUM, 36)),
        ),
        ("functions/ah.js", "const accountKeyName = \"AccountKey\";".into()),
        ("functions/ai.js", "const authorization = `Bearer ${token}`;".into()),
        // Names with key or auth in them holding what is not a secret.
        ("functions/aj.js", format!("const cacheKey = \"{}\";", g.from("0123456789abcdef", 64))),
        ("functions/ak.js", "const idempotencyKey = \"3f2a9c1e-8b7d-4e6f-a5c4-1d2e3f4a5b6c\";".into()),
        ("functions/al.js", "const keyPath = \"/etc/terrarium/keys/public.pem\";".into()),
        ("functions/am.js", "const authUrl = \"https://login.example.com/oauth2/authorize\";".into()),
        ("functions/an.js", "const sortKey = \"createdAt-desc-then-name\";".into()),
        ("functions/ao.js", "const i18nKey = \"checkout.summary.total_label\";".into()),
        ("functions/ap.js", format!("const iconKey = \"data:image/png;base64,{}\";", g.from(B64, 80))),
        ("functions/aq.js", format!("const commitKey = \"sha1:{}\";", g.from("0123456789abcdef", 40))),
        ("functions/ar.js", "const keyboardShortcut = \"ctrl+shift+k\";".into()),
        ("functions/as.js", "const stripeTestKey = \"sk_test_EXAMPLE000000000000000000\";".into()),
        ("functions/at.js", "const authHeader = \"Bearer \" + env.CRM_TOKEN;".into()),
        ("functions/au.js", "// Send the token as: Authorization: Bearer <token>".into()),
        ("functions/av.js", "const authMode = \"basic\"; const keyCount = 12;".into()),
        ("functions/aw.js", "const monkeyName = \"Cheeky-Monkey-Business\";".into()),
    ];
    samples.into_iter().map(|(file, contents)| (file.to_owned(), contents)).collect()
}

#[test]
fn the_builtin_rules_find_the_secrets_of_the_corpus_and_little_else() {
    let scanner = Scanner::builtin();
    let positives = positives();
    let negatives = negatives();
    assert!(positives.len() >= 40 && negatives.len() >= 40, "{} and {}", positives.len(), negatives.len());

    let mut true_positives = 0;
    let mut false_negatives = Vec::new();
    let mut wrong_rule = Vec::new();
    for (file, contents, rule) in &positives {
        let findings = scanner.scan(file, contents.as_bytes());
        match findings.first() {
            None => false_negatives.push(format!("{rule}: {contents}")),
            Some(finding) => {
                true_positives += 1;
                if finding.rule_id != *rule {
                    wrong_rule.push(format!("{} instead of {rule}: {contents}", finding.rule_id));
                }
                for finding in &findings {
                    // The report never carries the secret whole.
                    let shown = finding.to_string();
                    let longest_token = contents
                        .split(|c: char| !c.is_ascii_alphanumeric() && !"-_+/=~".contains(c))
                        .max_by_key(|token| token.len())
                        .unwrap_or_default();
                    assert!(!shown.contains(longest_token), "unmasked: {shown}");
                }
            }
        }
    }
    let mut false_positives = Vec::new();
    for (file, contents) in &negatives {
        for finding in scanner.scan(file, contents.as_bytes()) {
            false_positives.push(format!("{finding} in {contents}"));
        }
    }
    let precision = true_positives as f64 / (true_positives + false_positives.len()) as f64;
    let recall = true_positives as f64 / positives.len() as f64;
    println!(
        "secret scanning corpus: {} positives, {} negatives; precision {:.3}, recall {:.3}",
        positives.len(),
        negatives.len(),
        precision,
        recall
    );
    assert!(false_negatives.is_empty(), "missed: {false_negatives:#?}");
    assert!(false_positives.is_empty(), "false positives: {false_positives:#?}");
    assert!(wrong_rule.is_empty(), "reported by another rule: {wrong_rule:#?}");
}
