// Blob, File and FormData, with the multipart/form-data and urlencoded forms bodies use.
//
// A part of the prelude: compiled to bytecode once per process and evaluated in an instance only
// when app code first touches one of its globals (or a body is read as a blob or form).

export default function install(host, internal) {
  const {
    call, StringCtor, ArrayPush, ArrayJoin, StringToLowerCase, StringSlice, StringCharCodeAt, StringFromCharCode, ReflectApply,
    TypedArraySet, TypedArraySlice, TypedArraySubarray, Uint8ArrayCtor, SymbolIterator, freeze, PromiseResolve,
  } = internal.primordials;
  const { matches, trimHttp } = internal;
  const { copyBytes, viewBytes, concatBytes, encodeText, decodeText, usv, record, entries } = internal.load("shared");

  // A type as the File API keeps it: lowercase, or "" when it has a character outside U+0020-U+007E.
  const PRINTABLE = /^[\x20-\x7e]*$/;
  const normalizeType = (type) => {
    const text = StringCtor(type);
    return matches(PRINTABLE, text) ? call(StringToLowerCase, text) : "";
  };

  let blobBytes, blobSet;

  class Blob {
    #bytes;
    #type;
    constructor(parts = undefined, options = undefined) {
      const chunks = [];
      if (options !== undefined && options !== null && typeof options !== "object" && typeof options !== "function") {
        throw new TypeError("Blob: the options must be an object");
      }
      const native = options?.endings === undefined ? false : endings(options.endings);
      if (parts !== undefined) {
        if (parts === null || typeof parts !== "object" || typeof parts[SymbolIterator] !== "function") {
          throw new TypeError("Blob: the parts must be an array (or another iterable) of strings, BufferSources and Blobs");
        }
        for (const part of parts) {
          if (part instanceof Blob) call(ArrayPush, chunks, part.#bytes);
          else if (internal.isBufferSource(part)) call(ArrayPush, chunks, copyBytes(part));
          else {
            let text = usv(part);
            if (native) text = newlines(text, "\n");
            call(ArrayPush, chunks, encodeText(text));
          }
        }
      }
      this.#bytes = chunks.length === 1 ? chunks[0] : concatBytes(chunks);
      this.#type = options?.type === undefined ? "" : normalizeType(options.type);
    }
    static {
      blobBytes = (blob) => blob.#bytes;
      // Points a fresh Blob (or File) at bytes nobody else holds.
      blobSet = (blob, bytes, type) => {
        blob.#bytes = bytes;
        blob.#type = normalizeType(type);
        return blob;
      };
    }
    get size() { return this.#bytes.byteLength; }
    get type() { return this.#type; }
    slice(start = undefined, end = undefined, contentType = undefined) {
      const size = this.#bytes.byteLength;
      const clamp = (value, fallback) => {
        if (value === undefined) return fallback;
        const number = Math.trunc(Number(value)) || 0;
        return number < 0 ? Math.max(size + number, 0) : Math.min(number, size);
      };
      const from = clamp(start, 0);
      const to = Math.max(clamp(end, size), from);
      return blobSet(new Blob(), call(TypedArraySubarray, this.#bytes, from, to), contentType === undefined ? "" : contentType);
    }
    text() { return PromiseResolve(decodeText(this.#bytes)); }
    arrayBuffer() { return PromiseResolve(call(TypedArraySlice, this.#bytes).buffer); }
    bytes() { return PromiseResolve(call(TypedArraySlice, this.#bytes)); }
    stream() {
      const bytes = this.#bytes;
      if (bytes.byteLength === 0) {
        const empty = new (internal.load("streams").ReadableStream)();
        internal.readableOps.close(empty);
        return empty;
      }
      return internal.load("streams").chunkStream(call(TypedArraySlice, bytes));
    }
    get [internal.primordials.SymbolToStringTag]() { return "Blob"; }
  }

  function endings(value) {
    const text = StringCtor(value);
    if (text !== "transparent" && text !== "native") {
      throw new TypeError(`Blob: endings must be "transparent" or "native", not "${text}"`);
    }
    return text === "native";
  }

  class File extends Blob {
    #name;
    #lastModified;
    constructor(bits, name, options = undefined) {
      if (arguments.length < 2) throw new TypeError("File: a name is required: new File(parts, name, options)");
      super(bits, options);
      this.#name = usv(name);
      const modified = options?.lastModified;
      this.#lastModified = modified === undefined ? Date.now() : Math.trunc(Number(modified)) || 0;
    }
    get name() { return this.#name; }
    get lastModified() { return this.#lastModified; }
    get webkitRelativePath() { return ""; }
    get [internal.primordials.SymbolToStringTag]() { return "File"; }
  }

  // A File over bytes (a part of a parsed form, a Blob appended to a FormData).
  const makeFile = (bytes, name, type, lastModified) =>
    blobSet(new File([], name, { __proto__: null, lastModified }), bytes, type);

  const formIterator = internal.pairIterators("FormData Iterator");
  let formEntries;

  // An entry's value: a string, or a File (a Blob becomes one named "blob").
  function entryValue(value, filename, count) {
    if (value instanceof Blob) {
      if (count > 2 || filename !== undefined || !(value instanceof File)) {
        const name = filename !== undefined ? usv(filename) : value instanceof File ? value.name : "blob";
        const lastModified = value instanceof File ? value.lastModified : undefined;
        return makeFile(blobBytes(value), name, value.type, lastModified);
      }
      return value;
    }
    if (count > 2) throw new TypeError("FormData: a filename can only be given with a Blob or File value");
    return usv(value);
  }

  class FormData {
    #list = [];
    constructor(form = undefined) {
      if (form !== undefined) throw new TypeError("FormData: there are no HTML forms here; create it empty and append()");
    }
    append(name, value, filename = undefined) {
      call(ArrayPush, this.#list, [usv(name), entryValue(value, filename, arguments.length)]);
    }
    delete(name) { this.#list = entries.without(this.#list, usv(name)); }
    get(name) { return entries.get(this.#list, usv(name)); }
    getAll(name) { return entries.getAll(this.#list, usv(name)); }
    has(name) { return entries.has(this.#list, usv(name)); }
    set(name, value, filename = undefined) {
      this.#list = entries.replaced(this.#list, [usv(name), entryValue(value, filename, arguments.length)]);
    }
    forEach(callback, thisArg = undefined) {
      if (typeof callback !== "function") throw new TypeError("FormData.forEach: the callback must be a function");
      for (let i = 0; i < this.#list.length; i++) ReflectApply(callback, thisArg, [this.#list[i][1], this.#list[i][0], this]);
    }
    entries() { return formIterator(() => this.#list, "entries"); }
    keys() { return formIterator(() => this.#list, "keys"); }
    values() { return formIterator(() => this.#list, "values"); }
    get [internal.primordials.SymbolToStringTag]() { return "FormData"; }
    static {
      formEntries = (form) => form.#list;
    }
  }
  internal.iterable(FormData);

  // ---------------------------------------------------------------------------------------------
  // multipart/form-data (RFC 7578, as the HTML standard writes it).

  // A name or filename in a Content-Disposition: LF, CR and '"' percent-encoded, as the HTML
  // standard's form encoding does.
  const escapeName = (name) => replaceEach(name, (c) => (c === "\n" ? "%0A" : c === "\r" ? "%0D" : c === '"' ? "%22" : null));

  function serializeFormData(form) {
    const random = host.randomBytes(16);
    let boundary = "----TerrariumFormBoundary";
    for (let i = 0; i < random.length; i++) boundary += "0123456789abcdef"[random[i] & 15];
    const chunks = [];
    const list = formEntries(form);
    for (let i = 0; i < list.length; i++) {
      const name = list[i][0];
      const value = list[i][1];
      let head = `--${boundary}\r\nContent-Disposition: form-data; name="${escapeName(name)}"`;
      if (value instanceof File) {
        head += `; filename="${escapeName(value.name)}"\r\nContent-Type: ${value.type || "application/octet-stream"}\r\n\r\n`;
        call(ArrayPush, chunks, encodeText(head), blobBytes(value), encodeText("\r\n"));
      } else {
        call(ArrayPush, chunks, encodeText(`${head}\r\n\r\n${newlines(value, "\r\n")}\r\n`));
      }
    }
    call(ArrayPush, chunks, encodeText(`--${boundary}--\r\n`));
    return record({ source: concatBytes(chunks), type: `multipart/form-data; boundary=${boundary}` });
  }

  // Where `needle` starts in `bytes` at or after `from`, or -1.
  function find(bytes, needle, from) {
    const last = bytes.length - needle.length;
    outer: for (let i = from; i <= last; i++) {
      for (let j = 0; j < needle.length; j++) if (bytes[i + j] !== needle[j]) continue outer;
      return i;
    }
    return -1;
  }

  // Bytes as Latin-1 text (headers of a part).
  function latin1(bytes) {
    let text = "";
    for (let i = 0; i < bytes.length; i++) text += StringFromCharCode(bytes[i]);
    return text;
  }

  // A parameter of a header value (`type; name="value"; other=value`): read left to right,
  // quoted strings as one token, so a ';' or 'name=' inside quotes is never a parameter.
  function parameter(value, name) {
    const wanted = call(StringToLowerCase, name);
    let at = 0;
    // Skip the value itself (`form-data`, `multipart/form-data`), then each parameter.
    while (at < value.length && value[at] !== ";") at = value[at] === '"' ? skipQuoted(value, at) : at + 1;
    while (at < value.length) {
      at++; // past ';'
      while (value[at] === " " || value[at] === "\t") at++;
      let key = "";
      while (at < value.length && value[at] !== "=" && value[at] !== ";") key += value[at++];
      key = call(StringToLowerCase, trimEndBlanks(key));
      if (value[at] !== "=") continue;
      at++;
      while (value[at] === " " || value[at] === "\t") at++;
      let found = "";
      if (value[at] === '"') {
        at++;
        while (at < value.length && value[at] !== '"') {
          if (value[at] === "\\" && at + 1 < value.length) at++;
          found += value[at++];
        }
        at++;
        while (at < value.length && value[at] !== ";") at++;
      } else {
        while (at < value.length && value[at] !== ";") found += value[at++];
        found = trimEndBlanks(found);
      }
      if (key === wanted) return found;
    }
    return undefined;
  }

  // Past the quoted string that starts at `at`.
  function skipQuoted(value, at) {
    at++;
    while (at < value.length && value[at] !== '"') at += value[at] === "\\" ? 2 : 1;
    return at + 1;
  }

  const FORM_DATA = /^form-data\s*(;|$)/i;

  // String helpers that call no method a changed String.prototype could supply.
  function indexOfChar(text, char) {
    for (let i = 0; i < text.length; i++) if (text[i] === char) return i;
    return -1;
  }
  // `text` with each character `replacement(c)` names (non-null) replaced.
  function replaceEach(text, replacement) {
    const parts = [];
    let from = 0;
    for (let i = 0; i < text.length; i++) {
      const replaced = replacement(text[i]);
      if (replaced !== null) {
        call(ArrayPush, parts, call(StringSlice, text, from, i), replaced);
        from = i + 1;
      }
    }
    if (from === 0) return text;
    call(ArrayPush, parts, call(StringSlice, text, from));
    return call(ArrayJoin, parts, "");
  }
  // `text` with every CR LF, lone CR and lone LF as `newline`.
  function newlines(text, newline) {
    const parts = [];
    let from = 0;
    for (let i = 0; i < text.length; i++) {
      const c = text[i];
      if (c !== "\r" && c !== "\n") continue;
      call(ArrayPush, parts, call(StringSlice, text, from, i), newline);
      if (c === "\r" && text[i + 1] === "\n") i++;
      from = i + 1;
    }
    if (from === 0) return text;
    call(ArrayPush, parts, call(StringSlice, text, from));
    return call(ArrayJoin, parts, "");
  }
  function splitLines(text) {
    const lines = [];
    let from = 0;
    for (let i = 0; i + 1 < text.length; i++) {
      if (text[i] === "\r" && text[i + 1] === "\n") {
        call(ArrayPush, lines, call(StringSlice, text, from, i));
        from = i + 2;
        i++;
      }
    }
    call(ArrayPush, lines, call(StringSlice, text, from));
    return lines;
  }
  function trimEndBlanks(text) {
    let end = text.length;
    while (end > 0 && (text[end - 1] === " " || text[end - 1] === "\t")) end--;
    return call(StringSlice, text, 0, end);
  }

  const malformed = (why) => new TypeError(`formData(): the multipart/form-data body is malformed: ${why}`);

  function parseMultipart(bytes, boundary) {
    const form = new FormData();
    const list = formEntries(form);
    const delimiter = encodeText(`--${boundary}`);
    let at = find(bytes, delimiter, 0);
    if (at < 0) throw malformed(`the boundary ${boundary} is not in it`);
    for (;;) {
      at += delimiter.length;
      // "--" after a delimiter closes the body.
      if (bytes[at] === 0x2d && bytes[at + 1] === 0x2d) return form;
      // Transport padding, then CRLF.
      while (bytes[at] === 0x20 || bytes[at] === 0x09) at++;
      if (bytes[at] !== 0x0d || bytes[at + 1] !== 0x0a) throw malformed("a boundary line does not end with CRLF");
      at += 2;
      const headersEnd = find(bytes, CRLF_CRLF, at);
      if (headersEnd < 0) throw malformed("a part has no blank line after its headers");
      let name, filename, type = "";
      const lines = splitLines(latin1(call(TypedArraySubarray, bytes, at, headersEnd)));
      for (let i = 0; i < lines.length; i++) {
        const colon = indexOfChar(lines[i], ":");
        if (colon < 0) throw malformed(`a part has a header line without a colon: ${lines[i]}`);
        const header = call(StringToLowerCase, trimHttp(call(StringSlice, lines[i], 0, colon)));
        const value = trimHttp(call(StringSlice, lines[i], colon + 1));
        if (header === "content-disposition") {
          if (!matches(FORM_DATA, value)) throw malformed("a part's Content-Disposition is not form-data");
          name = parameter(value, "name");
          filename = parameter(value, "filename");
        } else if (header === "content-type") {
          type = value;
        }
      }
      if (name === undefined) throw malformed("a part has no name in its Content-Disposition");
      const start = headersEnd + 4;
      const next = find(bytes, CRLF_DELIMITER(delimiter), start);
      if (next < 0) throw malformed("the last part is not closed by the boundary");
      const content = call(TypedArraySlice, bytes, start, next);
      // Names and filenames are UTF-8 in the header bytes.
      const utf8 = (text) => decodeText(encodeLatin1(text));
      if (filename !== undefined) {
        call(ArrayPush, list, [utf8(name), makeFile(content, utf8(filename), type, undefined)]);
      } else {
        call(ArrayPush, list, [utf8(name), decodeText(content)]);
      }
      at = next + 2;
    }
  }

  const CRLF_CRLF = new Uint8ArrayCtor([13, 10, 13, 10]);
  const CRLF_DELIMITER = (delimiter) => {
    const out = new Uint8ArrayCtor(delimiter.length + 2);
    out[0] = 13;
    out[1] = 10;
    call(TypedArraySet, out, delimiter, 2);
    return out;
  };
  function encodeLatin1(text) {
    const out = new Uint8ArrayCtor(text.length);
    for (let i = 0; i < text.length; i++) out[i] = call(StringCharCodeAt, text, i) & 0xff;
    return out;
  }

  // A body's bytes as a FormData, by its Content-Type.
  function parseFormData(bytes, contentType) {
    const semicolon = indexOfChar(contentType, ";");
    const essence = call(StringToLowerCase, trimHttp(semicolon < 0 ? contentType : call(StringSlice, contentType, 0, semicolon)));
    if (essence === "multipart/form-data") {
      const boundary = parameter(contentType, "boundary");
      if (!boundary) throw new TypeError("formData(): the multipart/form-data Content-Type has no boundary");
      return parseMultipart(viewBytes(bytes), boundary);
    }
    if (essence === "application/x-www-form-urlencoded") {
      const form = new FormData();
      const list = formEntries(form);
      const flat = internal.load("url").parseQuery(decodeText(bytes));
      for (let i = 0; i < flat.length; i += 2) call(ArrayPush, list, [flat[i], flat[i + 1]]);
      return form;
    }
    throw new TypeError(
      `formData(): the body's Content-Type is "${contentType || "(none)"}"; it must be multipart/form-data or application/x-www-form-urlencoded`,
    );
  }

  internal.provide("Blob", Blob);
  internal.provide("File", File);
  internal.provide("FormData", FormData);
  internal.isBlob = (value) => value instanceof Blob;
  internal.isFile = (value) => value instanceof File;
  internal.isFormData = (value) => value instanceof FormData;
  internal.blobBytes = blobBytes;
  internal.makeBlob = (bytes, type) => blobSet(new Blob(), bytes, type);
  internal.makeFile = makeFile;
  internal.serializeFormData = serializeFormData;
  internal.parseFormData = parseFormData;
}
