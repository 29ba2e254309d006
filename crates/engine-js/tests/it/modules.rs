//! Module loading: imports between the app's files, and load errors that name the file.

use crate::support::engine;
use crate::support::{AppBuilder, ENTRY};

#[tokio::test]
async fn imports_between_files() {
    let engine = engine();
    let app = AppBuilder::new("imports", r#"
        import { greet } from "./lib/greet.js";
        import data from "../shared/data.js";
        export default { async fetch() {
            const lazy = await import("./lib/lazy.js");
            return new Response(greet(data.name) + " " + lazy.word);
        } };
    "#)
    .module("functions/lib/greet.js", r#"import { punctuation } from "./punctuation"; export function greet(name) { return "hello " + name + punctuation; }"#)
    .module("functions/lib/punctuation.js", r#"export const punctuation = "!";"#)
    .module("functions/lib/lazy.js", r#"export const word = "lazily";"#)
    .module("shared/data.js", r#"export default { name: "world" };"#)
    .load(&engine)
    .unwrap();
    assert_eq!(app.text("/").await, "hello world! lazily");
}

#[tokio::test]
async fn syntax_error_names_the_file() {
    let engine = engine();
    let error =
        AppBuilder::new("syntax", r#"import "./broken.js"; export default { fetch() { return new Response("x"); } };"#)
            .module("functions/broken.js", "export const x = {;")
            .load(&engine)
            .err()
            .expect("a syntax error fails the load");
    assert_eq!(error.entry, "functions/broken.js");
    assert!(error.message.contains("SyntaxError"), "{error}");
    assert!(error.to_string().starts_with("functions/broken.js: "), "{error}");
}

#[tokio::test]
async fn load_errors() {
    let engine = engine();
    let check = |source: &str, fragment: &str| {
        let error =
            AppBuilder::new("broken", source).load(&engine).err().unwrap_or_else(|| panic!("{source} should not load"));
        assert_eq!(error.entry, ENTRY, "{error}");
        assert!(error.message.contains(fragment), "{:?} should contain {fragment:?}", error.message);
    };
    check(r#"import { x } from "./missing.js"; export default { fetch() {} };"#, "cannot find");
    check(r#"import fs from "fs"; export default { fetch() {} };"#, "only relative imports");
    check(r#"import * as std from "std"; export default { fetch() {} };"#, "only relative imports");
    check(r#"export const handler = 1;"#, "default export");
    check(r#"export default { get() {} };"#, "no fetch function");
    check(r#"throw new Error("at top level"); export default { fetch() {} };"#, "at top level");
    check(r#"while (true) {} export default { fetch() {} };"#, "top-level code ran longer");
    check(
        r#"await fetch("https://example.test/"); export default { fetch() {} };"#,
        "only be called while handling a request",
    );
}

#[tokio::test]
async fn missing_entry_file_is_a_load_error() {
    let engine = engine();
    let mut builder = AppBuilder::new("no-entry", "export default { fetch() {} };");
    builder.functions.push(("/other".to_owned(), "functions/other.js".to_owned()));
    let error = builder.load(&engine).err().expect("the missing file fails the load");
    assert_eq!(error.entry, "functions/other.js");
}
