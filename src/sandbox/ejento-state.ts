import type { Simulator } from "./simulator.ts";

/** What the Ejento simulator keeps: its users, threads and answers, and a log of every request. */

export interface EjentoControl {
  reset?: boolean;
  expireTokens?: boolean; // every Ejento API token issued so far
  expireAuthTokens?: boolean; // every auth-app token issued so far
  revokeTokens?: boolean; // every token of both kinds
  tokenLifetimeSeconds?: number;
  authTokenLifetimeSeconds?: number;
  agents?: Array<string | number>;
  failNext?: number; // the next N Ejento API calls answer failStatus
  failStatus?: number; // default 503
}
export interface EjentoUser {
  id: string;
  email: string;
  password: string;
  full_name: string | null;
  is_active: boolean;
  is_superuser: boolean;
}
export interface EjentoThread {
  id: number;
  agent_id: string | number;
  title: string;
  created_at: string;
  user_id: string;
}
export interface EjentoResponse {
  id: number;
  chat_thread_id: number;
  agent_id: string | number;
  message: string;
  response: string;
  created_at: string;
}
type At = { at: string };
export interface EjentoState {
  users: EjentoUser[];
  signups: Array<At & { email: string; status: number }>;
  tokenRequests: Array<At & { kind: "login" | "refresh"; username: string | null; status: number }>;
  userUpdates: Array<At & { userId: string; fields: string[]; status: number }>;
  threads: EjentoThread[];
  responses: EjentoResponse[];
  rejected: Array<At & { app: "auth" | "api"; path: string; status: number; reason: string }>;
  settings: {
    tokenLifetimeSeconds: number;
    authTokenLifetimeSeconds: number;
    agents: string[];
    failNext: number;
    failStatus: number;
  };
}
export interface EjentoSimulator extends Simulator {
  readonly state: EjentoState;
  control(c: EjentoControl): Record<string, unknown>;
}
export interface EjentoSimulators {
  auth: EjentoSimulator;
  api: EjentoSimulator;
  simulators: [EjentoSimulator, EjentoSimulator];
  readonly state: EjentoState;
  control(c: EjentoControl): Record<string, unknown>;
  reset(): void;
}
