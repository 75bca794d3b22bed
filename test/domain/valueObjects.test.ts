import { describe, it, expect } from 'vitest';
import {
  CURRENCIES,
  CurrencySchema,
  IdSchema,
  PLATFORMS,
  PlatformSourceSchema,
  PriceSchema,
  TicketIdSchema,
  comparePrice,
  formatPrice,
} from '../../src/domain/index.js';

describe('TicketIdSchema', () => {
  it.each(['tm-0001', 'A', 'x.y_z-9', 'a'.repeat(128)])('accepts %s', (id) => {
    expect(TicketIdSchema.safeParse(id).success).toBe(true);
  });
  it.each(['', '-leading', '.leading', 'has space', 'slash/inside', 'a'.repeat(129), 'ünïcode'])('rejects %j', (id) => {
    expect(TicketIdSchema.safeParse(id).success).toBe(false);
  });
  it('uses the shared id rules', () => {
    expect(IdSchema.safeParse('user-1').success).toBe(true);
    expect(IdSchema.safeParse('_x').success).toBe(false);
  });
});

describe('CurrencySchema', () => {
  it('lists the common ISO 4217 codes', () => {
    for (const c of ['GBP', 'EUR', 'USD', 'CAD', 'AUD', 'CHF', 'SEK', 'NOK', 'DKK', 'PLN', 'CZK', 'JPY', 'CNY', 'HKD', 'SGD', 'NZD', 'ZAR', 'BRL', 'MXN', 'INR', 'AED', 'SAR', 'TRY']) {
      expect(CurrencySchema.safeParse(c).success, c).toBe(true);
    }
    expect(CURRENCIES.length).toBeGreaterThanOrEqual(40);
    expect(CURRENCIES.every((c) => /^[A-Z]{3}$/.test(c))).toBe(true);
  });
  it('rejects XYZ with a message naming the field', () => {
    const r = CurrencySchema.safeParse('XYZ');
    expect(r.success).toBe(false);
    expect(r.error?.issues[0]?.message).toMatch(/currency/i);
  });
  it.each(['gbp', 'GPB', '', 'GBPX', 12])('rejects %j', (c) => {
    expect(CurrencySchema.safeParse(c).success).toBe(false);
  });
});

describe('PriceSchema', () => {
  it('accepts integer minor units', () => {
    expect(PriceSchema.parse({ amountMinor: 1250, currency: 'GBP' })).toEqual({ amountMinor: 1250, currency: 'GBP' });
    expect(PriceSchema.safeParse({ amountMinor: 0, currency: 'GBP' }).success).toBe(true);
    expect(PriceSchema.safeParse({ amountMinor: Number.MAX_SAFE_INTEGER, currency: 'GBP' }).success).toBe(true);
  });
  it.each([
    ['a float', { amountMinor: 12.5, currency: 'GBP' }],
    ['a negative amount', { amountMinor: -1, currency: 'GBP' }],
    ['an unsafe integer', { amountMinor: Number.MAX_SAFE_INTEGER + 1, currency: 'GBP' }],
    ['NaN', { amountMinor: Number.NaN, currency: 'GBP' }],
    ['Infinity', { amountMinor: Number.POSITIVE_INFINITY, currency: 'GBP' }],
    ['a string amount', { amountMinor: '1250', currency: 'GBP' }],
    ['no currency', { amountMinor: 1250 }],
    ['an extra field', { amountMinor: 1250, currency: 'GBP', amount: 12.5 }],
  ])('rejects %s', (_, value) => {
    expect(PriceSchema.safeParse(value).success).toBe(false);
  });
});

describe('formatPrice', () => {
  it.each([
    [{ amountMinor: 1250, currency: 'GBP' as const }, 'GBP 12.50'],
    [{ amountMinor: 5, currency: 'GBP' as const }, 'GBP 0.05'],
    [{ amountMinor: 0, currency: 'EUR' as const }, 'EUR 0.00'],
    [{ amountMinor: 1500, currency: 'JPY' as const }, 'JPY 1500'],
    [{ amountMinor: 12345, currency: 'KWD' as const }, 'KWD 12.345'],
    [{ amountMinor: Number.MAX_SAFE_INTEGER, currency: 'USD' as const }, 'USD 90071992547409.91'],
  ])('%j -> %s', (price, text) => {
    expect(formatPrice(price)).toBe(text);
  });
});

describe('comparePrice', () => {
  const gbp = (amountMinor: number) => ({ amountMinor, currency: 'GBP' as const });
  it('orders prices of one currency', () => {
    expect(comparePrice(gbp(100), gbp(200))).toBeLessThan(0);
    expect(comparePrice(gbp(200), gbp(100))).toBeGreaterThan(0);
    expect(comparePrice(gbp(100), gbp(100))).toBe(0);
    expect([gbp(3), gbp(1), gbp(2)].sort(comparePrice).map((p) => p.amountMinor)).toEqual([1, 2, 3]);
  });
  it('refuses to compare different currencies', () => {
    expect(() => comparePrice(gbp(100), { amountMinor: 100, currency: 'EUR' })).toThrow(/different currencies/);
  });
});

describe('PlatformSourceSchema', () => {
  it('accepts every known platform slug', () => {
    for (const p of PLATFORMS) expect(PlatformSourceSchema.safeParse(p).success).toBe(true);
    expect(PLATFORMS).toHaveLength(10);
  });
  it.each(['Ticketmaster', 'TICKETMASTER', 'ebay', ''])('rejects %j', (p) => {
    const r = PlatformSourceSchema.safeParse(p);
    expect(r.success).toBe(false);
    expect(r.error?.issues[0]?.message).toMatch(/platform/);
  });
});
