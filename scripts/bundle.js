#!/usr/bin/env node
// Bundles the CLI into dist/xenblkd.js: one file to load instead of hundreds, which is most of a
// restarted daemon's start-up time. Commands stay lazy: each is evaluated on first use. Native
// modules (koffi, classic-level) stay external.
const fs = require('node:fs');
const path = require('node:path');
const esbuild = require('esbuild');

const root = path.join(__dirname, '..');
const commandsDir = path.join(root, 'src', 'cli', 'commands');
const names = fs
  .readdirSync(commandsDir)
  .filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts'))
  .map((f) => f.slice(0, -3))
  .sort();
// The benchmarks spawn their own helper processes by file name: they run from dist/ unbundled.
const UNBUNDLED = new Set(['bench']);
/** The command registry as seen from a bundle `up` folders below dist/ (dist/: 0). */
function registry(up) {
  const toRoot = '../'.repeat(up + 1);
  const toDist = Array(up).fill("'..'").join(', ');
  return names
    .map((n) =>
      UNBUNDLED.has(n)
        ? `  ${JSON.stringify(n)}: () => require(require('node:path').join(__dirname, ${toDist ? toDist + ', ' : ''}'cli', 'commands', ${JSON.stringify(n + '.js')})),`
        : `  ${JSON.stringify(n)}: () => require('${toRoot}src/cli/commands/${n}'),`,
    )
    .join('\n');
}
const entry = path.join(root, 'dist', '.bundle-entry.js');
fs.writeFileSync(
  entry,
  `globalThis.__XENBLKD_COMMANDS__ = {\n${registry(0)}\n};\nrequire('../src/cli/main').runCli();\n`,
);
// The test entries (test/support/hooked-*.ts): the same programs with the crash tests' hooks read
// from the environment. They go to dist/test/, never into the shipped bundles above.
fs.mkdirSync(path.join(root, 'dist', 'test'), { recursive: true });
const testEntry = path.join(root, 'dist', 'test', '.bundle-entry.js');
fs.writeFileSync(
  testEntry,
  `globalThis.__XENBLKD_COMMANDS__ = {\n${registry(1)}\n};\nrequire('../../test/support/hooked-cli');\n`,
);
// rxjs's exports map sends Node to its CommonJS build, whose index loads every operator; its ES
// build lets esbuild keep only what is imported (measured: about 20 ms less CPU per daemon start).
const alias = { rxjs: path.join(root, 'node_modules', 'rxjs', 'dist', 'esm') };
// The dataplane process the benchmarks and the soak start and kill (src/effects/dataplane/standalone-main.ts):
// its restart is the pause a guest sees, so it is bundled too.
const dataplane = esbuild.build({
  entryPoints: [path.join(root, 'src', 'effects', 'dataplane', 'standalone-main.ts')],
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  outfile: path.join(root, 'dist', 'xenblkd-dataplane.js'),
  external: ['koffi', 'classic-level'],
  sourcemap: 'linked',
  logLevel: 'warning',
  mainFields: ['module', 'main'],
  alias,
});
const common = {
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  external: ['koffi', 'classic-level'],
  sourcemap: 'linked',
  logLevel: 'warning',
  mainFields: ['module', 'main'],
  alias,
};
const hooked = Promise.all([
  esbuild.build({ ...common, entryPoints: [testEntry], outfile: path.join(root, 'dist', 'test', 'xenblkd-hooked.js') }),
  esbuild.build({
    ...common,
    entryPoints: [path.join(root, 'test', 'support', 'hooked-dataplane.ts')],
    outfile: path.join(root, 'dist', 'test', 'xenblkd-dataplane-hooked.js'),
  }),
]);
esbuild
  .build({
    entryPoints: [entry],
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'cjs',
    outfile: path.join(root, 'dist', 'xenblkd.js'),
    external: ['koffi', 'classic-level'],
    banner: { js: '#!/usr/bin/env node' },
    sourcemap: 'linked',
    logLevel: 'warning',
    // ESM builds where packages have them, so that unused parts of rxjs and xstate are dropped.
    mainFields: ['module', 'main'],
    alias,
  })
  .then(() => dataplane)
  .then(() => hooked)
  .then(() => {
    fs.rmSync(entry);
    fs.rmSync(testEntry);
    fs.chmodSync(path.join(root, 'dist', 'xenblkd.js'), 0o755);
  })
  .catch(() => process.exit(1));
