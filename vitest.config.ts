import { configDefaults, defineConfig } from "vitest/config";

/** Many slow clients at once (a dozen processes): run alone, so it neither starves the other files' pipelines of CPU nor is starved by them. */
const ALONE = ["test/integration/flow-control.test.ts"];

const shared = {
  // Integration and browser tests run real gst pipelines and Chromium: two files at a time on 2 cores.
  pool: "forks",
  testTimeout: 60_000,
  hookTimeout: 60_000,
  teardownTimeout: 20_000,
} as const;

export default defineConfig({
  test: {
    // Builds once, for every project.
    globalSetup: ["test/global-setup.ts"],
    maxWorkers: 2,
    projects: [
      { test: { ...shared, name: "suite", include: ["test/**/*.test.ts"], exclude: [...configDefaults.exclude, ...ALONE], sequence: { groupOrder: 0 } } },
      { test: { ...shared, name: "alone", include: ALONE, maxWorkers: 1, sequence: { groupOrder: 1 } } },
    ],
  },
});
