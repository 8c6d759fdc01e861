/**
 * Maintenance windows, as pure functions of (window, instant): is it open now, when does it close,
 * when does it open next. Deterministic (no clock: the caller passes workflow time) and usable
 * inside the workflow sandbox (Intl only).
 *
 * A window opens on each listed weekday at `start` local time in `timeZone` and stays open
 * `minutes` of real (elapsed) time, so it may run past midnight and, across a DST change, still
 * lasts the same number of minutes. A start that does not exist that day (the hour skipped when
 * clocks go forward) opens at the same offset past the jump (02:30 becomes 03:30); a start that
 * happens twice (clocks go back) opens at the first one. Overlapping or touching openings merge.
 */
import type { MaintenanceWindow, Weekday } from './ring-types.js';

export interface WindowState {
  open: boolean;
  /** When closed: the next opening (epoch ms). */
  opensAt?: number;
  /** When open: the end of the current opening (epoch ms). */
  closesAt?: number;
}

const MINUTE = 60_000;
const DAY = 86_400_000;
/** Sunday first, as Date.getUTCDay() counts. */
const DAY_NAMES: readonly Weekday[] = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'];

const formatters = new Map<string, Intl.DateTimeFormat>();

function formatter(timeZone: string): Intl.DateTimeFormat {
  let f = formatters.get(timeZone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    });
    formatters.set(timeZone, f);
  }
  return f;
}

/** Throws a one-line error for a time zone this runtime does not know. */
export function checkTimeZone(timeZone: string): void {
  try {
    formatter(timeZone);
  } catch {
    throw new Error(`unknown time zone ${JSON.stringify(timeZone)} (use an IANA name such as Europe/Paris, or UTC)`);
  }
}

/** The wall-clock time in `timeZone` at `t`, expressed as if it were UTC (epoch ms, whole seconds). */
function wallClock(t: number, timeZone: string): number {
  const parts: Record<string, number> = {};
  for (const p of formatter(timeZone).formatToParts(new Date(t))) {
    if (p.type !== 'literal') parts[p.type] = Number(p.value);
  }
  return Date.UTC(parts.year!, parts.month! - 1, parts.day!, parts.hour!, parts.minute!, parts.second!);
}

/** Offset of `timeZone` from UTC at `t` (ms; +3_600_000 for Paris in winter). */
function offsetAt(t: number, timeZone: string): number {
  const whole = Math.floor(t / 1000) * 1000;
  return wallClock(whole, timeZone) - whole;
}

/** The instant a wall-clock time (given as if UTC) happens in `timeZone`: the first if twice, past the gap if never. */
export function zonedInstant(wall: number, timeZone: string): number {
  const before = offsetAt(wall - DAY / 2, timeZone);
  const after = offsetAt(wall + DAY / 2, timeZone);
  const candidates = [wall - before, wall - after].filter((t) => t + offsetAt(t, timeZone) === wall);
  if (candidates.length) return Math.min(...candidates);
  return wall - before;
}

/** The window's openings whose local start date lies in [from, to] days around `now`, merged, sorted. */
function openings(w: MaintenanceWindow, now: number, fromDays: number, toDays: number): Array<[number, number]> {
  const [hh, mm] = w.start.split(':').map(Number) as [number, number];
  const today = Math.floor(wallClock(now, w.timeZone) / DAY) * DAY;
  const spans: Array<[number, number]> = [];
  for (let d = fromDays; d <= toDays; d++) {
    const date = today + d * DAY;
    if (!w.days.includes(DAY_NAMES[new Date(date).getUTCDay()]!)) continue;
    const start = zonedInstant(date + hh * 3_600_000 + mm * MINUTE, w.timeZone);
    spans.push([start, start + w.minutes * MINUTE]);
  }
  spans.sort((a, b) => a[0] - b[0]);
  const merged: Array<[number, number]> = [];
  for (const s of spans) {
    const last = merged[merged.length - 1];
    if (last && s[0] <= last[1]) last[1] = Math.max(last[1], s[1]);
    else merged.push([s[0], s[1]]);
  }
  return merged;
}

/**
 * Whether `window` is open at `nowMs`; when open, when it closes; when closed, when it opens next.
 * No window at all is always open.
 */
export function windowState(window: MaintenanceWindow | undefined, nowMs: number): WindowState {
  if (!window) return { open: true };
  // A window lasts at most 7 days: openings that started up to 8 days ago may still be open; every
  // listed weekday comes round within 8 days.
  const spans = openings(window, nowMs, -8, 8);
  for (const [start, end] of spans) {
    if (start <= nowMs && nowMs < end) return { open: true, closesAt: end };
    if (start > nowMs) return { open: false, opensAt: start };
  }
  // Unreachable with at least one listed day; answer "opens in a week" rather than never.
  return { open: false, opensAt: nowMs + 7 * DAY };
}

/** One line for a human: "mon,tue 22:00 for 240 min (Europe/Paris)". */
export function describeWindow(w: MaintenanceWindow): string {
  return `${w.days.join(',')} ${w.start} for ${w.minutes} min (${w.timeZone})`;
}
