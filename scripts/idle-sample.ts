/**
 * Idle cost of processes, read from /proc the same way for every one of them: resident memory
 * (VmRSS, the median of one sample a second: a late collection moves it less than the peak) and
 * CPU over the window in % of one core, from the nanoseconds each thread spent on a CPU
 * (/proc/<pid>/task/<tid>/schedstat, threads present at both ends), else from utime + stime in
 * clock ticks (10 ms, too coarse for an idle process). Several processes are sampled in the same
 * loop over the same window, so that whatever else the machine does hits each of them alike.
 */
import fs from 'node:fs';

const TICKS = 100; // USER_HZ on Linux

export interface IdleCost {
  rssMb: number;
  cpuPercent: number;
  /** Whether the process was still there at the end of the window. */
  alive: boolean;
}

export const median = (xs: number[]): number => {
  const s = [...xs].sort((x, y) => x - y);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

/** Resident memory in MB and CPU ticks (utime + stime) of a pid, from /proc. */
export function procSample(pid: number): { rssMb: number; ticks: number } | undefined {
  try {
    const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const rss = /VmRSS:\s+(\d+) kB/.exec(status);
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // fields[0] is field 3 (state): utime is field 14, stime field 15.
    const ticks = Number(fields[11]) + Number(fields[12]);
    return { rssMb: rss ? Number(rss[1]) / 1024 : 0, ticks };
  } catch {
    return undefined;
  }
}

/** Nanoseconds on a CPU of each thread of a pid (undefined when /proc has no schedstat). */
function threadCpuNs(pid: number): Map<string, number> | undefined {
  try {
    const out = new Map<string, number>();
    for (const tid of fs.readdirSync(`/proc/${pid}/task`)) {
      try {
        out.set(tid, Number(fs.readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]));
      } catch {
        // the thread ended meanwhile
      }
    }
    return out;
  } catch {
    return undefined;
  }
}

function cpuNsBetween(a: Map<string, number> | undefined, b: Map<string, number> | undefined): number | undefined {
  if (!a || !b) return undefined;
  let ns = 0;
  for (const [tid, end] of b) {
    const start = a.get(tid);
    if (start !== undefined) ns += end - start;
  }
  return ns;
}

/** Each pid's idle cost over the same `seconds`-long window. */
export async function sampleEach(pids: number[], seconds: number): Promise<IdleCost[]> {
  const first = pids.map(procSample);
  const firstNs = pids.map(threadCpuNs);
  const rss: number[][] = pids.map(() => []);
  const t0 = performance.now();
  for (let i = 0; i < seconds; i++) {
    await new Promise((r) => setTimeout(r, 1000));
    pids.forEach((pid, j) => {
      const x = procSample(pid);
      if (x) rss[j]!.push(x.rssMb);
    });
  }
  const wall = (performance.now() - t0) / 1000;
  return pids.map((pid, j) => {
    const ns = cpuNsBetween(firstNs[j], threadCpuNs(pid));
    const last = procSample(pid);
    const ticks = last ? last.ticks - (first[j]?.ticks ?? last.ticks) : 0;
    const cpuS = ns !== undefined ? ns / 1e9 : ticks / TICKS;
    return { rssMb: rss[j]!.length ? median(rss[j]!) : 0, cpuPercent: (cpuS / wall) * 100, alive: last !== undefined };
  });
}

/** The pids' idle cost summed over one window (a process and its dev server, say). */
export async function idleCost(
  pids: number[],
  seconds: number,
): Promise<{ rssMb: number; cpuPercent: number; alive: number }> {
  const each = await sampleEach(pids, seconds);
  return {
    rssMb: each.reduce((s, x) => s + x.rssMb, 0),
    cpuPercent: each.reduce((s, x) => s + x.cpuPercent, 0),
    alive: each.filter((x) => x.alive).length,
  };
}
