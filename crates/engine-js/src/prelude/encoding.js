// TextEncoder and TextDecoder (UTF-8 only), over the host's encoder.
//
// A part of the prelude: compiled to bytecode once per process and evaluated in an instance only
// when app code first touches one of its globals, which keeps instances small and quick to create.

export default function install(host, internal) {
  class TextEncoder {
    get encoding() { return "utf-8"; }
    encode(input = "") { return host.encodeUtf8(String(input)); }
    encodeInto(input, destination) {
      const bytes = host.encodeUtf8(String(input));
      // Copy whole characters only: stop before a UTF-8 continuation byte that does not fit.
      let written = Math.min(bytes.length, destination.length);
      while (written > 0 && written < bytes.length && (bytes[written] & 0xc0) === 0x80) written--;
      destination.set(bytes.subarray(0, written));
      const read = host.decodeUtf8(bytes.subarray(0, written), false, true).length;
      return { read, written };
    }
  }

  const UTF8_LABELS = ["utf-8", "utf8", "unicode-1-1-utf-8", "unicode11utf8", "unicode20utf8", "x-unicode20utf8"];

  class TextDecoder {
    #fatal; #ignoreBOM;
    constructor(label = "utf-8", options = {}) {
      if (!UTF8_LABELS.includes(String(label).trim().toLowerCase())) {
        throw new RangeError(`TextDecoder: the encoding "${label}" is not supported (only utf-8 is)`);
      }
      this.#fatal = Boolean(options.fatal);
      this.#ignoreBOM = Boolean(options.ignoreBOM);
    }
    get encoding() { return "utf-8"; }
    get fatal() { return this.#fatal; }
    get ignoreBOM() { return this.#ignoreBOM; }
    decode(input, options) {
      if (input === undefined) return "";
      if (!internal.isBufferSource(input)) throw new TypeError("TextDecoder.decode: input must be an ArrayBuffer or a view of one");
      return host.decodeUtf8(internal.viewBytes(input), this.#fatal, this.#ignoreBOM);
    }
  }

  internal.define("TextEncoder", TextEncoder);
  internal.define("TextDecoder", TextDecoder);
}
