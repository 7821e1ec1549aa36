// Lets a worker thread require the TypeScript sources directly (compiled by @swc/core on load),
// as jest does for the test files themselves.
'use strict';
const swc = require('@swc/core');

require.extensions['.ts'] = function compileTs(module, filename) {
  const { code } = swc.transformFileSync(filename, {
    jsc: { target: 'es2022', parser: { syntax: 'typescript' } },
    module: { type: 'commonjs' },
  });
  module._compile(code, filename);
};
