//! The host functions the prelude may call, and the per-request state they read and write.
//!
//! App code never sees these functions: they are handed to the prelude's `install(host)` only.
//! Everything here runs on the instance's worker thread while JavaScript is running, so it reaches
//! the request through an `Rc` and records work for the event loop instead of doing I/O itself.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use deployment::{AppKey, FunctionLimits};
use rand::RngCore;
use rquickjs::function::Opt;
use rquickjs::{Ctx, Exception, Function, Object, TypedArray, Value};
use runtime::{AppLog, InvokeError, LogLevel, LogLine, OutboundHttp, OutboundRequest};

use crate::errors::JsException;
use crate::modules::{load_bytecode, prelude_part};

/// Timers one request may start, so a loop of `setTimeout` cannot grow the host's queue unbounded.
const MAX_TIMERS_PER_REQUEST: u32 = 10_000;

/// Log lines one request may write, and the longest line kept.
const MAX_LOG_LINES_PER_REQUEST: u32 = 1_000;
const MAX_LOG_LINE_BYTES: usize = 16 * 1024;

/// State shared by the host functions, the interrupt handler and the event loop of one instance.
pub(crate) struct InstanceShared {
    pub app: AppKey,
    pub limits: FunctionLimits,
    /// When the running JavaScript must stop, in this thread's CPU time ([`thread_cpu_time`]);
    /// `None` while no JavaScript runs for a request.
    ///
    /// [`thread_cpu_time`]: crate::instance::thread_cpu_time
    pub cpu_deadline: Cell<Option<Duration>>,
    /// Before this wall-clock instant the CPU deadline cannot have passed (a thread uses at most
    /// one second of CPU per second), so the interrupt handler does not read the CPU clock, a
    /// system call, until then.
    pub cpu_check_from: Cell<Option<Instant>>,
    /// The wall-clock deadline of the whole request, which stops JavaScript too.
    pub deadline: Cell<Option<Instant>>,
    /// Set by the interrupt handler when it stopped JavaScript at the deadline.
    pub interrupted: Cell<bool>,
    pub request: RefCell<RequestState>,
}

/// What one request has asked of the host so far.
pub(crate) struct RequestState {
    /// False between requests (and while an app is checked at load time): I/O is refused then.
    pub active: bool,
    pub request_id: String,
    /// The request's trace context, carried by its `fetch` calls.
    pub trace_context: Vec<(String, String)>,
    pub log: Option<Arc<dyn AppLog>>,
    pub outbound: Option<Arc<dyn OutboundHttp>>,
    pub outbound_left: u32,
    /// Body bytes the request may still send and receive through `fetch`.
    pub outbound_bytes_left: u64,
    pub next_fetch_id: u32,
    /// Fetches started by JavaScript that the event loop has not picked up yet.
    pub new_fetches: Vec<(u32, OutboundRequest)>,
    /// Timers started by JavaScript that the event loop has not picked up yet.
    pub new_timers: Vec<(u32, Duration)>,
    /// Key-value operations started by JavaScript that the event loop has not picked up yet.
    pub new_kv: Vec<(u32, runtime::kv::KvOp)>,
    pub next_kv_id: u32,
    /// SQL calls started by JavaScript that the event loop has not picked up yet.
    pub new_sql: Vec<(u32, runtime::sql::SqlOp)>,
    pub next_sql_id: u32,
    /// Cache API calls started by JavaScript that the event loop has not picked up yet.
    pub new_cache: Vec<(u32, runtime::cache::CacheOp)>,
    pub next_cache_id: u32,
    /// `env.AI.run` calls started by JavaScript that the event loop has not picked up yet.
    pub new_ai: Vec<(u32, runtime::ai::AiOp)>,
    pub next_ai_id: u32,
    /// Vector index calls started by JavaScript that the event loop has not picked up yet.
    pub new_vectors: Vec<(u32, runtime::vectors::VectorOp)>,
    pub next_vectors_id: u32,
    /// The signed-in user's subject, the author of texts the request stores.
    pub author: Option<String>,
    /// Timers this request may still start, and log lines it may still write.
    pub timers_left: u32,
    pub log_lines_left: u32,
    /// A streamed response body, collected up to the limit.
    pub streamed_body: Vec<u8>,
    pub streamed_too_large: bool,
    /// The response or the failure, once the handler has produced one.
    pub outcome: Option<Result<runtime::FunctionResponse, InvokeError>>,
    /// The handler and every `ctx.waitUntil` promise have settled.
    pub finished: bool,
}

