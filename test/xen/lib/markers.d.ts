// Types for markers.js (plain CommonJS so the harness runs without a build step).
export interface Marker {
  kind: string;
  rest: string;
  step?: string;
  event?: 'BEGIN' | 'PASS' | 'FAIL' | 'SKIP';
  seconds?: number;
  detail?: string;
  count?: number;
  steps?: string[];
  key?: string;
  value?: string;
  [counter: string]: unknown;
}
export interface ParsedLine {
  origin: string;
  text: string;
  marker?: Marker;
}
export interface StepRow {
  origin: string;
  step: string;
  status: 'PASS' | 'FAIL' | 'SKIP';
  detail: string;
  seconds?: number;
}
export interface Counts {
  passed: number;
  failed: number;
  skipped: number;
}
export function parseLine(raw: string): ParsedLine;
export class RunLog {
  infos: Record<string, string>;
  heartbeats: number;
  lastHeartbeatAt: number | undefined;
  poweroffAt: number | undefined;
  origins: Map<string, { plan?: string[]; done?: Marker; bootAt?: number }>;
  boots: Map<string, number>;
  feed(raw: string, at: number): ParsedLine;
  results(): StepRow[];
}
export function summarize(rows: StepRow[]): { perOrigin: Map<string, Counts>; total: Counts };
export function countsLine(c: Counts): string;
