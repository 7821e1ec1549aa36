// Types for results.js (plain CommonJS so the harness runs without a build step).
export const BEGIN: string;
export const END: string;
export interface ResultsReport {
  scenario?: string;
  finishedAt?: string;
  wallSeconds?: number;
  versions?: Record<string, string | undefined>;
  steps?: { origin: string; step: string; status: string }[];
  infos?: Record<string, string>;
}
export function keyValues(text: string | undefined): Record<string, number>;
export function resultRows(report: ResultsReport): [string, string][];
export function resultsMarkdown(report: ResultsReport): string;
export function readmeBlock(report: ResultsReport): string;
export function replaceBlock(readme: string, block: string): string | null;
export function writeResults(report: ResultsReport, files: { docsFile: string; readmeFile: string }): string[];