impl RequestState {
    pub(crate) fn idle() -> RequestState {
        RequestState {
            active: false,
            request_id: String::new(),
            trace_context: Vec::new(),
            log: None,
            outbound: None,
            outbound_left: 0,
            outbound_bytes_left: 0,
            next_fetch_id: 1,
            new_fetches: Vec::new(),
            new_timers: Vec::new(),
            new_kv: Vec::new(),
            next_kv_id: 1,
            new_sql: Vec::new(),
            next_sql_id: 1,
            new_cache: Vec::new(),
            next_cache_id: 1,
            new_ai: Vec::new(),
            next_ai_id: 1,
            new_vectors: Vec::new(),
            next_vectors_id: 1,
            author: None,
            timers_left: MAX_TIMERS_PER_REQUEST,
            log_lines_left: MAX_LOG_LINES_PER_REQUEST,
            streamed_body: Vec::new(),
            streamed_too_large: false,
            outcome: None,
            finished: false,
        }
    }
}

impl InstanceShared {
    /// Writes one line to the app's log, tagged with the current request id, up to the per-request
    /// number of lines and line length.
    pub(crate) fn log(&self, level: LogLevel, mut message: String) {
        let mut request = self.request.borrow_mut();
        let Some(log) = request.log.clone() else { return };
        match request.log_lines_left {
            0 => return,
            1 => {
                message = format!(
                    "(further log lines of this request are dropped: at most {MAX_LOG_LINES_PER_REQUEST} per request)"
                )
            }
            _ => {}
        }
        request.log_lines_left -= 1;
        if message.len() > MAX_LOG_LINE_BYTES {
            let mut end = MAX_LOG_LINE_BYTES;
            while !message.is_char_boundary(end) {
                end -= 1;
            }
            message.truncate(end);
            message.push_str(" … (truncated)");
        }
        let request_id = request.request_id.clone();
        drop(request);
        log.write(LogLine { app: self.app.clone(), request_id, level, message });
    }

    fn set_outcome(&self, outcome: Result<runtime::FunctionResponse, InvokeError>) {
        let mut request = self.request.borrow_mut();
        if request.outcome.is_none() {
            request.outcome = Some(outcome);
        }
    }
}

/// Copies the bytes of a typed array out of the JavaScript heap.
#[allow(unsafe_code)]
pub(crate) fn copy_bytes(array: &TypedArray<'_, u8>) -> Vec<u8> {
    // SAFETY: the slice is copied into a Vec at once, and no JavaScript runs while it is borrowed,
    // so the engine cannot detach or resize the buffer underneath it.
    unsafe { array.as_bytes() }.map(<[u8]>::to_vec).unwrap_or_default()
}

/// A response body the prelude hands over: a string, a Uint8Array, or nothing.
fn body_bytes(value: &Value<'_>) -> rquickjs::Result<Option<Vec<u8>>> {
    if value.is_null() || value.is_undefined() {
        return Ok(None);
    }
    if let Some(text) = value.as_string() {
        return Ok(Some(text.to_string()?.into_bytes()));
    }
    match TypedArray::<u8>::from_value(value.clone()) {
        Ok(array) => Ok(Some(copy_bytes(&array))),
        Err(_) => Err(Exception::throw_type(value.ctx(), "a body chunk must be a string or a Uint8Array")),
    }
}

/// The URL's components in the order the prelude expects: href, origin, protocol, username,
/// password, host, hostname, port, pathname, search, hash. Parsing is ada's (the WHATWG URL
/// Standard's parser Node.js uses, which passes the Web Platform Tests).
fn url_parts(url: &ada_url::Url) -> Vec<String> {
    vec![
        url.href().to_owned(),
        url.origin(),
        url.protocol().to_owned(),
        url.username().to_owned(),
        url.password().to_owned(),
        url.host().to_owned(),
        url.hostname().to_owned(),
        url.port().to_owned(),
        url.pathname().to_owned(),
        url.search().to_owned(),
        url.hash().to_owned(),
    ]
}

fn flat_pairs(flat: Vec<String>) -> Vec<(String, String)> {
    let mut pairs = Vec::with_capacity(flat.len() / 2);
    let mut items = flat.into_iter();
    while let (Some(name), Some(value)) = (items.next(), items.next()) {
        pairs.push((name, value));
    }
    pairs
}

fn log_level(level: i32) -> LogLevel {
    match level {
        0 => LogLevel::Debug,
        1 => LogLevel::Info,
        2 => LogLevel::Warn,
        _ => LogLevel::Error,
    }
}

/// Streaming decodes one instance may hold open at once (each is a few dozen bytes).
const MAX_STREAMING_DECODERS: usize = 1024;

/// The streaming decoders of one instance, by number.
#[derive(Default)]
struct Decoders {
    next: u32,
    open: std::collections::HashMap<u32, encoding_rs::Decoder>,
}

