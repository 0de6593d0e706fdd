// Builds the npm package into pkg/: the lanewire-web crate for wasm32 (size-optimised
// profile), wasm-bindgen's ES module and TypeScript declarations, then wasm-opt -Oz from the
// npm `binaryen` package (Debian's binaryen 108 emits modules that fail to load with current
// wasm-bindgen output). Prints the .wasm size raw and gzipped (-9).
//
//   node web/build.mjs            build pkg/
//   node web/build.mjs --debug    debug build (dev profile, debug assertions), no wasm-opt
//   node web/build.mjs --check    only check that pkg/ holds a build (npm's prepack)

import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const debug = process.argv.includes('--debug');
const target = 'wasm32-unknown-unknown';
const profile = debug ? 'dev' : 'wasm-release';
const targetDir = process.env.CARGO_TARGET_DIR
  ? resolve(root, process.env.CARGO_TARGET_DIR)
  : join(root, 'target');
const pkg = join(root, 'pkg');

if (process.argv.includes('--check')) {
  for (const f of ['lanewire.js', 'lanewire.d.ts', 'lanewire_bg.wasm']) {
    if (!existsSync(join(pkg, f))) {
      console.error(`pkg/${f} is missing: run \`npm run build\` before packing`);
      process.exit(1);
    }
  }
  process.exit(0);
}

function run(cmd, args, env = {}) {
  console.log(`$ ${cmd} ${args.join(' ')}`);
  execFileSync(cmd, args, { cwd: root, stdio: 'inherit', env: { ...process.env, ...env } });
}

// A profile of its own, defined here rather than in Cargo.toml so the workspace's release
// profile (benchmarks, native builds) is untouched: size over speed, one codegen unit, LTO,
// abort on panic (no unwinding tables), no debug info.
const profileConfig = [
  `profile.${profile}.inherits="release"`,
  `profile.${profile}.opt-level="z"`,
  `profile.${profile}.lto=true`,
  `profile.${profile}.codegen-units=1`,
  `profile.${profile}.panic="abort"`,
  `profile.${profile}.debug=false`,
  `profile.${profile}.strip="debuginfo"`,
].flatMap((c) => ['--config', c]);

// Without feature `std`: no `std` in the module, Talc as the global allocator and the crate's
// own panic handler (see README.md, "Size").
run('cargo', ['build', '-p', 'lanewire-web', '--lib', '--no-default-features', '--target', target,
  '--profile', profile, ...(debug ? [] : profileConfig)]);

const built = join(targetDir, target, debug ? 'debug' : profile, 'lanewire_web.wasm');
rmSync(pkg, { recursive: true, force: true });
mkdirSync(pkg, { recursive: true });
run('wasm-bindgen', [built, '--target', 'web', '--out-dir', pkg, '--out-name', 'lanewire']);

const wasm = join(pkg, 'lanewire_bg.wasm');
if (!debug) {
  const wasmOpt = join(root, 'node_modules', '.bin', 'wasm-opt');
  if (!existsSync(wasmOpt)) {
    throw new Error('node_modules/.bin/wasm-opt missing: run `npm ci` first');
  }
  // The features rustc enables by default for wasm32-unknown-unknown. `--flatten --rereloop`
  // first rebuilds the control flow (the Relooper finds smaller structures than rustc's), then
  // three rounds of -Oz: about 1 KB less gzipped than `-Oz --converge`, in the same time.
  // `--low-memory-unused` lets constant offsets fold into loads and stores: it assumes no
  // address computation wraps around into the first 1 KiB, which in Rust's linear memory only
  // a pointer within 1 KiB of 4 GiB could do. The producers and target-features custom
  // sections are metadata nothing reads at run time.
  run(wasmOpt, [
    '--flatten', '--rereloop', '-Oz', '-Oz', '-Oz', '--low-memory-unused',
    '--strip-producers', '--strip-target-features',
    '--enable-bulk-memory', '--enable-nontrapping-float-to-int', '--enable-sign-ext',
    '--enable-mutable-globals', '--enable-reference-types', '--enable-multivalue',
    wasm, '-o', wasm,
  ]);
}

const bytes = readFileSync(wasm);
const gz = gzipSync(bytes, { level: 9 }).length;
const sizes = { raw: bytes.length, gzip: gz };
writeFileSync(join(pkg, 'size.json'), JSON.stringify(sizes) + '\n');
console.log(`lanewire_bg.wasm: ${(bytes.length / 1024).toFixed(1)} KiB raw, ${(gz / 1024).toFixed(1)} KiB gzipped (-9)`);
