import type { Simulator } from "./simulator.ts";

/** What the Reworked simulator is configured with and keeps: accounts, jobs, and a log of every request. */

export type ReworkedStatus = "STARTED" | "PROCESSING" | "PROCESSED" | "FAILED";
export type ReworkedCallbackMode = "none" | "once" | "twice";
export interface ReworkedAccount {
  email: string;
  password: string;
  /** The api_secret_key; derived from the email when omitted. */
  apiKey?: string;
}
export interface ReworkedSettings {
  tokenLifetimeSeconds: number; // default 86400
  processingDelayMs: number; // default 300; PROCESSING at half of it, PROCESSED/FAILED at the end
  callbackMode: ReworkedCallbackMode; // default "once"
  failJobs: boolean; // every job ends FAILED
  failNextJob: boolean; // the next job ends FAILED
  outageStatus: number; // 0: off; else process-leads and file-status answer this status (an outage)
  dropFraction: number; // 0..1 of rows (chosen by a hash of the email) left out of the result
  dropEmails: string[]; // emails left out of the result
  publicBaseUrl: string | null; // overrides Host + protocol + prefix for processed_file_url
  downloadTimeoutMs: number; // default 10000
  callbackTimeoutMs: number; // default 10000
}
export interface ReworkedSimulatorOptions extends Partial<Omit<ReworkedSettings, "publicBaseUrl">> {
  prefix?: string; // default "/reworked"
  /** Default: one account demo@reworked.test / reworked-demo. */
  accounts?: ReworkedAccount[];
  publicBaseUrl?: string;
  now?: () => number;
}
export type ReworkedControl = Partial<ReworkedSettings> & {
  reset?: boolean;
  expireTokens?: boolean;
  revokeTokens?: boolean;
};
export interface ReworkedJob {
  file_upload_identifier: string;
  email: string;
  file_url: string;
  callback_url: string;
  status: ReworkedStatus;
  history: Array<{ status: ReworkedStatus; at: string }>;
  columns: string[];
  rows: Array<Record<string, string>>;
  willFail: boolean;
  processed_file_url: string | null;
  output: Array<Record<string, string>> | null;
  dropped: string[];
}
type At = { at: string };
export interface ReworkedState {
  accounts: Array<Required<ReworkedAccount>>;
  authRequests: Array<At & { email: string | null; status: number }>;
  tokenRequests: Array<At & { email: string | null; status: number }>;
  jobs: ReworkedJob[];
  downloads: Array<At & { url: string; status: number | null; bytes: number; error?: string }>;
  callbacks: Array<
    At & { url: string; body: Record<string, unknown>; status: number | null; error?: string }
  >;
  statusRequests: Array<
    At & { file_upload_identifier: string | null; status: number; jobStatus?: ReworkedStatus }
  >;
  fileRequests: Array<At & { file: string; status: number }>;
  rejected: Array<At & { path: string; status: number; reason: string }>;
  settings: ReworkedSettings;
}
export interface ReworkedSimulator extends Simulator {
  readonly state: ReworkedState;
  control(c: ReworkedControl): Record<string, unknown>;
  /** Stops pending timers and callbacks (also done by reset and by the Fastify server's close). */
  close(): void;
}