/// A decoder for an encoding the prelude named (from `encodingFor`): with `ignore_bom`, a BOM is
/// kept as U+FEFF; without, the encoding's own BOM is dropped (never sniffed as another encoding).
fn new_decoder(ctx: &Ctx<'_>, encoding: &str, ignore_bom: bool) -> rquickjs::Result<encoding_rs::Decoder> {
    let Some(encoding) = encoding_rs::Encoding::for_label(encoding.as_bytes()) else {
        return Err(Exception::throw_range(ctx, &format!("TextDecoder: unknown encoding {encoding:?}")));
    };
    Ok(match ignore_bom {
        true => encoding.new_decoder_without_bom_handling(),
        false => encoding.new_decoder_with_bom_removal(),
    })
}

/// Decodes `bytes` with `decoder`; with `fatal`, malformed input is a TypeError. The text grows
/// as it is decoded (never a worst-case reservation up front, which for a single-byte encoding is
/// three times the input, outside the instance's memory limit).
fn decode_with(
    ctx: &Ctx<'_>,
    decoder: &mut encoding_rs::Decoder,
    bytes: &[u8],
    last: bool,
    fatal: bool,
) -> rquickjs::Result<String> {
    const STEP: usize = 64 * 1024;
    let mut text = String::with_capacity(bytes.len().min(STEP));
    let mut read = 0;
    loop {
        text.reserve(STEP.min(bytes.len() - read).max(16));
        let input = &bytes[read..];
        let empty = if fatal {
            let (result, used) = decoder.decode_to_string_without_replacement(input, &mut text, last);
            read += used;
            match result {
                encoding_rs::DecoderResult::InputEmpty => true,
                encoding_rs::DecoderResult::OutputFull => false,
                encoding_rs::DecoderResult::Malformed(..) => {
                    let name = decoder.encoding().name();
                    return Err(Exception::throw_type(ctx, &format!("TextDecoder: the data is not valid {name}")));
                }
            }
        } else {
            let (result, used, _) = decoder.decode_to_string(input, &mut text, last);
            read += used;
            result == encoding_rs::CoderResult::InputEmpty
        };
        if empty {
            return Ok(text);
        }
    }
}

