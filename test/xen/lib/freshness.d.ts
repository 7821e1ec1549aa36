// Types for freshness.js (plain CommonJS so the harness runs without a build step).
export function newestMtime(paths: string[]): number;
export function buildIsCurrent(project: string): { current: boolean; why: string };
