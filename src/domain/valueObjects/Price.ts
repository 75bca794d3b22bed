import { z } from 'zod';
import { CurrencySchema, currencyMinorUnits } from './Currency.js';

/** Money is integer minor units (pence, cents): floats cannot represent 0.10 exactly. */
export const PriceSchema = z
  .object({
    amountMinor: z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER),
    currency: CurrencySchema,
  })
  .strict();

export type Price = z.infer<typeof PriceSchema>;

/** "GBP 12.50", "JPY 1500". Built from digits, not division, so large amounts stay exact. */
export function formatPrice(price: Price): string {
  const digits = currencyMinorUnits(price.currency);
  if (digits === 0) return `${price.currency} ${price.amountMinor}`;
  const s = String(price.amountMinor).padStart(digits + 1, '0');
  return `${price.currency} ${s.slice(0, -digits)}.${s.slice(-digits)}`;
}

/**
 * Sort comparator for prices in one currency. Throws for mixed currencies: without exchange rates
 * "cheaper" is undefined, and silently ordering by code would hide the bug.
 */
export function comparePrice(a: Price, b: Price): number {
  if (a.currency !== b.currency) throw new RangeError(`cannot compare prices in different currencies (${a.currency} vs ${b.currency})`);
  return a.amountMinor === b.amountMinor ? 0 : a.amountMinor < b.amountMinor ? -1 : 1;
}