/// Builds the `host` object handed to the prelude's core: what every instance needs. A part's own
/// host functions are made when the part loads ([`part_host`]): each function costs an instance
/// some 240 bytes, and most instances never load most parts.
pub(crate) fn host_object<'js>(ctx: &Ctx<'js>, shared: &Rc<InstanceShared>) -> rquickjs::Result<Object<'js>> {
    let host = Object::new(ctx.clone())?;

    let state = shared.clone();
    host.set(
        "loadPart",
        Function::new(ctx.clone(), move |ctx: Ctx<'js>, name: String| -> rquickjs::Result<rquickjs::Array<'js>> {
            let Some(bytecode) = prelude_part(&name) else {
                return Err(Exception::throw_internal(&ctx, &format!("no prelude part {name}")));
            };
            let (module, _evaluated) = load_bytecode(&ctx, bytecode)?.eval()?;
            let install: Function<'js> = module.get("default")?;
            let answer = rquickjs::Array::new(ctx.clone())?;
            answer.set(0, install)?;
            answer.set(1, part_host(&ctx, &name, &state)?)?;
            Ok(answer)
        })?,
    )?;

    let state = shared.clone();
    host.set(
        "log",
        Function::new(ctx.clone(), move |level: i32, message: String| state.log(log_level(level), message))?,
    )?;

    host.set(
        "encodeUtf8",
        Function::new(ctx.clone(), |ctx: Ctx<'js>, text: String| TypedArray::<u8>::new(ctx, text.into_bytes()))?,
    )?;

    host.set(
        "decodeUtf8",
        Function::new(ctx.clone(), |ctx: Ctx<'js>, bytes: TypedArray<'js, u8>, fatal: bool, ignore_bom: bool| {
            let bytes = copy_bytes(&bytes);
            let bytes = match (ignore_bom, bytes.strip_prefix(b"\xEF\xBB\xBF")) {
                (false, Some(rest)) => rest,
                _ => &bytes[..],
            };
            match (fatal, std::str::from_utf8(bytes)) {
                (_, Ok(text)) => Ok(text.to_owned()),
                (false, Err(_)) => Ok(String::from_utf8_lossy(bytes).into_owned()),
                (true, Err(_)) => Err(Exception::throw_type(&ctx, "TextDecoder: the data is not valid UTF-8")),
            }
        })?,
    )?;

    let state = shared.clone();
    host.set(
        "fetch",
        Function::new(
            ctx.clone(),
            move |ctx: Ctx<'js>, method: String, url: String, headers: Vec<String>, body: Opt<TypedArray<'js, u8>>| {
                let mut request = state.request.borrow_mut();
                if !request.active || request.outbound.is_none() {
                    return Err(Exception::throw_type(&ctx, "fetch() can only be called while handling a request"));
                }
                if request.outbound_left == 0 {
                    let limit = state.limits.max_outbound_requests;
                    let message =
                        format!("fetch(): this request already made its {limit} outbound requests, the limit");
                    return Err(Exception::throw_type(&ctx, &message));
                }
                let body = body.0.map(|array| Bytes::from(copy_bytes(&array))).unwrap_or_default();
                if body.len() as u64 > request.outbound_bytes_left {
                    let limit = state.limits.max_outbound_bytes;
                    let message = format!(
                        "fetch(): this request already sent and received {limit} bytes through fetch, the limit"
                    );
                    return Err(Exception::throw_type(&ctx, &message));
                }
                request.outbound_bytes_left -= body.len() as u64;
                request.outbound_left -= 1;
                let id = request.next_fetch_id;
                request.next_fetch_id += 1;
                let outbound = OutboundRequest {
                    method,
                    url,
                    headers: flat_pairs(headers),
                    body,
                    request_id: request.request_id.clone(),
                    trace_context: request.trace_context.clone(),
                };
                request.new_fetches.push((id, outbound));
                Ok(id)
            },
        )?,
    )?;

    let state = shared.clone();
    host.set(
        "timer",
        Function::new(ctx.clone(), move |ctx: Ctx<'js>, id: u32, delay_ms: f64| {
            let mut request = state.request.borrow_mut();
            if !request.active {
                return Err(Exception::throw_type(&ctx, "timers can only be used while handling a request"));
            }
            if request.timers_left == 0 {
                let message =
                    format!("setTimeout(): this request already started {MAX_TIMERS_PER_REQUEST} timers, the limit");
                return Err(Exception::throw_type(&ctx, &message));
            }
            request.timers_left -= 1;
            let delay_ms = if delay_ms.is_finite() { delay_ms.clamp(0.0, 86_400_000.0) } else { 0.0 };
            let delay = Duration::from_secs_f64(delay_ms / 1000.0);
            request.new_timers.push((id, delay));
            Ok(())
        })?,
    )?;

    let state = shared.clone();
    host.set(
        "chunk",
        Function::new(ctx.clone(), move |chunk: Value<'js>| -> rquickjs::Result<bool> {
            let bytes = body_bytes(&chunk)?.unwrap_or_default();
            let mut request = state.request.borrow_mut();
            if request.streamed_body.len() as u64 + bytes.len() as u64 > state.limits.max_response_bytes {
                request.streamed_too_large = true;
                return Ok(false);
            }
            request.streamed_body.extend_from_slice(&bytes);
            Ok(true)
        })?,
    )?;

    let state = shared.clone();
    host.set(
        "respond",
        Function::new(
            ctx.clone(),
            move |status: u16, headers: Vec<String>, body: Value<'js>| -> rquickjs::Result<()> {
                let limit_bytes = state.limits.max_response_bytes;
                let body = {
                    let mut request = state.request.borrow_mut();
                    if body.is_undefined() {
                        // The body was streamed through `chunk`.
                        if request.streamed_too_large {
                            drop(request);
                            state.set_outcome(Err(InvokeError::ResponseTooLarge { limit_bytes }));
                            return Ok(());
                        }
                        std::mem::take(&mut request.streamed_body)
                    } else {
                        drop(request);
                        body_bytes(&body)?.unwrap_or_default()
                    }
                };
                let outcome = match body.len() as u64 > limit_bytes {
                    true => Err(InvokeError::ResponseTooLarge { limit_bytes }),
                    false => Ok(runtime::FunctionResponse {
                        status,
                        headers: flat_pairs(headers),
                        body: Bytes::from(body),
                        cpu: Duration::ZERO,
                        heap_bytes: 0,
                    }),
                };
                state.set_outcome(outcome);
                Ok(())
            },
        )?,
    )?;

    let state = shared.clone();
    host.set(
        "badReturn",
        Function::new(ctx.clone(), move |message: String| state.set_outcome(Err(InvokeError::BadReturn { message })))?,
    )?;

    let state = shared.clone();
    host.set(
        "fail",
        Function::new(ctx.clone(), move |error: Value<'js>| {
            let error = JsException::from_value(error).classify(state.interrupted.get(), &state.limits);
            state.set_outcome(Err(error));
        })?,
    )?;

    let state = shared.clone();
    host.set("finished", Function::new(ctx.clone(), move || state.request.borrow_mut().finished = true)?)?;

    Ok(host)
}

