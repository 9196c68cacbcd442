// What the WebAssembly generators share (scripts/page-checksum-wasm.mjs, scripts/lz4-block-wasm.mjs):
// WebAssembly text assembled by wabt (npm, a devDependency), and the generated TypeScript module
// that holds the bytes as base64. The unit tests of each module assemble its text the same way and
// check that the committed bytes are what it gives.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** `wat` assembled by wabt with `features` (e.g. { simd: true }), validated, as base64. */
export async function assembleWat(name, wat, features) {
  const wabt = await (await import('wabt')).default();
  const mod = wabt.parseWat(name, wat, features);
  try {
    mod.validate();
    return Buffer.from(mod.toBinary({}).buffer).toString('base64');
  } finally {
    mod.destroy();
  }
}

/**
 * Writes `path` (relative to the checkout): `header` (the lines of its doc comment) and
 * `export const <name>` holding `b64` in lines of 100 characters.
 */
export function writeWasmModule(path, header, name, b64) {
  const root = fileURLToPath(new URL('..', import.meta.url));
  const lines = b64.match(/.{1,100}/g).map((l) => `  '${l}',`).join('\n');
  writeFileSync(join(root, path), `/**\n${header.map((l) => ` * ${l}`).join('\n')}\n */\nexport const ${name} = [\n${lines}\n].join('');\n`);
  console.log(`wrote ${path} (${Buffer.from(b64, 'base64').length} bytes of wasm)`);
}
