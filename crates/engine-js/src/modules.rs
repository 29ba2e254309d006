//! Compiling an app's ES modules to bytecode, and resolving and loading them inside an instance.
//!
//! Modules come only from the deployment's module map: relative imports resolve within it and
//! everything else (bare specifiers, URLs, `std`/`os`, the file system) is an error. Each module is
//! parsed once when the app is loaded; instances read the bytecode, which is faster than parsing.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::{Arc, OnceLock};

use rquickjs::loader::{ImportAttributes, Loader, Resolver};
use rquickjs::module::{Declared, WriteOptions};
use rquickjs::{Context, Ctx, Error, Module, Runtime};

/// The parts of the prelude, by name: `core` is evaluated in every instance, the others when app
/// code first touches one of their globals. Their module names start with `terrarium:`, which the
/// resolver never produces, so app code cannot import them.
const PRELUDE_PARTS: [(&str, &str); 15] = [
    ("core", include_str!("prelude/core.js")),
    ("url", include_str!("prelude/url.js")),
    ("streams", include_str!("prelude/streams.js")),
    ("encoding", include_str!("prelude/encoding.js")),
    ("blob", include_str!("prelude/blob.js")),
    ("request", include_str!("prelude/request.js")),
    ("kv", include_str!("prelude/kv.js")),
    ("cache", include_str!("prelude/cache.js")),
    ("d1", include_str!("prelude/d1.js")),
    ("console", include_str!("prelude/console.js")),
    ("extras", include_str!("prelude/extras.js")),
    ("shared", include_str!("prelude/shared.js")),
    ("writable", include_str!("prelude/writable.js")),
    ("ai", include_str!("prelude/ai.js")),
    ("vectorize", include_str!("prelude/vectorize.js")),
];

/// Bytecode of every module of one app, by bundle path.
pub(crate) struct CompiledModules {
    by_path: HashMap<String, Vec<u8>>,
}

impl CompiledModules {
    /// Compiles every module; the error names the first file that does not compile.
    ///
    /// QuickJS resolves a module's imports while compiling it, so the imported files are compiled
    /// then too, through [`SourceLoader`], and a missing import is found here, before any request.
    pub(crate) fn compile<'a>(
        sources: impl Iterator<Item = (&'a str, &'a str)>,
        memory_limit: usize,
    ) -> Result<CompiledModules, (String, String)> {
        let sources: HashMap<String, Arc<str>> =
            sources.map(|(path, source)| (path.to_owned(), Arc::from(source))).collect();
        let state =
            Rc::new(CompileState { sources, compiled: RefCell::new(HashMap::new()), failure: RefCell::new(None) });
        let runtime = Runtime::new().map_err(|error| (String::new(), error.to_string()))?;
        runtime.set_loader(SourceLoader(state.clone()), SourceLoader(state.clone()));
        runtime.set_memory_limit(memory_limit);
        let context = Context::full(&runtime).map_err(|error| (String::new(), error.to_string()))?;
        let mut paths: Vec<&String> = state.sources.keys().collect();
        paths.sort();
        context.with(|ctx| {
            for path in paths {
                if state.compiled.borrow().contains_key(path.as_str()) {
                    continue;
                }
                if let Err(message) = state.compile(&ctx, path) {
                    // A failure inside an imported file names that file.
                    return Err(state.failure.borrow_mut().take().unwrap_or((path.clone(), message)));
                }
            }
            Ok(())
        })?;
        drop(context);
        drop(runtime);
        let compiled = Rc::try_unwrap(state).ok().expect("the compile runtime is gone").compiled.into_inner();
        Ok(CompiledModules { by_path: compiled })
    }

    pub(crate) fn contains(&self, path: &str) -> bool {
        self.by_path.contains_key(path)
    }

    /// Resolves `specifier` imported from the module `base` to a bundle path.
    pub(crate) fn resolve(&self, base: &str, specifier: &str) -> Result<String, String> {
        resolve_specifier(|path| self.contains(path), base, specifier)
    }
}