/// The host functions of one part of the prelude, in an object the part receives as its `host`
/// (the core's host object is its prototype, set by the core).
fn part_host<'js>(ctx: &Ctx<'js>, part: &str, shared: &Rc<InstanceShared>) -> rquickjs::Result<Object<'js>> {
    let host = Object::new(ctx.clone())?;
    match part {
        "url" => url_functions(ctx, &host)?,
        "encoding" => encoding_functions(ctx, &host)?,
        "extras" | "blob" => crypto_functions(ctx, &host)?,
        "kv" => kv_functions(ctx, &host, shared)?,
        "d1" => sql_functions(ctx, &host, shared)?,
        "cache" => cache_functions(ctx, &host, shared)?,
        "ai" => ai_functions(ctx, &host, shared)?,
        "vectorize" => vector_functions(ctx, &host, shared)?,
        _ => {}
    }
    Ok(host)
}

/// URL parsing (ada, the WHATWG parser) and `application/x-www-form-urlencoded`.
fn url_functions<'js>(ctx: &Ctx<'js>, host: &Object<'js>) -> rquickjs::Result<()> {
    host.set(
        "urlParse",
        Function::new(ctx.clone(), |input: String, base: Opt<String>| {
            ada_url::Url::parse(input.as_str(), base.0.as_deref()).ok().map(|url| url_parts(&url))
        })?,
    )?;

    host.set(
        "urlSet",
        Function::new(ctx.clone(), |href: String, field: String, value: String| {
            let mut url = ada_url::Url::parse(href.as_str(), None).ok()?;
            // Setters that refuse a value leave the URL unchanged, as the URL Standard says.
            let given = value.as_str();
            let value = Some(given);
            let _ = match field.as_str() {
                "protocol" => url.set_protocol(given),
                "username" => url.set_username(value),
                "password" => url.set_password(value),
                "host" => url.set_host(value),
                "hostname" => url.set_hostname(value),
                "port" => url.set_port(value),
                "pathname" => url.set_pathname(value),
                "search" => {
                    url.set_search(value);
                    Ok(())
                }
                "hash" => {
                    url.set_hash(value);
                    Ok(())
                }
                _ => Err(()),
            };
            Some(url_parts(&url))
        })?,
    )?;

    host.set(
        "formParse",
        Function::new(ctx.clone(), |query: String| {
            let mut flat = Vec::new();
            for (name, value) in url::form_urlencoded::parse(query.as_bytes()) {
                flat.push(name.into_owned());
                flat.push(value.into_owned());
            }
            flat
        })?,
    )?;

    host.set(
        "formSerialize",
        Function::new(ctx.clone(), |flat: Vec<String>| {
            let mut serializer = url::form_urlencoded::Serializer::new(String::new());
            for (name, value) in flat_pairs(flat) {
                serializer.append_pair(&name, &value);
            }
            serializer.finish()
        })?,
    )?;
    Ok(())
}

/// `TextEncoder.encodeInto` and the Encoding Standard's decoders (encoding_rs).
fn encoding_functions<'js>(ctx: &Ctx<'js>, host: &Object<'js>) -> rquickjs::Result<()> {
    host.set(
        "encodeInto",
        Function::new(
            ctx.clone(),
            |ctx: Ctx<'js>, text: String, room: usize| -> rquickjs::Result<rquickjs::Array<'js>> {
                // Whole characters only, as many as fit; `read` counts UTF-16 code units.
                let (mut read, mut written) = (0u32, 0usize);
                for character in text.chars() {
                    if written + character.len_utf8() > room {
                        break;
                    }
                    written += character.len_utf8();
                    read += character.len_utf16() as u32;
                }
                let answer = rquickjs::Array::new(ctx.clone())?;
                answer.set(0, read)?;
                answer.set(1, TypedArray::<u8>::new(ctx, text.as_bytes()[..written].to_vec())?)?;
                Ok(answer)
            },
        )?,
    )?;

    // The Encoding Standard's decoders (encoding_rs): a label's encoding, a one-shot decode, and
    // streaming decoders this instance holds by number until their last call.
    host.set(
        "encodingFor",
        Function::new(ctx.clone(), |label: String| {
            let encoding = encoding_rs::Encoding::for_label(label.as_bytes())?;
            // The replacement encoding is for documents, never a TextDecoder's.
            (encoding != encoding_rs::REPLACEMENT).then(|| encoding.name().to_ascii_lowercase())
        })?,
    )?;

    host.set(
        "decodeOnce",
        Function::new(
            ctx.clone(),
            |ctx: Ctx<'js>, encoding: String, bytes: TypedArray<'js, u8>, fatal: bool, ignore_bom: bool| {
                let mut decoder = new_decoder(&ctx, &encoding, ignore_bom)?;
                decode_with(&ctx, &mut decoder, &copy_bytes(&bytes), true, fatal)
            },
        )?,
    )?;

    let decoders: Rc<RefCell<Decoders>> = Rc::default();
    let open = decoders.clone();
    host.set(
        "decoderOpen",
        Function::new(ctx.clone(), move |ctx: Ctx<'js>, encoding: String, ignore_bom: bool| {
            let decoder = new_decoder(&ctx, &encoding, ignore_bom)?;
            let mut decoders = open.borrow_mut();
            if decoders.open.len() >= MAX_STREAMING_DECODERS {
                return Err(Exception::throw_range(
                    &ctx,
                    "TextDecoder: too many streaming decodes are open; finish one with decode() without { stream: true }",
                ));
            }
            decoders.next = decoders.next.wrapping_add(1);
            let id = decoders.next;
            decoders.open.insert(id, decoder);
            Ok(id)
        })?,
    )?;

    let decode = decoders.clone();
    host.set(
        "decoderDecode",
        Function::new(
            ctx.clone(),
            move |ctx: Ctx<'js>, id: u32, bytes: TypedArray<'js, u8>, last: bool, fatal: bool| {
                let bytes = copy_bytes(&bytes);
                let mut decoders = decode.borrow_mut();
                let Some(decoder) = decoders.open.get_mut(&id) else {
                    return Err(Exception::throw_type(&ctx, "TextDecoder: this streaming decode was closed"));
                };
                let decoded = decode_with(&ctx, decoder, &bytes, last, fatal);
                if last || decoded.is_err() {
                    decoders.open.remove(&id);
                }
                decoded
            },
        )?,
    )?;

    host.set(
        "decoderClose",
        Function::new(ctx.clone(), move |id: u32| {
            decoders.borrow_mut().open.remove(&id);
        })?,
    )?;
    Ok(())
}

