// TextEncoder and TextDecoder per the WHATWG Encoding Standard, over the host's encoders (the
// encoding_rs crate): every label of the standard, UTF-16, the legacy encodings, `fatal`,
// `ignoreBOM` and streaming with `{ stream: true }`.
//
// A part of the prelude: compiled to bytecode once per process and evaluated in an instance only
// when app code first touches one of its globals, which keeps instances small and quick to create.

export default function install(host, internal) {
  const { call, StringCtor, freeze } = internal.primordials;
  const usv = internal.usv;

  class TextEncoder {
    get encoding() { return "utf-8"; }
    encode(input = "") { return host.encodeUtf8(usv(input)); }
    encodeInto(input, destination) {
      if (!(destination instanceof Uint8Array)) throw new TypeError("TextEncoder.encodeInto: the destination must be a Uint8Array");
      const answer = host.encodeInto(usv(input), destination.length);
      call(internal.primordials.TypedArraySet, destination, answer[1]);
      return { read: answer[0], written: answer[1].length };
    }
    get [internal.primordials.SymbolToStringTag]() { return "TextEncoder"; }
  }

  // Streaming decoders the host holds for this instance, closed when their TextDecoder is
  // collected (or flushed).
  const Registry = internal.primordials.FinalizationRegistryCtor;
  const finalizer = Registry === null ? null : new Registry((id) => host.decoderClose(id));

  class TextDecoder {
    #encoding; #fatal; #ignoreBOM; #stream = null; #token = null;
    constructor(label = "utf-8", options = undefined) {
      if (options !== undefined && options !== null && typeof options !== "object") {
        throw new TypeError("TextDecoder: the options must be an object");
      }
      const name = host.encodingFor(StringCtor(label));
      if (name == null) throw new RangeError(`TextDecoder: "${label}" is not an encoding label this decoder knows`);
      this.#encoding = name;
      this.#fatal = Boolean(options?.fatal);
      this.#ignoreBOM = Boolean(options?.ignoreBOM);
    }
    get encoding() { return this.#encoding; }
    get fatal() { return this.#fatal; }
    get ignoreBOM() { return this.#ignoreBOM; }
    decode(input = undefined, options = undefined) {
      return this.#decode(input, Boolean(options?.stream));
    }
    static {
      // TextDecoderStream decodes through these, never through the (redefinable) prototype.
      internal.decodeWith = (decoder, input, stream) => decoder.#decode(input, stream);
      internal.decoderInfo = (decoder) => internal.record({ encoding: decoder.#encoding, fatal: decoder.#fatal, ignoreBOM: decoder.#ignoreBOM });
    }
    #decode(input, stream) {
      let bytes;
      if (input === undefined || input === null) bytes = new internal.primordials.Uint8ArrayCtor(0);
      else if (internal.isBufferSource(input)) bytes = internal.viewBytes(input);
      else throw new TypeError("TextDecoder.decode: the input must be an ArrayBuffer or a view of one");
      if (this.#stream === null && !stream) return host.decodeOnce(this.#encoding, bytes, this.#fatal, this.#ignoreBOM);
      if (this.#stream === null) {
        this.#stream = host.decoderOpen(this.#encoding, this.#ignoreBOM);
        if (finalizer !== null) {
          this.#token = freeze({ __proto__: null });
          finalizer.register(this, this.#stream, this.#token);
        }
      }
      const id = this.#stream;
      if (!stream) this.#closeStream();
      try {
        return host.decoderDecode(id, bytes, !stream, this.#fatal);
      } catch (error) {
        // A fatal error ends the stream: the next call starts afresh.
        if (this.#stream !== null) this.#closeStream();
        host.decoderClose(id);
        throw error;
      }
    }
    #closeStream() {
      if (finalizer !== null && this.#token !== null) finalizer.unregister(this.#token);
      this.#stream = null;
      this.#token = null;
    }
    get [internal.primordials.SymbolToStringTag]() { return "TextDecoder"; }
  }

  internal.provide("TextEncoder", TextEncoder);
  internal.provide("TextDecoder", TextDecoder);
  internal.TextDecoder = TextDecoder;
}