/// Resolves `specifier` imported from the module `base` to a bundle path for which `exists` holds.
/// An empty `base` is the host importing an entry by its exact path.
fn resolve_specifier(exists: impl Fn(&str) -> bool, base: &str, specifier: &str) -> Result<String, String> {
    if base.is_empty() {
        return match exists(specifier) {
            true => Ok(specifier.to_owned()),
            false => Err(format!("the module {specifier} is not in the bundle")),
        };
    }
    let relative = specifier.starts_with("./") || specifier.starts_with("../");
    if !relative && !specifier.starts_with('/') {
        return Err(format!(
            "only relative imports of the app's own files are supported (like \"./util.js\"), not \"{specifier}\""
        ));
    }
    let joined = match specifier.strip_prefix('/') {
        Some(absolute) => absolute.to_owned(),
        None => match base.rsplit_once('/') {
            Some((directory, _)) => format!("{directory}/{specifier}"),
            None => specifier.to_owned(),
        },
    };
    let mut segments: Vec<&str> = Vec::new();
    for segment in joined.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                if segments.pop().is_none() {
                    return Err(format!("\"{specifier}\" points outside of the app's bundle"));
                }
            }
            segment => segments.push(segment),
        }
    }
    let path = segments.join("/");
    let candidates = [path.clone(), format!("{path}.js"), format!("{path}.mjs"), format!("{path}/index.js")];
    match candidates.into_iter().find(|candidate| exists(candidate)) {
        Some(found) => Ok(found),
        None => Err(format!("cannot find \"{specifier}\" (looked for {path}) in the app's bundle")),
    }
}

/// The sources of one app while it compiles, and the bytecode compiled so far.
struct CompileState {
    sources: HashMap<String, Arc<str>>,
    compiled: RefCell<HashMap<String, Vec<u8>>>,
    /// The first file that failed while being imported, with its error.
    failure: RefCell<Option<(String, String)>>,
}

impl CompileState {
    /// Compiles one module (and, through the loader, its imports) and records its bytecode.
    fn compile<'js>(&self, ctx: &Ctx<'js>, path: &str) -> Result<Module<'js, Declared>, String> {
        let source = self.sources.get(path).ok_or_else(|| format!("the module {path} is not in the bundle"))?;
        let module = declare_module(ctx, path, source)?;
        let bytecode = write_module(&module, false)?;
        self.compiled.borrow_mut().insert(path.to_owned(), bytecode);
        Ok(module)
    }
}

/// Resolves and loads imports from source while an app compiles.
struct SourceLoader(Rc<CompileState>);

impl Resolver for SourceLoader {
    fn resolve<'js>(
        &mut self,
        _ctx: &Ctx<'js>,
        base: &str,
        name: &str,
        _attributes: Option<ImportAttributes<'js>>,
    ) -> rquickjs::Result<String> {
        resolve_specifier(|path| self.0.sources.contains_key(path), base, name).map_err(|message| {
            self.0
                .failure
                .borrow_mut()
                .get_or_insert_with(|| (base.to_owned(), format!("cannot import \"{name}\": {message}")));
            Error::new_resolving_message(base, name, message)
        })
    }
}

impl Loader for SourceLoader {
    fn load<'js>(
        &mut self,
        ctx: &Ctx<'js>,
        name: &str,
        _attributes: Option<ImportAttributes<'js>>,
    ) -> rquickjs::Result<Module<'js, Declared>> {
        self.0.compile(ctx, name).map_err(|message| {
            self.0.failure.borrow_mut().get_or_insert_with(|| (name.to_owned(), message.clone()));
            Error::new_loading_message(name, message)
        })
    }
}

/// Parses one module, or returns the syntax error.
fn declare_module<'js>(ctx: &Ctx<'js>, path: &str, source: &str) -> Result<Module<'js, Declared>, String> {
    match Module::declare(ctx.clone(), path, source) {
        Ok(module) => Ok(module),
        Err(Error::Exception) => Err(crate::errors::describe_exception(ctx, ctx.catch())),
        Err(error) => Err(error.to_string()),
    }
}

/// The bytecode of a declared module. Line numbers stay for stack traces; the source text is not
/// kept, which saves memory in every instance.
fn write_module(module: &Module<'_, Declared>, strip_debug: bool) -> Result<Vec<u8>, String> {
    let options = WriteOptions { strip_source: true, strip_debug, ..WriteOptions::default() };
    module.write(options).map_err(|error| error.to_string())
}

