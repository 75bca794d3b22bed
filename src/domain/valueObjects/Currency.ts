import { z } from 'zod';

/**
 * Supported ISO 4217 codes with their number of minor-unit digits. The digits are needed to render
 * integer minor units correctly (JPY has none, KWD has three); an explicit list keeps typos such as
 * "GPB" out of the store.
 */
export const CURRENCY_MINOR_UNITS = {
  GBP: 2, EUR: 2, USD: 2, CAD: 2, AUD: 2, NZD: 2, CHF: 2, SEK: 2, NOK: 2, DKK: 2,
  ISK: 0, PLN: 2, CZK: 2, HUF: 2, RON: 2, BGN: 2, UAH: 2, TRY: 2, ILS: 2, AED: 2,
  SAR: 2, QAR: 2, KWD: 3, BHD: 3, OMR: 3, JOD: 3, EGP: 2, MAD: 2, TND: 3, ZAR: 2,
  NGN: 2, KES: 2, JPY: 0, KRW: 0, CNY: 2, HKD: 2, TWD: 2, SGD: 2, MYR: 2, THB: 2,
  IDR: 2, PHP: 2, VND: 0, INR: 2, BRL: 2, MXN: 2, ARS: 2, CLP: 0, COP: 2, PEN: 2,
} as const satisfies Record<string, 0 | 2 | 3>;

export type Currency = keyof typeof CURRENCY_MINOR_UNITS;

export const CURRENCIES = Object.keys(CURRENCY_MINOR_UNITS) as [Currency, ...Currency[]];

export const CurrencySchema = z.enum(CURRENCIES, {
  // The default enum message lists all 50 codes and echoes the raw input; keep it short and bounded.
  errorMap: (issue, ctx) => ({
    message: issue.code === 'invalid_enum_value' ? 'Invalid currency: expected a supported ISO 4217 code such as GBP, EUR or USD' : ctx.defaultError,
  }),
});

export function currencyMinorUnits(currency: Currency): 0 | 2 | 3 {
  return CURRENCY_MINOR_UNITS[currency];
}
