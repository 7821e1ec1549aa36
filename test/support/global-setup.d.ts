// Types for global-setup.js (plain CommonJS: jest loads it untransformed).
declare function globalSetup(): Promise<void>;
declare namespace globalSetup {
  function ensureFreshBuild(root: string, say?: (line: string) => void): { built: boolean; why: string };
}
export = globalSetup;
