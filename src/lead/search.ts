import { type CountryCode, getCountryCallingCode, parsePhoneNumberFromString } from "libphonenumber-js";

/** The longest search text looked at (a longer one is cut: no lead field is longer). */
export const MAX_SEARCH_LENGTH = 200;

/**
 * A text as the search compares it: Unicode-normalized (NFKC), lower-cased, spaces collapsed.
 * The same function writes the stored keys and reads the query, so they always agree.
 */
export function searchKey(value: unknown): string | null {
  if (typeof value !== "string") return null;
  const key = value.normalize("NFKC").toLowerCase().replace(/\s+/g, " ").trim().slice(0, MAX_SEARCH_LENGTH);
  return key === "" ? null : key;
}

/** The search columns of a lead (store/migrations.ts 012). */
export function leadSearchKeys(lead: Record<string, unknown>): {
  name_key: string | null;
  last_name_key: string | null;
  city_key: string | null;
} {
  return {
    name_key: searchKey(lead.name),
    last_name_key: searchKey(lead.lastName),
    city_key: searchKey(lead.city),
  };
}

/**
 * What a query that looks like a phone number searches for, in the stored E.164 form:
 * `exact` when it is a whole possible number in any spelling ("+91 98200 12345", "098200-12345",
 * "9820012345" with region IN are all +919820012345), else `prefixes` of E.164 numbers (a partial
 * number, with or without its country code). Undefined: not a phone number (letters, < 3 digits).
 */
export function phoneQuery(text: string, region: string): { exact?: string; prefixes: string[] } | undefined {
  const q = text.trim();
  if (!/^\+?[\d\s().\-/]+$/.test(q)) return undefined;
  const digits = q.replace(/\D/g, "");
  if (digits.length < 3) return undefined;
  const number = parsePhoneNumberFromString(q, region as CountryCode);
  if (number?.isPossible()) return { exact: number.number, prefixes: [] };
  if (q.startsWith("+")) return { prefixes: [`+${digits}`] };
  let code = "";
  try {
    code = getCountryCallingCode(region as CountryCode);
  } catch {
    code = "";
  }
  const national = digits.replace(/^0+/, "");
  const prefixes = new Set([`+${digits}`]);
  if (code && national) prefixes.add(`+${code}${national}`);
  return { prefixes: [...prefixes] };
}

/**
 * The end of the byte-order range of strings starting with `prefix`: `key >= prefix AND key <
 * prefixEnd(prefix)`. The last code point is counted up (UTF-8 bytes sort like code points).
 */
export function prefixEnd(prefix: string): string {
  const chars = [...prefix];
  const last = chars.pop();
  const cp = last?.codePointAt(0);
  if (cp === undefined) return "\u{10FFFF}";
  let next = cp + 1;
  if (next >= 0xd800 && next <= 0xdfff) next = 0xe000; // not a scalar value: skip the surrogates
  if (next > 0x10ffff) return prefix + "\u{10FFFF}";
  return chars.join("") + String.fromCodePoint(next);
}
