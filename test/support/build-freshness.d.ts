// Types for build-freshness.js (plain CommonJS: jest loads it as its global setup, untransformed).
export function buildInputs(root: string): string[];
export function newestFile(root: string, rels: string[]): { file: string | undefined; mtimeMs: number };
export function buildState(root: string): { stale: boolean; why: string };
