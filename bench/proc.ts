// Process figures from /proc for the benchmarks.

import { readdirSync, readFileSync } from "node:fs";

/** CPU time a process has used so far, seconds (utime + stime, in clock ticks of 1/100 s). */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

export function rssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return Number(m?.[1]) / 1024;
}

/** `root` and every process below it (Chromium's renderer, GPU and utility processes). */
export function processTree(root: number): number[] {
  const parent = new Map<number, number>();
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      parent.set(Number(entry), Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]));
    } catch {
      // gone
    }
  }
  const out = [root];
  for (let i = 0; i < out.length; i++) for (const [pid, ppid] of parent) if (ppid === out[i]) out.push(pid);
  return out;
}

/** CPU seconds used so far by `root` and its descendants (processes that ended meanwhile are not counted). */
export function treeCpuSeconds(root: number): Map<number, number> {
  const out = new Map<number, number>();
  for (const pid of processTree(root)) {
    try {
      out.set(pid, cpuSeconds(pid));
    } catch {
      // gone
    }
  }
  return out;
}

/** % of one core used by a process tree between two samples `seconds` apart. */
export function treeCpuPercent(before: Map<number, number>, after: Map<number, number>, seconds: number): number {
  let used = 0;
  for (const [pid, t] of after) used += t - (before.get(pid) ?? t);
  return (100 * used) / seconds;
}