/// Digests and random bytes for `crypto` (and multipart boundaries).
fn crypto_functions<'js>(ctx: &Ctx<'js>, host: &Object<'js>) -> rquickjs::Result<()> {
    host.set(
        "digest",
        Function::new(ctx.clone(), |ctx: Ctx<'js>, algorithm: String, data: TypedArray<'js, u8>| {
            use sha2::Digest;
            let data = copy_bytes(&data);
            let digest = match algorithm.as_str() {
                "sha256" => sha2::Sha256::digest(&data).to_vec(),
                "sha384" => sha2::Sha384::digest(&data).to_vec(),
                "sha512" => sha2::Sha512::digest(&data).to_vec(),
                _ => return Err(Exception::throw_type(&ctx, "unsupported digest")),
            };
            TypedArray::<u8>::new(ctx, digest)
        })?,
    )?;

    host.set("randomUUID", Function::new(ctx.clone(), || uuid::Uuid::new_v4().to_string())?)?;

    host.set(
        "randomBytes",
        Function::new(ctx.clone(), |ctx: Ctx<'js>, length: usize| {
            let mut bytes = vec![0u8; length.min(65536)];
            rand::rng().fill_bytes(&mut bytes);
            TypedArray::<u8>::new(ctx, bytes)
        })?,
    )?;
    Ok(())
}

/// Workers KV calls, queued for the event loop.
fn kv_functions<'js>(ctx: &Ctx<'js>, host: &Object<'js>, shared: &Rc<InstanceShared>) -> rquickjs::Result<()> {
    let state = shared.clone();
    host.set(
        "kv",
        Function::new(
            ctx.clone(),
            move |ctx: Ctx<'js>, op: String, key: String, options: Opt<String>, value: Opt<TypedArray<'js, u8>>| {
                let mut request = state.request.borrow_mut();
                if !request.active {
                    return Err(Exception::throw_type(&ctx, "KV can only be used while handling a request"));
                }
                let op = kv_op(&op, key, options.0.as_deref(), value.0.map(|array| Bytes::from(copy_bytes(&array))))
                    .map_err(|message| Exception::throw_type(&ctx, &message))?;
                let id = request.next_kv_id;
                request.next_kv_id += 1;
                request.new_kv.push((id, op));
                Ok(id)
            },
        )?,
    )?;
    Ok(())
}

/// D1 calls, queued for the event loop.
fn sql_functions<'js>(ctx: &Ctx<'js>, host: &Object<'js>, shared: &Rc<InstanceShared>) -> rquickjs::Result<()> {
    let state = shared.clone();
    host.set(
        "sql",
        Function::new(ctx.clone(), move |ctx: Ctx<'js>, call: String| {
            let mut request = state.request.borrow_mut();
            if !request.active {
                return Err(Exception::throw_type(&ctx, "D1 can only be used while handling a request"));
            }
            // D1's limit on queries per invocation: a request cannot park the server's threads.
            if request.next_sql_id > MAX_SQL_CALLS_PER_REQUEST {
                let message = format!(
                    "D1: this request already made {MAX_SQL_CALLS_PER_REQUEST} queries, the limit per request; batch() several statements into one call"
                );
                return Err(Exception::throw_message(&ctx, &message));
            }
            let op = sql_op(&call).map_err(|message| Exception::throw_type(&ctx, &message))?;
            let id = request.next_sql_id;
            request.next_sql_id += 1;
            request.new_sql.push((id, op));
            Ok(id)
        })?,
    )?;
    Ok(())
}

