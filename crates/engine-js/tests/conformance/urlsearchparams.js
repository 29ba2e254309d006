// URLSearchParams (URL standard §6): construction, USVString conversion, live iteration, the
// urlencoded serialiser, and its tie to a URL.
export default function (test, assert) {
  const pairs = (params) => JSON.stringify([...params]);
  test("from a string", () => assert.equals(pairs(new URLSearchParams("a=1&b=2")), '[["a","1"],["b","2"]]'));
  test("a leading ? is dropped", () => assert.equals(new URLSearchParams("?a=1").get("a"), "1"));
  test("+ is a space and percent-escapes are decoded", () => assert.equals(new URLSearchParams("a=b+c%20d%C3%A9").get("a"), "b c dé"));
  test("an empty pair is skipped", () => assert.equals(new URLSearchParams("&&a=1&").size, 1));
  test("a name without = has an empty value", () => assert.equals(new URLSearchParams("flag").get("flag"), ""));
  test("from a record", () => assert.equals(pairs(new URLSearchParams({ a: "1", b: 2 })), '[["a","1"],["b","2"]]'));
  test("from a sequence of pairs", () => assert.equals(pairs(new URLSearchParams([["a", "1"], ["a", "2"]])), '[["a","1"],["a","2"]]'));
  test("a pair of three throws TypeError", () => assert.throws(TypeError, () => new URLSearchParams([["a", "b", "c"]])));
  test("a pair of one throws TypeError", () => assert.throws(TypeError, () => new URLSearchParams([["a"]])));
  test("from another URLSearchParams, a copy", () => {
    const first = new URLSearchParams("a=1");
    const second = new URLSearchParams(first);
    first.append("b", "2");
    assert.equals(second.size, 1);
  });
  test("a lone surrogate in a record key becomes U+FFFD", () => assert.equals([...new URLSearchParams({ "\ud800": "x" }).keys()][0], "\ufffd"));
  test("a lone surrogate in append() becomes U+FFFD", () => {
    const params = new URLSearchParams();
    params.append("a\udc00", "b\ud800");
    assert.equals(params.toString(), "a%EF%BF%BD=b%EF%BF%BD");
  });
  test("a lone surrogate in a pair becomes U+FFFD", () => assert.equals(new URLSearchParams([["\ud800", "1"]]).toString(), "%EF%BF%BD=1"));
  test("get() of a missing name is null", () => assert.equals(new URLSearchParams().get("x"), null));
  test("getAll()", () => assert.array(new URLSearchParams("a=1&b=2&a=3").getAll("a"), ["1", "3"]));
  test("has() with a value", () => {
    const params = new URLSearchParams("a=1&a=2");
    assert.true(params.has("a", "2"));
    assert.false(params.has("a", "3"));
  });
  test("delete() with a value", () => {
    const params = new URLSearchParams("a=1&a=2&b=1");
    params.delete("a", "1");
    assert.equals(params.toString(), "a=2&b=1");
  });
  test("set() replaces the first and removes the rest", () => {
    const params = new URLSearchParams("a=1&b=2&a=3");
    params.set("a", "9");
    assert.equals(params.toString(), "a=9&b=2");
  });
  test("sort() is stable by code units", () => {
    const params = new URLSearchParams("z=1&a=2&z=0&b=3&a=1");
    params.sort();
    assert.equals(params.toString(), "a=2&a=1&b=3&z=1&z=0");
  });
  test("sort() by UTF-16 code units, not code points", () => {
    const params = new URLSearchParams([["\ufffd", "1"], ["\ud83d\udca9", "2"]]);
    params.sort();
    assert.equals([...params.keys()][0], "\ud83d\udca9");
  });
  test("size", () => assert.equals(new URLSearchParams("a=1&a=2&b").size, 3));
  test("toString() escapes like the urlencoded serialiser", () => {
    const params = new URLSearchParams();
    params.append("a b", "*-._~!'()&=é");
    assert.equals(params.toString(), "a+b=*-._%7E%21%27%28%29%26%3D%C3%A9");
  });
  test("iteration sees an entry appended while iterating", () => {
    const params = new URLSearchParams("a=1&b=2");
    const seen = [];
    for (const [name] of params) {
      seen.push(name);
      if (name === "a") params.append("c", "3");
    }
    assert.array(seen, ["a", "b", "c"]);
  });
  test("iteration after a delete while iterating", () => {
    const params = new URLSearchParams("a=1&b=2&c=3");
    const seen = [];
    for (const [name] of params) {
      seen.push(name);
      if (name === "a") params.delete("a");
    }
    assert.array(seen, ["a", "c"]);
  });
  test("the iterator's toStringTag is URLSearchParams Iterator", () => assert.equals(Object.prototype.toString.call(new URLSearchParams().keys()), "[object URLSearchParams Iterator]"));
  test("forEach", () => {
    const seen = [];
    new URLSearchParams("a=1").forEach((value, name) => seen.push(name, value));
    assert.array(seen, ["a", "1"]);
  });
  test("a URL's searchParams follow its search", () => {
    const url = new URL("https://example.com/?a=1");
    url.search = "?b=2";
    assert.equals(url.searchParams.get("b"), "2");
    assert.equals(url.searchParams.get("a"), null);
  });
  test("changing searchParams changes the URL", () => {
    const url = new URL("https://example.com/?a=1");
    url.searchParams.append("b", "x y");
    assert.equals(url.href, "https://example.com/?a=1&b=x+y");
  });
  test("emptying searchParams empties the query", () => {
    const url = new URL("https://example.com/?a=1");
    url.searchParams.delete("a");
    assert.equals(url.href, "https://example.com/");
  });
  test("toStringTag is URLSearchParams", () => assert.equals(Object.prototype.toString.call(new URLSearchParams()), "[object URLSearchParams]"));
}
