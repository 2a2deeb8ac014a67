// Prints the size of each built asset, raw and gzipped (level 9), and the totals.
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { gzipSync } from "node:zlib";

const dir = new URL("../dist/assets/", import.meta.url).pathname;
let raw = 0;
let gzip = 0;
for (const name of readdirSync(dir).sort()) {
  const path = join(dir, name);
  if (!statSync(path).isFile()) continue;
  const bytes = readFileSync(path);
  const zipped = gzipSync(bytes, { level: 9 }).length;
  raw += bytes.length;
  gzip += zipped;
  console.log(`${name.padEnd(32)} ${(bytes.length / 1024).toFixed(1).padStart(7)} KiB  gzip ${(zipped / 1024).toFixed(1).padStart(6)} KiB`);
}
console.log(`${"total".padEnd(32)} ${(raw / 1024).toFixed(1).padStart(7)} KiB  gzip ${(gzip / 1024).toFixed(1).padStart(6)} KiB`);
