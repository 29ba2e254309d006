// Every label of the Encoding standard, from the Web Platform Tests' encodings table (see
// wpt/SOURCE.md): a TextDecoder made with it names its encoding, or refuses the replacement
// encoding with a RangeError.
import table from "./wpt/encodings.js";

export default function (test, assert) {
  for (const group of table) {
    for (const encoding of group.encodings) {
      for (const label of encoding.labels) {
        test(`${label} is ${encoding.name}`, () => {
          if (encoding.name === "replacement") {
            assert.throws(RangeError, () => new TextDecoder(label));
            return;
          }
          assert.equals(new TextDecoder(label).encoding, encoding.name);
          assert.equals(new TextDecoder(` ${label.toUpperCase()}\t`).encoding, encoding.name, "trimmed, any case");
        });
      }
    }
  }
}
