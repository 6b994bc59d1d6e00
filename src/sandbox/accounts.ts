/**
 * The sandbox's accounts: credentials the simulators accept, used by `leadpush sandbox`, the demo
 * and the tests. They are sandbox-only values, not secrets of any real system.
 */
export const SANDBOX_ACCOUNTS = {
  csrf: { username: "crm-user", password: "crm-pass-8841" },
  keyToken: {
    applicationId: "APP-7788",
    username: "housing",
    password: "kt-pass-5521",
    key: "kt-secret-key-0193",
  },
  oauth2: {
    clientId: "leadpush-client",
    clientSecret: "oauth-secret-7730",
    username: "oauth-user",
    password: "oauth-pass-2291",
  },
  staticKey: { vendor: "housing", vendoryKey: "static-vendor-key-6612" },
  /** Not registered in advance: `leadpush ejento register` creates it (the first user is a superuser). */
  ejento: { email: "leadpush@ejento.test", password: "ejento-pass-4417", agentId: "42" },
  reworked: { email: "ops@reworked.test", password: "reworked-pass-3306" },
} as const;
