// Prints, as JSON, the shape of every websocket message declared in src/protocol/types.ts, as the
// TypeScript compiler itself resolves it: for the unions `ClientMessage` and `ServerMessage`,
// each member's properties, whether each is optional, and its type as a list of alternatives
// (string, number, boolean, null, literals, arrays, nested objects). Aliases and interfaces are
// resolved, so the file's layout does not matter.
//
// tests/frontend_contract/ compares this with the server's JSON Schema
// (`chat.protocol.json_schema()`), so that a change to chat/protocol.py cannot leave the browser
// app behind silently:  .venv/bin/pytest tests/frontend_contract
//
// Usage: node scripts/protocol-shapes.mjs [path/to/types.ts]   (run in frontend/)
import { fileURLToPath } from "node:url";
import { resolve } from "node:path";
import ts from "typescript";

const UNIONS = ["ClientMessage", "ServerMessage"];
const file = resolve(process.argv[2] ?? fileURLToPath(new URL("../src/protocol/types.ts", import.meta.url)));

function fail(message) {
  process.stderr.write(`protocol-shapes: ${message}\n`);
  process.exit(1);
}

const program = ts.createProgram([file], {
  strict: true,
  noEmit: true,
  target: ts.ScriptTarget.ES2022,
  lib: ["lib.es2022.d.ts"],
  types: [],
  skipLibCheck: true,
});
const source = program.getSourceFile(file);
if (!source) fail(`cannot read ${file}`);
const diagnostics = ts.getPreEmitDiagnostics(program, source);
if (diagnostics.length) {
  fail(
    ts.formatDiagnostics(diagnostics, {
      getCanonicalFileName: (name) => name,
      getCurrentDirectory: () => process.cwd(),
      getNewLine: () => "\n",
    }),
  );
}

const checker = program.getTypeChecker();
const moduleSymbol = checker.getSymbolAtLocation(source);
if (!moduleSymbol) fail(`${file} is not a module`);
const exported = new Map(checker.getExportsOfModule(moduleSymbol).map((symbol) => [symbol.name, symbol]));

const F = ts.TypeFlags;

/** A type as a flat list of alternatives; `seen` guards against recursive types. */
function alternatives(type, seen) {
  const atoms = type.isUnion() ? type.types : [type];
  const out = [];
  let trueSeen = false;
  let falseSeen = false;
  for (const atom of atoms) {
    const flags = atom.flags;
    if (flags & F.BooleanLiteral) {
      if (checker.typeToString(atom) === "true") trueSeen = true;
      else falseSeen = true;
    } else if (flags & F.StringLiteral || flags & F.NumberLiteral) out.push({ kind: "literal", value: atom.value });
    else if (flags & F.String) out.push({ kind: "string" });
    else if (flags & F.Number) out.push({ kind: "number" });
    else if (flags & F.Boolean) out.push({ kind: "boolean" });
    else if (flags & F.Null) out.push({ kind: "null" });
    else if (flags & F.Undefined) out.push({ kind: "undefined" });
    else if (flags & (F.Any | F.Unknown | F.Never)) out.push({ kind: "unsupported", text: checker.typeToString(atom) });
    else if (checker.isArrayType(atom)) {
      const [item] = checker.getTypeArguments(atom);
      out.push({ kind: "array", items: alternatives(item, seen) });
    } else if (flags & F.Object && !(checker.getSignaturesOfType(atom, ts.SignatureKind.Call).length > 0)) {
      out.push(object(atom, seen));
    } else out.push({ kind: "unsupported", text: checker.typeToString(atom) });
  }
  if (trueSeen && falseSeen) out.push({ kind: "boolean" });
  else if (trueSeen || falseSeen) out.push({ kind: "literal", value: trueSeen });
  return out;
}

function object(type, seen) {
  const name = checker.typeToString(type);
  if (seen.has(type)) return { kind: "object", name, recursive: true, properties: {} };
  const inner = new Set(seen).add(type);
  const properties = {};
  for (const property of checker.getPropertiesOfType(type)) {
    const optional = (property.flags & ts.SymbolFlags.Optional) !== 0;
    let alts = alternatives(checker.getTypeOfSymbol(property), inner);
    // An optional property's type includes `undefined` under strictNullChecks: `?` says it.
    if (optional) alts = alts.filter((alt) => alt.kind !== "undefined");
    properties[property.name] = { optional, type: alts };
  }
  return { kind: "object", name, properties };
}

const result = { file };
for (const name of UNIONS) {
  const symbol = exported.get(name);
  if (!symbol) fail(`${file} does not export the type ${name}`);
  result[name] = alternatives(checker.getDeclaredTypeOfSymbol(symbol), new Set());
}
process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
