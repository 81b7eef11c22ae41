// node tests/js/xwing_kat.mjs .../HPKE/hpke-pq-test-vectors.json
// Prints, as JSON, which 0x647a vectors server/static/xwing.js reproduces.
import { readFileSync } from "node:fs";

import * as xwing from "../../server/static/xwing.js";
import { xwingKat } from "../e2e/harness/xwing_kat.js";

const vectors = JSON.parse(readFileSync(process.argv[2], "utf8"));
console.log(JSON.stringify(await xwingKat(vectors, xwing)));
