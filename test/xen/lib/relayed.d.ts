// Types for relayed.js.
export function splitRelayed(text: string): Map<string, string[]>;
