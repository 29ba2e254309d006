// Headers (Fetch standard §5.2): construction, validation, combination, iteration.


export default function (test, assert) {
  const list = (headers) => [...headers].map(([name, value]) => `${name}: ${value}`);

  test("new Headers() is empty", () => assert.array(list(new Headers()), []));
  test("new Headers(undefined) is empty", () => assert.array(list(new Headers(undefined)), []));
  test("new Headers(null) throws TypeError", () => assert.throws(TypeError, () => new Headers(null)));
  test("new Headers(1) throws TypeError", () => assert.throws(TypeError, () => new Headers(1)));
  test("new Headers(string) throws TypeError", () => assert.throws(TypeError, () => new Headers("a: b")));
  test("a record initialises", () => assert.array(list(new Headers({ b: "2", A: "1" })), ["a: 1", "b: 2"]));
  test("a sequence of pairs initialises", () => assert.array(list(new Headers([["x", "1"], ["y", "2"]])), ["x: 1", "y: 2"]));
  test("a pair of three throws TypeError", () => assert.throws(TypeError, () => new Headers([["a", "b", "c"]])));
  test("a pair of one throws TypeError", () => assert.throws(TypeError, () => new Headers([["a"]])));
  test("a sequence of non-sequences throws TypeError", () => assert.throws(TypeError, () => new Headers([1])));
  test("another Headers is copied", () => {
    const first = new Headers([["a", "1"]]);
    const second = new Headers(first);
    first.set("a", "2");
    assert.equals(second.get("a"), "1");
  });
  test("iterable pairs made of iterables", () => {
    const pair = new Set(["k", "v"]);
    assert.array(list(new Headers([pair])), ["k: v"]);
  });
  for (const name of ["", "a b", "é", "a:b", "(x)", "a\nb", "a\u0000"]) {
    test(`append(${JSON.stringify(name)}) throws TypeError`, () => assert.throws(TypeError, () => new Headers().append(name, "v")));
  }
  for (const value of ["a\u0000b", "a\nb", "a\rb"]) {
    test(`a value with ${JSON.stringify(value)} throws TypeError`, () => assert.throws(TypeError, () => new Headers().append("a", value)));
  }
  test("a value above U+00FF throws TypeError", () => assert.throws(TypeError, () => new Headers().append("a", "€")));
  test("a value of Latin-1 is kept", () => assert.equals(new Headers([["a", "ÿ"]]).get("a"), "ÿ"));
  test("leading and trailing HTTP whitespace is removed", () => {
    const headers = new Headers();
    headers.append("a", " \t x y \t ");
    headers.append("b", "\r\nz\n");
    assert.equals(headers.get("a"), "x y");
    assert.equals(headers.get("b"), "z");
  });
  test("get() combines values with a comma and a space", () => {
    const headers = new Headers([["a", "1"], ["A", "2"]]);
    assert.equals(headers.get("a"), "1, 2");
  });
  test("get() of a missing name is null", () => assert.equals(new Headers().get("nope"), null));
  test("get() of an invalid name throws TypeError", () => assert.throws(TypeError, () => new Headers().get("a b")));
  test("has() ignores case", () => assert.true(new Headers({ "Content-Type": "x" }).has("content-type")));
  test("delete() ignores case and removes every value", () => {
    const headers = new Headers([["a", "1"], ["A", "2"], ["b", "3"]]);
    headers.delete("A");
    assert.array(list(headers), ["b: 3"]);
  });
  test("delete() of a missing name is fine", () => new Headers().delete("x"));
  test("set() replaces the first and removes the rest", () => {
    const headers = new Headers([["a", "1"], ["b", "2"], ["a", "3"]]);
    headers.set("a", "9");
    assert.equals(headers.get("a"), "9");
    assert.array(list(headers), ["a: 9", "b: 2"]);
  });
  test("iteration is sorted by lowercase name", () => assert.array(list(new Headers([["Z", "1"], ["a", "2"], ["M", "3"]])), ["a: 2", "m: 3", "z: 1"]));
  test("set-cookie values are not combined in iteration", () => {
    const headers = new Headers([["set-cookie", "a=1"], ["Set-Cookie", "b=2"], ["x", "y"]]);
    assert.array(list(headers), ["set-cookie: a=1", "set-cookie: b=2", "x: y"]);
  });
  test("getSetCookie() lists every set-cookie", () => assert.array(new Headers([["set-cookie", "a=1"], ["set-cookie", "b=2"]]).getSetCookie(), ["a=1", "b=2"]));
  test("getSetCookie() without any is []", () => assert.array(new Headers().getSetCookie(), []));
  test("keys() and values()", () => {
    const headers = new Headers([["b", "2"], ["a", "1"]]);
    assert.array([...headers.keys()], ["a", "b"]);
    assert.array([...headers.values()], ["1", "2"]);
  });
  test("the iterator's toStringTag is Headers Iterator", () => assert.equals(Object.prototype.toString.call(new Headers().entries()), "[object Headers Iterator]"));
  test("the iterator inherits from %IteratorPrototype%", () => {
    const iteratorPrototype = Object.getPrototypeOf(Object.getPrototypeOf([][Symbol.iterator]()));
    assert.equals(Object.getPrototypeOf(Object.getPrototypeOf(new Headers().keys())), iteratorPrototype);
  });
  test("the iterator is not a generator", () => assert.equals(typeof new Headers().entries().throw, "undefined"));
  test("next() on a foreign object throws TypeError", () => {
    const next = new Headers().entries().next;
    assert.throws(TypeError, () => next.call({}));
  });
  test("iteration sees a header added while iterating", () => {
    const headers = new Headers([["a", "1"], ["c", "3"]]);
    const seen = [];
    for (const [name] of headers) {
      seen.push(name);
      if (name === "a") headers.append("b", "2");
    }
    assert.array(seen, ["a", "b", "c"]);
  });
  test("Symbol.iterator is entries", () => assert.equals(Headers.prototype[Symbol.iterator], Headers.prototype.entries));
  test("Symbol.iterator is not enumerable", () => assert.false(Object.getOwnPropertyDescriptor(Headers.prototype, Symbol.iterator).enumerable));
  test("forEach passes value, name, headers", () => {
    const headers = new Headers([["a", "1"]]);
    const calls = [];
    headers.forEach(function (value, name, target) { calls.push([value, name, target === headers, this.tag]); }, { tag: "t" });
    assert.equals(JSON.stringify(calls), JSON.stringify([["1", "a", true, "t"]]));
  });
  test("forEach without a function throws TypeError", () => assert.throws(TypeError, () => new Headers().forEach(1)));
  test("toStringTag is Headers", () => assert.equals(String(new Headers()), "[object Headers]"));
  test("Response.error() headers are immutable", () => assert.throws(TypeError, () => Response.error().headers.set("a", "b")));
  test("Response.redirect() headers are immutable", () => assert.throws(TypeError, () => Response.redirect("https://example.com/").headers.append("a", "b")));
  test("a response's headers are mutable", () => {
    const response = new Response("x");
    response.headers.set("a", "b");
    assert.equals(response.headers.get("a"), "b");
  });
  test("values are converted with String()", () => assert.equals(new Headers([["a", 1]]).get("a"), "1"));
  test("names are lowercased when iterated", () => assert.array([...new Headers({ "X-Thing": "1" }).keys()], ["x-thing"]));
  test("the init record's values are read in order", () => {
    const order = [];
    const record = {};
    Object.defineProperty(record, "b", { enumerable: true, get() { order.push("b"); return "2"; } });
    Object.defineProperty(record, "a", { enumerable: true, get() { order.push("a"); return "1"; } });
    new Headers(record);
    assert.array(order, ["b", "a"]);
  });
}
