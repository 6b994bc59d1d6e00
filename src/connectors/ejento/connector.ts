import { z } from "zod";
import { EJENTO_AUTH_PATHS, EJENTO_TOKEN_FIELDS, type EjentoAuthConfig } from "../../auth/ejento.ts";
import { newRequest } from "../../http/http-client.ts";
import type { Connector, Outcome } from "../connector.ts";
import { classify, sendWithAuth } from "../push.ts";
import { renderTemplate } from "../template.ts";
import { ejentoCommands } from "./cli.ts";
import { ejentoRoutes } from "./routes.ts";

export const EJENTO_BASE_URL = "https://idejento.onedigital.com";
/** The host of the document's users API examples: the auth app (FastAPI template shape). */
export const EJENTO_AUTH_BASE_URL = "https://webapp-idamigo-od-eastus2-001.azurewebsites.net";
export const DEFAULT_PROMPT =
  "New lead: {{name}} {{lastName}}, {{email}}, {{phone}}, city {{city}}. {{context}} " +
  "Qualify this lead and suggest a first message.";
export const DEFAULT_THREAD_TITLE = "Lead {{name}} {{lastName}}";
/** Fields of the agent-response answer tried, in order, for the agent's text. */
const ANSWER_FIELDS = ["response", "answer", "output", "content", "text"];

const httpUrl = z.url({ protocol: /^https?$/ });
const path = z.string().regex(/^\/\S*$/, "a path starting with /");

const schema = z
  .object({
    /** The Ejento API (chat threads, agent responses). */
    baseUrl: httpUrl.default(EJENTO_BASE_URL),
    /** The auth app (register, login, refresh, users). */
    authBaseUrl: httpUrl.default(EJENTO_AUTH_BASE_URL),
    /** The account's email and password (Ejento's document: "store them securely"): sealed, write-only. */
    email: z.string().trim().min(3).max(255),
    password: z.string().min(1).max(200),
    options: z
      .object({
        agentId: z.union([z.string().trim().min(1), z.number().int()]).transform(String),
        /** The message sent to the agent: a `{{path}}` template over the lead. */
        prompt: z.string().min(1).max(20_000).default(DEFAULT_PROMPT),
        /** The chat thread's title: a `{{path}}` template over the lead. */
        threadTitle: z.string().max(500).default(DEFAULT_THREAD_TITLE),
        /** The body field the message goes in (the document does not name it). */
        messageField: z.string().min(1).default("message"),
        /** Overrides of the auth app's paths (defaults: the FastAPI full-stack template). */
        paths: z.object({ register: path, login: path, refresh: path }).partial().strict().default({}),
        /** Where the two tokens are in the login answer. */
        tokenFields: z
          .object({ authApp: z.string().min(1), ejento: z.string().min(1) })
          .partial()
          .strict()
          .default({}),
      })
      .strict(),
  })
  .strict();

export type EjentoConfig = z.infer<typeof schema>;

/**
 * Ejento AI agents (the Ejento API document): each lead becomes a chat thread and an agent response with the
 * thread's id as `chat_thread_id`. The agent's answer is kept on the delivery and in
 * `lead.enrichment[<destination>]`. A retry after the thread was created reuses it.
 */
export const ejentoConnector: Connector<EjentoConfig> = {
  name: "ejento",
  schema,
  secretFields: ["email", "password"],
  defaultAuth: { type: "ejento" },
  authTypes: ["ejento"],
  adminRoutes: ejentoRoutes,
  commands: ejentoCommands,
  authFrom: (cfg): EjentoAuthConfig => ({
    type: "ejento",
    authBaseUrl: cfg.authBaseUrl,
    email: cfg.email,
    password: cfg.password,
    paths: {
      register: cfg.options.paths.register ?? EJENTO_AUTH_PATHS.register,
      login: cfg.options.paths.login ?? EJENTO_AUTH_PATHS.login,
      refresh: cfg.options.paths.refresh ?? EJENTO_AUTH_PATHS.refresh,
    },
    tokenFields: {
      authApp: cfg.options.tokenFields.authApp ?? EJENTO_TOKEN_FIELDS.authApp,
      ejento: cfg.options.tokenFields.ejento ?? EJENTO_TOKEN_FIELDS.ejento,
    },
    token: "ejento",
  }),
  async deliver(ctx): Promise<Outcome> {
    const cfg = ctx.destination.config;
    const agentUrl = `${cfg.baseUrl.replace(/\/+$/, "")}/api/agent/${encodeURIComponent(cfg.options.agentId)}`;
    const lead = { ...ctx.lead, id: ctx.leadId } as unknown as Record<string, unknown>;
    const post = (url: string, body: unknown, key: string) => () => {
      const req = newRequest("POST", url);
      req.headers["accept"] = "application/json";
      req.headers["idempotency-key"] = `${ctx.deliveryId}:${key}`;
      req.contentType = "json";
      req.body = body;
      return req;
    };

    const known = ctx.state.threadId;
    let threadId = typeof known === "number" || typeof known === "string" ? known : undefined;
    if (threadId === undefined) {
      const title = renderTemplate(cfg.options.threadTitle, lead);
      const sent = await sendWithAuth(
        ctx,
        post(`${agentUrl}/chat-thread`, { title }, "thread"),
        "chat-thread",
      );
      if (!sent.ok) return sent.outcome;
      const outcome = classify(sent.response);
      if (outcome.kind !== "delivered") return outcome;
      const id = (sent.response.json() as { id?: unknown } | undefined)?.id;
      if (typeof id !== "number" && typeof id !== "string") {
        return { kind: "retry", code: "bad_response", message: "the chat thread answer has no id" };
      }
      threadId = id;
      // Kept across attempts: a retry of the response call goes to this thread, not a new one.
      ctx.setState({ threadId });
    }

    const message = renderTemplate(cfg.options.prompt, lead);
    const body = { chat_thread_id: threadId, [cfg.options.messageField]: message };
    const sent = await sendWithAuth(ctx, post(`${agentUrl}/response`, body, "response"), "response");
    if (!sent.ok) return sent.outcome;
    const outcome = classify(sent.response);
    if (outcome.kind === "failed" && sent.response.status === 404 && known !== undefined) {
      // The thread of an earlier attempt is gone: start a new one next time.
      ctx.setState({ threadId: null });
      return { kind: "retry", code: "thread_gone", message: `chat thread ${threadId} no longer exists` };
    }
    if (outcome.kind !== "delivered") return outcome;
    const answerBody = sent.response.json();
    const obj = (answerBody ?? {}) as Record<string, unknown>;
    const answer = ANSWER_FIELDS.map((f) => obj[f]).find((v) => typeof v === "string");
    return {
      kind: "delivered",
      status: sent.response.status,
      externalId: String(threadId),
      result: answerBody ?? sent.response.text,
      enrichment: {
        threadId,
        ...(obj.id !== undefined ? { responseId: obj.id } : {}),
        answer: answer ?? null,
      },
    };
  },
};
