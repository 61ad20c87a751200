import { describe, it, expect } from 'vitest';
import { fmtBytes, fmtRate, fmtMs, fmtMsTick, fmtDuration, fmtAgo, fmtCount, fmtPercent, compact, shortId, NONE } from '../src/lib/format.js';

describe('format', () => {
  it('bytes', () => {
    expect(fmtBytes(0)).toBe('0 B');
    expect(fmtBytes(1023)).toBe('1023 B');
    expect(fmtBytes(1536)).toBe('1.50 KiB');
    expect(fmtBytes(9000000)).toBe('8.58 MiB');
    expect(fmtBytes(50 * 1024 * 1024)).toBe('50.0 MiB');
    expect(fmtBytes(300 * 1024 ** 3)).toBe('300 GiB');
    expect(fmtBytes(-1)).toBe(NONE);
    expect(fmtBytes(null)).toBe(NONE);
    expect(fmtBytes(NaN)).toBe(NONE);
  });

  it('rates and compact numbers', () => {
    expect(fmtRate(0)).toBe('0/s');
    expect(fmtRate(0.25)).toBe('0.25/s');
    expect(fmtRate(3.5)).toBe('3.50/s');
    expect(fmtRate(12.34)).toBe('12.3/s');
    expect(fmtRate(120)).toBe('120/s');
    expect(fmtRate(1234)).toBe('1234/s');
    expect(fmtRate(15300)).toBe('15.3k/s');
    expect(fmtRate(2500000)).toBe('2.50M/s');
    expect(fmtRate(undefined)).toBe(NONE);
    expect(compact(0.001)).toBe('1.0e-3');
  });

  it('milliseconds', () => {
    expect(fmtMs(0)).toBe('0 ms');
    expect(fmtMs(0.004)).toBe('4 µs');
    expect(fmtMs(0.4)).toBe('0.40 ms');
    expect(fmtMs(2.1)).toBe('2.10 ms');
    expect(fmtMs(12.3)).toBe('12.3 ms');
    expect(fmtMs(250)).toBe('250 ms');
    expect(fmtMs(1500)).toBe('1.50 s');
    expect(fmtMs(null)).toBe(NONE);
    expect(fmtMsTick(2.5)).toBe('2.5 ms');
    expect(fmtMsTick(20)).toBe('20 ms');
    expect(fmtMsTick(1500)).toBe('1.5 s');
  });

  it('durations and ages', () => {
    expect(fmtDuration(900)).toBe('0.9 s');
    expect(fmtDuration(10000)).toBe('10 s');
    expect(fmtDuration(65000)).toBe('1m 5s');
    expect(fmtDuration(7200000)).toBe('2h 0m');
    expect(fmtDuration(3 * 86400000 + 3600000)).toBe('3d 1h');
    expect(fmtAgo(1000, 1500)).toBe('0.5 s ago');
    expect(fmtAgo(2000, 1500)).toBe('0.0 s ago'); // small clock skew
    expect(fmtAgo(10000, 1500)).toBe('in the future');
    expect(fmtAgo(null, 1)).toBe(NONE);
  });

  it('counts, percents, ids', () => {
    expect(fmtCount(12345)).toBe('12,345');
    expect(fmtPercent(1.5)).toBe('1.5%');
    expect(fmtPercent(250)).toBe('250%');
    expect(shortId('abcdefghijklmnopqrstuvwxyz234567abcdefghijklmnopqrst')).toBe('abcdefgh…qrst');
    expect(shortId('short')).toBe('short');
    expect(shortId(7)).toBe(NONE);
  });
});
