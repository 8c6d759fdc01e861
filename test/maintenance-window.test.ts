/**
 * Maintenance windows (workflows/fleet/maintenance-window.ts): pure, deterministic, in any IANA time
 * zone, across midnight and DST changes.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { checkTimeZone, windowState } from '../workflows/fleet/maintenance-window.js';
import { MaintenanceWindowSchema, WEEKDAYS, type MaintenanceWindow } from '../workflows/fleet/ring-types.js';

const MIN = 60_000;
const w = (x: Partial<MaintenanceWindow> & Pick<MaintenanceWindow, 'start' | 'minutes'>): MaintenanceWindow =>
  MaintenanceWindowSchema.parse({ days: [...WEEKDAYS], timeZone: 'UTC', ...x });
const at = (iso: string) => Date.parse(iso);

describe('maintenance windows', () => {
  it('no window is always open', () => {
    assert.deepEqual(windowState(undefined, at('2026-03-01T00:00:00Z')), { open: true });
  });

  it('opens at start, closes after its minutes, and says when', () => {
    const win = w({ days: ['mon'], start: '22:00', minutes: 120 });
    // 2026-03-02 is a Monday.
    assert.deepEqual(windowState(win, at('2026-03-02T21:59:59Z')), {
      open: false,
      opensAt: at('2026-03-02T22:00:00Z'),
    });
    assert.deepEqual(windowState(win, at('2026-03-02T22:00:00Z')), {
      open: true,
      closesAt: at('2026-03-03T00:00:00Z'),
    });
    // 120 minutes from 22:00 end at midnight; the next opening is next Monday. A later start runs past midnight.
    assert.deepEqual(windowState(win, at('2026-03-03T00:00:00Z')), {
      open: false,
      opensAt: at('2026-03-09T22:00:00Z'),
    });
    const late = w({ days: ['mon'], start: '23:00', minutes: 180 });
    assert.deepEqual(windowState(late, at('2026-03-03T01:30:00Z')), {
      open: true,
      closesAt: at('2026-03-03T02:00:00Z'),
    });
  });

  it('Europe/Paris: local start times, and a DST change inside the window keeps its length', () => {
    const win = w({ days: ['sat', 'sun'], start: '01:00', minutes: 240, timeZone: 'Europe/Paris' });
    // Winter (UTC+1): Saturday 2026-03-28 01:00 Paris = 00:00Z.
    assert.deepEqual(windowState(win, at('2026-03-28T00:30:00Z')), {
      open: true,
      closesAt: at('2026-03-28T04:00:00Z'),
    });
    // Sunday 2026-03-29: clocks go 02:00 → 03:00; 01:00 Paris is still 00:00Z; 240 real minutes end at 04:00Z (06:00 CEST).
    assert.deepEqual(windowState(win, at('2026-03-29T03:59:00Z')), {
      open: true,
      closesAt: at('2026-03-29T04:00:00Z'),
    });
    // Next opening after the change: Saturday 2026-04-04 01:00 CEST = 2026-04-03T23:00Z.
    assert.deepEqual(windowState(win, at('2026-03-29T04:00:00Z')), {
      open: false,
      opensAt: at('2026-04-03T23:00:00Z'),
    });
  });

  it('a start inside the skipped hour opens just after the jump; a repeated hour opens at the first one', () => {
    const gap = w({ days: ['sun'], start: '02:30', minutes: 30, timeZone: 'Europe/Paris' });
    // 2026-03-29 02:30 does not exist in Paris: opens at 03:30 CEST = 01:30Z.
    assert.deepEqual(windowState(gap, at('2026-03-29T00:00:00Z')), {
      open: false,
      opensAt: at('2026-03-29T01:30:00Z'),
    });
    const twice = w({ days: ['sun'], start: '01:30', minutes: 30, timeZone: 'America/New_York' });
    // 2026-11-01 01:30 happens twice in New York (EDT then EST): the first is 05:30Z.
    assert.deepEqual(windowState(twice, at('2026-11-01T00:00:00Z')), {
      open: false,
      opensAt: at('2026-11-01T05:30:00Z'),
    });
    // And in summer New York is UTC-4, in winter UTC-5.
    const daily = w({ start: '09:00', minutes: 60, timeZone: 'America/New_York' });
    assert.equal(windowState(daily, at('2026-07-01T12:00:00Z')).opensAt, at('2026-07-01T13:00:00Z'));
    assert.equal(windowState(daily, at('2026-12-01T12:00:00Z')).opensAt, at('2026-12-01T14:00:00Z'));
  });

  it('overlapping openings merge; a window open all week never closes within it', () => {
    const merged = w({ days: ['mon', 'tue'], start: '12:00', minutes: 1500 });
    // Monday 12:00 → Tuesday 13:00, overlapping Tuesday 12:00 → Wednesday 13:00.
    assert.deepEqual(windowState(merged, at('2026-03-02T13:00:00Z')), {
      open: true,
      closesAt: at('2026-03-04T13:00:00Z'),
    });
    const always = w({ start: '00:00', minutes: 7 * 24 * 60 });
    fc.assert(
      fc.property(fc.integer({ min: at('2000-01-01T00:00:00Z'), max: at('2100-01-01T00:00:00Z') }), (t) => {
        const s = windowState(always, t);
        assert.equal(s.open, true);
        assert.ok(s.closesAt! - t > 7 * 86_400_000);
      }),
    );
  });

  it('properties: open ⇔ inside [opening, closesAt); closed ⇒ it opens later, and is open then; deterministic', () => {
    const zones = ['UTC', 'Europe/Paris', 'America/New_York', 'Asia/Kolkata', 'Australia/Lord_Howe', 'Pacific/Chatham'];
    const arb = fc.record({
      days: fc.uniqueArray(fc.constantFrom(...WEEKDAYS), { minLength: 1, maxLength: 7 }),
      hh: fc.integer({ min: 0, max: 23 }),
      mm: fc.integer({ min: 0, max: 59 }),
      minutes: fc.integer({ min: 1, max: 7 * 24 * 60 }),
      timeZone: fc.constantFrom(...zones),
      t: fc.integer({ min: at('2020-01-01T00:00:00Z'), max: at('2040-01-01T00:00:00Z') }),
    });
    fc.assert(
      fc.property(arb, ({ days, hh, mm, minutes, timeZone, t }) => {
        const win = w({
          days,
          start: `${String(hh).padStart(2, '0')}:${String(mm).padStart(2, '0')}`,
          minutes,
          timeZone,
        });
        const s = windowState(win, t);
        assert.deepEqual(windowState(win, t), s);
        if (s.open) {
          assert.ok(s.closesAt! > t);
          assert.equal(windowState(win, s.closesAt! - 1).open, true);
        } else {
          assert.ok(s.opensAt! > t && s.opensAt! - t <= 8 * 86_400_000);
          const o = windowState(win, s.opensAt!);
          assert.equal(o.open, true);
          assert.equal(windowState(win, s.opensAt! - 1).open, false);
          assert.ok(o.closesAt! - s.opensAt! >= minutes * MIN);
        }
      }),
      { numRuns: 300 },
    );
  });

  it('an unknown time zone is refused in one line', () => {
    assert.throws(() => checkTimeZone('Mars/Olympus_Mons'), /unknown time zone "Mars\/Olympus_Mons"/);
    checkTimeZone('Europe/Paris');
  });
});
