// TextEncoder and TextDecoder (Encoding standard §7): labels, BOMs, fatal decoding, streaming,
// surrogates, encodeInto.
import { bytes } from "./harness.js";

export default function (test, assert) {
  const encode = (text) => Array.from(new TextEncoder().encode(text));

  test("TextEncoder's encoding is utf-8", () => assert.equals(new TextEncoder().encoding, "utf-8"));
  test("encode() of nothing is empty", () => assert.array(encode(undefined), []));
  test("encode() of ASCII", () => assert.array(encode("Hi"), [72, 105]));
  test("encode() of a two-byte character", () => assert.array(encode("é"), [0xc3, 0xa9]));
  test("encode() of a three-byte character", () => assert.array(encode("€"), [0xe2, 0x82, 0xac]));
  test("encode() of a surrogate pair", () => assert.array(encode("\ud83d\udca9"), [0xf0, 0x9f, 0x92, 0xa9]));
  test("encode() of a lone high surrogate is U+FFFD", () => assert.array(encode("\ud800"), [0xef, 0xbf, 0xbd]));
  test("encode() of a lone low surrogate is U+FFFD", () => assert.array(encode("a\udc00b"), [0x61, 0xef, 0xbf, 0xbd, 0x62]));
  test("encode() of reversed surrogates", () => assert.array(encode("\udc00\ud800"), [0xef, 0xbf, 0xbd, 0xef, 0xbf, 0xbd]));
  test("encode() converts its argument with String()", () => assert.array(encode(12), [0x31, 0x32]));
  test("encode() returns a Uint8Array", () => assert.true(new TextEncoder().encode("x") instanceof Uint8Array));
  test("encodeInto() of what fits", () => {
    const into = new Uint8Array(8);
    const result = new TextEncoder().encodeInto("aé", into);
    assert.equals(result.read, 2);
    assert.equals(result.written, 3);
    assert.array(into.subarray(0, 3), [0x61, 0xc3, 0xa9]);
  });
  test("encodeInto() stops before a character that does not fit", () => {
    const into = new Uint8Array(2);
    const result = new TextEncoder().encodeInto("a€", into);
    assert.equals(result.read, 1);
    assert.equals(result.written, 1);
  });
  test("encodeInto() counts a surrogate pair as two read", () => {
    const result = new TextEncoder().encodeInto("\ud83d\udca9", new Uint8Array(4));
    assert.equals(result.read, 2);
    assert.equals(result.written, 4);
  });
  test("encodeInto() of a lone surrogate reads one and writes three", () => {
    const result = new TextEncoder().encodeInto("\ud800", new Uint8Array(4));
    assert.equals(result.read, 1);
    assert.equals(result.written, 3);
  });
  test("encodeInto() into a view at an offset", () => {
    const buffer = new Uint8Array(6);
    new TextEncoder().encodeInto("ab", buffer.subarray(2));
    assert.array(buffer, [0, 0, 0x61, 0x62, 0, 0]);
  });
  test("encodeInto() needs a Uint8Array", () => assert.throws(TypeError, () => new TextEncoder().encodeInto("a", new Uint16Array(4))));

  test("TextDecoder defaults", () => {
    const decoder = new TextDecoder();
    assert.equals(decoder.encoding, "utf-8");
    assert.equals(decoder.fatal, false);
    assert.equals(decoder.ignoreBOM, false);
  });
  for (const [label, name] of [
    ["utf8", "utf-8"], [" UTF-8\n", "utf-8"], ["unicode-1-1-utf-8", "utf-8"], ["latin1", "windows-1252"],
    ["ascii", "windows-1252"], ["iso-8859-1", "windows-1252"], ["utf-16", "utf-16le"], ["UTF-16LE", "utf-16le"],
    ["utf-16be", "utf-16be"], ["sjis", "shift_jis"], ["gbk", "gbk"], ["gb2312", "gbk"], ["gb18030", "gb18030"],
    ["euc-kr", "euc-kr"], ["big5", "big5"], ["euc-jp", "euc-jp"], ["iso-2022-jp", "iso-2022-jp"],
    ["iso-8859-2", "iso-8859-2"], ["koi8-r", "koi8-r"], ["windows-1251", "windows-1251"], ["x-user-defined", "x-user-defined"],
    ["macintosh", "macintosh"], ["iso-8859-8-i", "iso-8859-8-i"],
  ]) {
    test(`the label ${JSON.stringify(label)} is ${name}`, () => assert.equals(new TextDecoder(label).encoding, name));
  }
  for (const label of ["foo", "utf-7", "", "iso-2022-kr", "replacement", "hz-gb-2312"]) {
    test(`the label ${JSON.stringify(label)} throws RangeError`, () => assert.throws(RangeError, () => new TextDecoder(label)));
  }
  test("decode() of nothing is empty", () => assert.equals(new TextDecoder().decode(), ""));
  test("decode() of an ArrayBuffer", () => assert.equals(new TextDecoder().decode(bytes(0x68, 0x69).buffer), "hi"));
  test("decode() of a DataView", () => assert.equals(new TextDecoder().decode(new DataView(bytes(0x61, 0x62, 0x63).buffer, 1, 2)), "bc"));
  test("decode() of a string throws TypeError", () => assert.throws(TypeError, () => new TextDecoder().decode("abc")));
  test("the UTF-8 BOM is dropped", () => assert.equals(new TextDecoder().decode(bytes(0xef, 0xbb, 0xbf, 0x61)), "a"));
  test("with ignoreBOM the BOM is kept", () => assert.equals(new TextDecoder("utf-8", { ignoreBOM: true }).decode(bytes(0xef, 0xbb, 0xbf, 0x61)), "\ufeffa"));
  test("a UTF-16LE BOM is dropped", () => assert.equals(new TextDecoder("utf-16le").decode(bytes(0xff, 0xfe, 0x61, 0x00)), "a"));
  test("a BOM of another encoding is not sniffed", () => assert.equals(new TextDecoder("utf-8").decode(bytes(0xff, 0xfe, 0x61, 0x00)), "\ufffd\ufffda\u0000"));
  test("invalid UTF-8 becomes U+FFFD", () => assert.equals(new TextDecoder().decode(bytes(0x61, 0xff, 0x62)), "a\ufffdb"));
  test("an overlong encoding becomes U+FFFD", () => assert.equals(new TextDecoder().decode(bytes(0xc0, 0x80)), "\ufffd\ufffd"));
  test("an encoded surrogate becomes U+FFFD", () => assert.equals(new TextDecoder().decode(bytes(0xed, 0xa0, 0x80)), "\ufffd\ufffd\ufffd"));
  test("fatal: invalid UTF-8 throws TypeError", () => assert.throws(TypeError, () => new TextDecoder("utf-8", { fatal: true }).decode(bytes(0xff))));
  test("fatal: valid input decodes", () => assert.equals(new TextDecoder("utf-8", { fatal: true }).decode(bytes(0xe2, 0x82, 0xac)), "€"));
  test("fatal: the decoder works again after an error", () => {
    const decoder = new TextDecoder("utf-8", { fatal: true });
    assert.throws(TypeError, () => decoder.decode(bytes(0xff)));
    assert.equals(decoder.decode(bytes(0x61)), "a");
  });
  test("stream: a character split over three calls", () => {
    const decoder = new TextDecoder();
    assert.equals(decoder.decode(bytes(0xe2), { stream: true }), "");
    assert.equals(decoder.decode(bytes(0x82), { stream: true }), "");
    assert.equals(decoder.decode(bytes(0xac), { stream: true }), "€");
    assert.equals(decoder.decode(), "");
  });
  test("stream: an incomplete character at the end becomes U+FFFD", () => {
    const decoder = new TextDecoder();
    assert.equals(decoder.decode(bytes(0x61, 0xe2, 0x82), { stream: true }), "a");
    assert.equals(decoder.decode(), "\ufffd");
  });
  test("stream: fatal and incomplete at the end throws TypeError", () => {
    const decoder = new TextDecoder("utf-8", { fatal: true });
    decoder.decode(bytes(0xe2), { stream: true });
    assert.throws(TypeError, () => decoder.decode());
  });
  test("stream: the BOM is dropped only at the start", () => {
    const decoder = new TextDecoder();
    assert.equals(decoder.decode(bytes(0xef, 0xbb), { stream: true }), "");
    assert.equals(decoder.decode(bytes(0xbf, 0x61), { stream: true }), "a");
    assert.equals(decoder.decode(bytes(0xef, 0xbb, 0xbf)), "\ufeff");
  });
  test("stream: a surrogate pair split in UTF-16", () => {
    const decoder = new TextDecoder("utf-16le");
    assert.equals(decoder.decode(bytes(0x3d, 0xd8), { stream: true }), "");
    assert.equals(decoder.decode(bytes(0xa9, 0xdc)), "\ud83d\udca9");
  });
  test("stream: a decoder is reusable after a flush", () => {
    const decoder = new TextDecoder();
    decoder.decode(bytes(0xe2), { stream: true });
    decoder.decode();
    assert.equals(decoder.decode(bytes(0x61)), "a");
  });
  test("UTF-16BE", () => assert.equals(new TextDecoder("utf-16be").decode(bytes(0x00, 0x61, 0x20, 0xac)), "a€"));
  test("UTF-16LE with an odd byte at the end", () => assert.equals(new TextDecoder("utf-16le").decode(bytes(0x61, 0x00, 0x62)), "a\ufffd"));
  test("UTF-16LE lone surrogate becomes U+FFFD", () => assert.equals(new TextDecoder("utf-16le").decode(bytes(0x00, 0xd8, 0x61, 0x00)), "\ufffda"));
  test("windows-1252 0x80 is the euro sign", () => assert.equals(new TextDecoder("windows-1252").decode(bytes(0x80, 0xe9)), "€é"));
  test("iso-8859-2", () => assert.equals(new TextDecoder("iso-8859-2").decode(bytes(0xb1)), "ą"));
  test("Shift_JIS", () => assert.equals(new TextDecoder("shift_jis").decode(bytes(0x93, 0xfa, 0x96, 0x7b)), "日本"));
  test("EUC-KR", () => assert.equals(new TextDecoder("euc-kr").decode(bytes(0xc7, 0xd1)), "한"));
  test("GBK", () => assert.equals(new TextDecoder("gbk").decode(bytes(0xd6, 0xd0)), "中"));
  test("Big5", () => assert.equals(new TextDecoder("big5").decode(bytes(0xa4, 0xa4)), "中"));
  test("x-user-defined maps high bytes to U+F780..", () => assert.equals(new TextDecoder("x-user-defined").decode(bytes(0x61, 0x80)), "a\uf780"));
  test("fatal Shift_JIS throws TypeError on a bad byte", () => assert.throws(TypeError, () => new TextDecoder("shift_jis", { fatal: true }).decode(bytes(0xa0))));
  test("options null is fine", () => assert.equals(new TextDecoder("utf-8", null).fatal, false));
  test("options that are not an object throw TypeError", () => assert.throws(TypeError, () => new TextDecoder("utf-8", 1)));
  test("a decode of a shared view of a bigger buffer", () => {
    const buffer = bytes(0x78, 0x61, 0x62, 0x78);
    assert.equals(new TextDecoder().decode(buffer.subarray(1, 3)), "ab");
  });
  test("toStringTags", () => {
    assert.equals(String(new TextEncoder()), "[object TextEncoder]");
    assert.equals(String(new TextDecoder()), "[object TextDecoder]");
  });
  test("many streaming decoders at once", () => {
    const decoders = [];
    for (let i = 0; i < 50; i++) {
      const decoder = new TextDecoder();
      decoder.decode(bytes(0xe2), { stream: true });
      decoders.push(decoder);
    }
    for (const decoder of decoders) assert.equals(decoder.decode(bytes(0x82, 0xac)), "€");
  });
}
