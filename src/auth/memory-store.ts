import type { CredentialLease, CredentialStore } from "./runtime.ts";

/**
 * A credential store that lives in memory and shares nothing: the detached runtime of a dry run of
 * an unsaved destination. Leases behave as `store/credentials-repo.ts`'s rows do (one process only
 * ever asks, so they matter little, but the runtime's single flight goes through them).
 */
export function memoryCredentialStore(): CredentialStore {
  const rows = new Map<string, { data: string; version: string }>();
  const leases = new Map<string, CredentialLease>();
  return {
    load: async (id) => rows.get(id),
    async save(id, data, _expiresAt, ifData) {
      if (ifData !== undefined && rows.get(id)?.data !== ifData) return;
      rows.set(id, { data, version: "" });
    },
    async remove(id, ifData) {
      if (ifData !== undefined && rows.get(id)?.data !== ifData) return;
      rows.delete(id);
    },
    leaseOf: async (id) => leases.get(id),
    async takeLease(id, holder, now, until, version) {
      const l = leases.get(id);
      const free = !l || l.until <= now || (l.failure !== undefined && l.failure.version !== version);
      if (free) leases.set(id, { holder, until });
      return free;
    },
    async renewLease(id, holder, until) {
      const l = leases.get(id);
      if (l && l.holder === holder) l.until = until;
    },
    async releaseLease(id, holder, hold) {
      const l = leases.get(id);
      if (!l || (holder !== undefined && l.holder !== holder)) return;
      if (hold && holder !== undefined)
        leases.set(id, {
          holder: "",
          until: hold.until,
          failure: { version: hold.version, data: hold.failure },
        });
      else leases.delete(id);
    },
  };
}
