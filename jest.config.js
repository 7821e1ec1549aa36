/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  transform: { '^.+\\.ts$': ['@swc/jest', { jsc: { target: 'es2022' } }] },
  testTimeout: 30000,
  // Tests spawn dist/: build first when it is older than its sources (npm test has built already).
  globalSetup: '<rootDir>/test/support/global-setup.js',
  // Tests share one machine of 2 cores and spawn processes: keep workers few.
  maxWorkers: 2,
  reporters: ['default', '<rootDir>/test/support/summary-reporter.js'],
};
