import { dedupeRule, type ResolvedDestination } from "../destinations/model.ts";
import type { DedupeRule } from "../store/duplicates.ts";
import type { NewLead, RoutingDecision } from "../store/leads-repo.ts";

/** What routing reads of a destination. */
export type RoutableDestination = Pick<
  ResolvedDestination,
  "id" | "name" | "enabled" | "filter" | "filterText" | "after" | "pushDuplicates" | "dedupe"
>;

/** Each resolved destination's rule, computed once (a destination object is replaced on change). */
const rules = new WeakMap<RoutableDestination, DedupeRule>();

function ruleOf(d: RoutableDestination, defaultWindowMs: number): DedupeRule {
  let rule = rules.get(d);
  if (!rule || (d.dedupe === undefined && rule.windowMs !== defaultWindowMs)) {
    rule = dedupeRule(d.dedupe, defaultWindowMs);
    rules.set(d, rule);
  }
  return rule;
}

/**
 * Which destinations a lead goes to, and a decision for every one it does not: `disabled`,
 * `filtered` (naming the filter) or `filter_error` (a filter that failed: the lead is not routed
 * there, and says why). Duplicates are decided later, when the batch is written.
 */
export async function routeLead(
  destinations: Iterable<RoutableDestination>,
  input: Record<string, unknown>,
  defaultWindowMs: number,
): Promise<Pick<NewLead, "targets" | "skipped">> {
  const matched: RoutableDestination[] = [];
  const skipped: RoutingDecision[] = [];
  const skip = (d: RoutableDestination, decision: RoutingDecision["decision"], reason: string) =>
    skipped.push({ destinationId: d.id, destinationName: d.name, decision, reason });
  for (const d of destinations) {
    if (!d.enabled) {
      skip(d, "disabled", "the destination is disabled (enabled: false)");
      continue;
    }
    if (d.filter.always) {
      matched.push(d);
      continue;
    }
    try {
      if (await d.filter.matches(input)) matched.push(d);
      else skip(d, "filtered", `filter: ${d.filterText ?? "(filter)"}`);
    } catch (err) {
      skip(d, "filter_error", `filter failed: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  const names = new Set(matched.map((d) => d.name));
  const targets = matched.map((d) => ({
    destinationId: d.id,
    destinationName: d.name,
    status: d.after.some((a) => names.has(a)) ? ("blocked" as const) : ("pending" as const),
    pushDuplicates: d.pushDuplicates,
    dedupe: ruleOf(d, defaultWindowMs),
    after: d.after,
  }));
  return { targets, ...(skipped.length > 0 ? { skipped } : {}) };
}
