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
} as const;