/// The bytecode of one part of the prelude; every part is compiled once per process.
pub(crate) fn prelude_part(name: &str) -> Option<&'static [u8]> {
    static PARTS: OnceLock<HashMap<&'static str, Vec<u8>>> = OnceLock::new();
    let parts = PARTS.get_or_init(|| {
        let runtime = Runtime::new().expect("a QuickJS runtime for compiling the prelude");
        let context = Context::full(&runtime).expect("a QuickJS context for compiling the prelude");
        context.with(|ctx| {
            PRELUDE_PARTS
                .iter()
                .map(|(name, source)| {
                    let module_name = format!("terrarium:prelude/{name}");
                    // Stack traces inside the prelude lose their line numbers; every instance saves the memory.
                    let bytecode = declare_module(&ctx, &module_name, source)
                        .and_then(|module| write_module(&module, true))
                        .unwrap_or_else(|message| panic!("the prelude part {name} compiles: {message}"));
                    (*name, bytecode)
                })
                .collect()
        })
    });
    parts.get(name).map(Vec::as_slice)
}

/// Reads a module from bytecode this process compiled.
#[allow(unsafe_code)]
pub(crate) fn load_bytecode<'js>(ctx: &Ctx<'js>, bytecode: &[u8]) -> rquickjs::Result<Module<'js, Declared>> {
    // SAFETY: every bytecode buffer comes from `write_module` in this process, written by the same
    // QuickJS build that reads it here, and is never modified; untrusted bytes never reach this call.
    unsafe { Module::load(ctx.clone(), bytecode) }
}

/// The resolver and loader of one instance, both reading the app's compiled modules.
pub(crate) struct BundleModules(pub(crate) Arc<CompiledModules>);

impl Resolver for BundleModules {
    fn resolve<'js>(
        &mut self,
        _ctx: &Ctx<'js>,
        base: &str,
        name: &str,
        _attributes: Option<ImportAttributes<'js>>,
    ) -> rquickjs::Result<String> {
        self.0.resolve(base, name).map_err(|message| Error::new_resolving_message(base, name, message))
    }
}

impl Loader for BundleModules {
    fn load<'js>(
        &mut self,
        ctx: &Ctx<'js>,
        name: &str,
        _attributes: Option<ImportAttributes<'js>>,
    ) -> rquickjs::Result<Module<'js, Declared>> {
        match self.0.by_path.get(name) {
            Some(bytecode) => load_bytecode(ctx, bytecode),
            None => Err(Error::new_loading_message(name, "not in the app's bundle")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn modules(paths: &[&str]) -> CompiledModules {
        CompiledModules::compile(paths.iter().map(|path| (*path, "export default 1;")), 1 << 24).unwrap()
    }

    fn check(base: &str, specifier: &str, expect: Result<&str, &str>) {
        let modules =
            modules(&["functions/api.js", "functions/lib/util.js", "shared/data.js", "functions/lib/index.js"]);
        let got = modules.resolve(base, specifier);
        match expect {
            Ok(path) => assert_eq!(got.as_deref(), Ok(path), "{base} imports {specifier}"),
            Err(fragment) => {
                let message = got.expect_err(specifier);
                assert!(message.contains(fragment), "{message:?} should contain {fragment:?}");
            }
        }
    }

    #[test]
    fn resolution() {
        check("functions/api.js", "./lib/util.js", Ok("functions/lib/util.js"));
        check("functions/api.js", "./lib/util", Ok("functions/lib/util.js"));
        check("functions/api.js", "./lib", Ok("functions/lib/index.js"));
        check("functions/lib/util.js", "../../shared/data.js", Ok("shared/data.js"));
        check("functions/api.js", "/shared/data.js", Ok("shared/data.js"));
        check("", "functions/api.js", Ok("functions/api.js"));
        check("functions/api.js", "lodash", Err("only relative imports"));
        check("functions/api.js", "std", Err("only relative imports"));
        check("functions/api.js", "https://example.com/x.js", Err("only relative imports"));
        check("functions/api.js", "../../../etc/passwd", Err("outside of the app's bundle"));
        check("functions/api.js", "./missing.js", Err("cannot find"));
        check("", "functions/missing.js", Err("not in the bundle"));
    }

    #[test]
    fn syntax_errors_name_the_file() {
        let sources = [("functions/ok.js", "export default {}"), ("functions/bad.js", "export default {")];
        let Err((path, message)) = CompiledModules::compile(sources.into_iter(), 1 << 24) else {
            panic!("should fail")
        };
        assert_eq!(path, "functions/bad.js");
        assert!(message.contains("SyntaxError"), "{message}");
    }

    #[test]
    fn prelude_compiles() {
        for (name, _) in PRELUDE_PARTS {
            assert!(!prelude_part(name).unwrap().is_empty());
        }
    }
}
