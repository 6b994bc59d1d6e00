import { hash32, pick } from "./vendor-async-common.ts";

/** What the Reworked simulator adds to each row: columns derived from the email and name alone, so tests can predict them. */
export const ENRICHMENT_COLUMNS = ["company", "job_title", "linkedin_url", "lead_score"] as const;
const FREE_MAIL = new Set(
  "gmail.com yahoo.com hotmail.com outlook.com icloud.com aol.com proton.me".split(" "),
);
const TITLES =
  "Head of Sales|Marketing Manager|Chief Executive Officer|Operations Director|Founder|Procurement Lead".split(
    "|",
  );
export const lc = (s: string): string => s.trim().toLowerCase();

/** The enrichment columns for one row, derived only from its email and name. */
export function reworkedEnrichment(
  row: Record<string, string>,
): Record<(typeof ENRICHMENT_COLUMNS)[number], string> {
  const get = (k: string): string =>
    Object.entries(row)
      .find(([c]) => lc(c) === k)?.[1]
      ?.trim() ?? "";
  const email = lc(get("email"));
  if (!email) return { company: "", job_title: "", linkedin_url: "", lead_score: "" };
  const name =
    get("full_name") || get("name") || [get("first_name"), get("last_name")].filter(Boolean).join(" ");
  const domain = email.split("@")[1] ?? "";
  const label = domain.split(".")[0] ?? "";
  const company =
    FREE_MAIL.has(domain) || !label
      ? pick(["Independent", "Freelance Consulting", "Self-employed"], email)
      : `${label.charAt(0).toUpperCase()}${label.slice(1)}${pick([" Inc", " LLC", " Group", " Ltd"], email)}`;
  const slug = (name || email.split("@")[0] || "lead")
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, "-")
    .replace(/^-+|-+$/g, "");
  return {
    company,
    job_title: pick(TITLES, `title:${email}`),
    linkedin_url: `https://www.linkedin.com/in/${slug}-${(hash32(`li:${email}`) % 0xffff).toString(16)}`,
    lead_score: String(hash32(`score:${email}`) % 101),
  };
}