/// Cache API calls, queued for the event loop.
fn cache_functions<'js>(ctx: &Ctx<'js>, host: &Object<'js>, shared: &Rc<InstanceShared>) -> rquickjs::Result<()> {
    let state = shared.clone();
    host.set(
        "cache",
        Function::new(ctx.clone(), move |ctx: Ctx<'js>, call: String, body: Opt<TypedArray<'js, u8>>| {
            let mut request = state.request.borrow_mut();
            if !request.active {
                return Err(Exception::throw_type(&ctx, "the Cache API can only be used while handling a request"));
            }
            let body = body.0.map(|array| Bytes::from(copy_bytes(&array))).unwrap_or_default();
            let op = cache_op(&call, body).map_err(|message| Exception::throw_type(&ctx, &message))?;
            let id = request.next_cache_id;
            request.next_cache_id += 1;
            request.new_cache.push((id, op));
            Ok(id)
        })?,
    )?;
    Ok(())
}

/// `env.AI.run` calls, queued for the event loop: the model's alias and the texts to embed.
fn ai_functions<'js>(ctx: &Ctx<'js>, host: &Object<'js>, shared: &Rc<InstanceShared>) -> rquickjs::Result<()> {
    let state = shared.clone();
    host.set(
        "ai",
        Function::new(ctx.clone(), move |ctx: Ctx<'js>, model: String, texts: Vec<String>| {
            let mut request = state.request.borrow_mut();
            if !request.active {
                return Err(Exception::throw_type(&ctx, "env.AI can only be used while handling a request"));
            }
            let id = request.next_ai_id;
            request.next_ai_id += 1;
            request.new_ai.push((id, runtime::ai::AiOp::Embed { model, texts }));
            Ok(id)
        })?,
    )?;
    Ok(())
}

/// Vector index calls, queued for the event loop: the call as JSON, its shape already checked
/// by the prelude.
fn vector_functions<'js>(ctx: &Ctx<'js>, host: &Object<'js>, shared: &Rc<InstanceShared>) -> rquickjs::Result<()> {
    let state = shared.clone();
    host.set(
        "vectors",
        Function::new(ctx.clone(), move |ctx: Ctx<'js>, call: String| {
            let mut request = state.request.borrow_mut();
            if !request.active {
                return Err(Exception::throw_type(&ctx, "a vector index can only be used while handling a request"));
            }
            if request.next_vectors_id > MAX_SQL_CALLS_PER_REQUEST {
                let message = format!(
                    "Vectorize: this request already made {MAX_SQL_CALLS_PER_REQUEST} calls, the limit per request; batch vectors into fewer calls"
                );
                return Err(Exception::throw_message(&ctx, &message));
            }
            let mut op: runtime::vectors::VectorOp = serde_json::from_str(&call)
                .map_err(|error| Exception::throw_type(&ctx, &format!("Vectorize: {error}")))?;
            if let runtime::vectors::VectorOp::UpsertText { author, .. } = &mut op {
                author.clone_from(&request.author);
            }
            let id = request.next_vectors_id;
            request.next_vectors_id += 1;
            request.new_vectors.push((id, op));
            Ok(id)
        })?,
    )?;
    Ok(())
}

/// A Cache API call as the prelude passes it (JSON; a put's body beside it).
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct CacheCall {
    op: String,
    cache: String,
    url: String,
    if_none_match: Option<String>,
    status: Option<u16>,
    #[serde(default)]
    headers: Vec<(String, String)>,
}

fn cache_op(call: &str, body: Bytes) -> Result<runtime::cache::CacheOp, String> {
    use runtime::cache::{CacheOp, CachedResponse};
    let call: CacheCall = serde_json::from_str(call).map_err(|error| format!("Cache: invalid call: {error}"))?;
    Ok(match call.op.as_str() {
        "match" => CacheOp::Match { cache: call.cache, url: call.url, if_none_match: call.if_none_match },
        "put" => CacheOp::Put {
            cache: call.cache,
            url: call.url,
            response: CachedResponse { status: call.status.unwrap_or(200), headers: call.headers, body },
        },
        "delete" => CacheOp::Delete { cache: call.cache, url: call.url },
        other => return Err(format!("Cache: unknown operation {other:?}")),
    })
}

/// The options of a KV call as the prelude passes them (JSON).
#[derive(serde::Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct KvOptions {
    expiration: Option<f64>,
    expiration_ttl: Option<f64>,
    /// Already JSON text.
    metadata: Option<String>,
    only_if: Option<KvOnlyIf>,
    prefix: Option<String>,
    limit: Option<f64>,
    cursor: Option<String>,
    by: Option<f64>,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct KvOnlyIf {
    absent: Option<bool>,
    etag: Option<String>,
}

