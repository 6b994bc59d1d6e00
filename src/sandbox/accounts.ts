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
  /** The 7targets API document's Cognito user pool (InitiateAuth at `<sandbox>/cognito/`). */
  cognito: {
    region: "us-east-1",
    userPoolId: "us-east-1_Sandbox01",
    /** An app client without a secret, as 7targets hands out. */
    clientId: "7t-sandbox-client",
    /** An app client with a secret (SECRET_HASH). */
    secretClientId: "7t-sandbox-secret-client",
    clientSecret: "7t-client-secret-4410",
    username: "leads@7targets.test",
    password: "Sandbox-7t-pass-1",
    assistantId: 42,
  },
  /** The Eminence document's Cognito hosted UI (`<sandbox>/hosted-ui/oauth2/authorize`, `/oauth2/token`). */
  eminence: {
    clientId: "eminence-sandbox-client",
    clientSecret: "eminence-client-secret-7719",
    username: "leads@eminence.test",
    password: "Sandbox-em-pass-1",
  },
  /** Not registered in advance: `leadpush ejento register` creates it (the first user is a superuser). */
  ejento: { email: "leadpush@ejento.test", password: "ejento-pass-4417", agentId: "42" },
  reworked: { email: "ops@reworked.test", password: "reworked-pass-3306" },
} as const;
