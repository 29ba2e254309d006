// URL parsing and setters, driven by the Web Platform Tests' own data files (urltestdata.json,
// setters_tests.json; see wpt/SOURCE.md), and TextDecoder labels from encodings.json.
import parsing from "./wpt/urltestdata.js";
import setters from "./wpt/setters_tests.js";

const FIELDS = ["href", "protocol", "username", "password", "host", "hostname", "port", "pathname", "search", "hash"];

export default function (test, assert) {
  test("a lone surrogate in a URL becomes U+FFFD", () => assert.equals(new URL("https://example.com/\ud800").pathname, "/%EF%BF%BD"));
  test("a lone surrogate in a setter becomes U+FFFD", () => {
    const url = new URL("https://example.com/");
    url.hash = "\udc00";
    assert.equals(url.hash, "#%EF%BF%BD");
  });
  test("an invalid URL throws TypeError", () => assert.throws(TypeError, () => new URL("http://[::1")));
  test("URL.parse() of an invalid URL is null", () => assert.equals(URL.parse("nope"), null));
  for (const entry of parsing) {
    if (typeof entry === "string") continue;
    const name = `parse ${JSON.stringify(entry.input)}${entry.base === null || entry.base === undefined ? "" : ` against ${JSON.stringify(entry.base)}`}`;
    test(name, () => {
      const make = () => (entry.base === null || entry.base === undefined ? new URL(entry.input) : new URL(entry.input, entry.base));
      if (entry.failure) {
        assert.throws(TypeError, make);
        return;
      }
      const url = make();
      for (const field of FIELDS) assert.equals(url[field], entry[field], field);
      if (entry.origin !== undefined) assert.equals(url.origin, entry.origin, "origin");
      if (entry.searchParams !== undefined) assert.equals(url.searchParams.toString(), entry.searchParams, "searchParams");
    });
    test(`canParse ${JSON.stringify(entry.input)}${entry.base ? ` against ${JSON.stringify(entry.base)}` : ""}`, () => {
      const parsed = entry.base === null || entry.base === undefined ? URL.canParse(entry.input) : URL.canParse(entry.input, entry.base);
      assert.equals(parsed, !entry.failure);
    });
  }
  for (const [setter, cases] of Object.entries(setters)) {
    if (setter === "comment") continue;
    for (const entry of cases) {
      test(`set ${setter} of ${JSON.stringify(entry.href)} to ${JSON.stringify(entry.new_value)}`, () => {
        const url = new URL(entry.href);
        url[setter] = entry.new_value;
        for (const [field, expected] of Object.entries(entry.expected)) assert.equals(url[field], expected, field);
      });
    }
  }
}