/// D1 calls one request may make (D1 allows 1000 queries per invocation).
const MAX_SQL_CALLS_PER_REQUEST: u32 = 1000;

/// One D1 call of the prelude, as JSON: `{ "batch": [{ "sql", "params" }] }` or `{ "exec": sql }`.
/// Parameters are JSON values the prelude already checked: null, numbers (integers when whole),
/// strings, and `{ "blob": [bytes] }`.
fn sql_op(call: &str) -> Result<runtime::sql::SqlOp, String> {
    use runtime::sql::{SqlOp, SqlStatement, SqlValue};
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Call {
        batch: Option<Vec<Statement>>,
        exec: Option<String>,
    }
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Statement {
        sql: String,
        params: Vec<serde_json::Value>,
    }
    fn value(value: serde_json::Value) -> Result<SqlValue, String> {
        Ok(match value {
            serde_json::Value::Null => SqlValue::Null,
            serde_json::Value::Number(number) => match number.as_i64() {
                Some(integer) => SqlValue::Integer(integer),
                None => SqlValue::Real(number.as_f64().ok_or("D1_TYPE_ERROR: a number out of range")?),
            },
            serde_json::Value::String(text) => SqlValue::Text(text),
            serde_json::Value::Object(mut object) => {
                let bytes: Vec<u8> = serde_json::from_value(object.remove("blob").unwrap_or_default())
                    .map_err(|_| "D1_TYPE_ERROR: a BLOB must be bytes".to_owned())?;
                SqlValue::Blob(Bytes::from(bytes))
            }
            other => return Err(format!("D1_TYPE_ERROR: Type '{other}' not supported")),
        })
    }
    let call: Call = serde_json::from_str(call).map_err(|error| format!("D1: invalid call: {error}"))?;
    match (call.batch, call.exec) {
        (Some(statements), None) => {
            let statements = statements
                .into_iter()
                .map(|statement| {
                    let params = statement.params.into_iter().map(value).collect::<Result<_, _>>()?;
                    Ok(SqlStatement { sql: statement.sql, params })
                })
                .collect::<Result<_, String>>()?;
            Ok(SqlOp::Batch(statements))
        }
        (None, Some(sql)) => Ok(SqlOp::Exec(sql)),
        _ => Err("D1: invalid call".to_owned()),
    }
}

/// One KV call of the prelude as an operation, or the `TypeError` message Workers gives.
fn kv_op(op: &str, key: String, options: Option<&str>, value: Option<Bytes>) -> Result<runtime::kv::KvOp, String> {
    use runtime::kv::{KvOp, OnlyIf, PutOptions};
    let options: KvOptions = match options {
        None => KvOptions::default(),
        Some(json) => serde_json::from_str(json).map_err(|error| format!("KV: invalid options: {error}"))?,
    };
    let whole = |value: Option<f64>, what: &str| -> Result<Option<i64>, String> {
        match value {
            None => Ok(None),
            Some(number) if number.is_finite() => Ok(Some(number.trunc() as i64)),
            Some(_) => Err(format!("KV PUT failed: 400 Invalid {what}")),
        }
    };
    Ok(match op {
        "get" => KvOp::Get { key },
        "delete" => KvOp::Delete { key },
        "put" => {
            let only_if = match options.only_if {
                None => None,
                Some(KvOnlyIf { absent: Some(true), etag: None }) => Some(OnlyIf::Absent),
                Some(KvOnlyIf { absent: None | Some(false), etag: Some(etag) }) => Some(OnlyIf::Etag(etag)),
                Some(_) => return Err("put(): onlyIf takes { absent: true } or { etag: \"...\" }".to_owned()),
            };
            let options = PutOptions {
                expiration: whole(options.expiration, "expiration")?,
                expiration_ttl: whole(options.expiration_ttl, "expiration_ttl")?,
                metadata: options.metadata,
                only_if,
            };
            KvOp::Put { key, value: value.unwrap_or_default(), options }
        }
        "list" => {
            let limit = whole(options.limit, "limit")?.unwrap_or(1000);
            if !(1..=1000).contains(&limit) {
                return Err(format!("KV LIST failed: 400 Invalid limit: {limit}; it must be from 1 to 1000"));
            }
            KvOp::List { prefix: options.prefix.unwrap_or_default(), limit: limit as u32, cursor: options.cursor }
        }
        "increment" => KvOp::Increment { key, by: whole(options.by, "increment")?.unwrap_or(1) },
        other => return Err(format!("KV: unknown operation {other:?}")),
    })
}
