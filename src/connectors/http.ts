import { z } from "zod";
import { newRequest } from "../http/http-client.ts";
import type { Connector } from "./connector.ts";
import { classify, renderPayload, sendWithAuth } from "./push.ts";

const schema = z
  .object({
    url: z.url({ protocol: /^https?$/ }).describe("Where leads are pushed."),
    method: z.enum(["POST", "PUT", "PATCH"]).default("POST"),
    contentType: z
      .enum(["json", "form"])
      .default("json")
      .describe("Body encoding. `static_key` auth with `in: body` switches to form."),
    headers: z
      .record(z.string(), z.string())
      .default({})
      .describe("Extra headers sent with every push (secrets: write-only, redacted on read)."),
  })
  .strict();

export type HttpConfig = z.infer<typeof schema>;

/** The generic connector: any auth strategy, a JSONata mapping, JSON or form body. */
export const httpConnector: Connector<HttpConfig> = {
  name: "http",
  schema,
  secretFields: ["headers"],
  defaultAuth: { type: "none" },
  async deliver(ctx) {
    const cfg = ctx.destination.config;
    const rendered = await renderPayload(ctx.mapping, { ...ctx.lead, id: ctx.leadId });
    if (!rendered.ok) return rendered.outcome;
    const payload = rendered.payload;
    const sent = await sendWithAuth(ctx, () => {
      const req = newRequest(cfg.method, cfg.url);
      for (const [k, v] of Object.entries(cfg.headers)) req.headers[k.toLowerCase()] = v;
      req.headers["idempotency-key"] = ctx.deliveryId;
      req.body = payload;
      req.contentType = cfg.contentType;
      return req;
    });
    if (!sent.ok) return sent.outcome;
    const outcome = classify(sent.response);
    if (outcome.kind === "delivered") {
      const body = sent.response.json();
      if (body !== undefined) outcome.result = body;
    }
    return outcome;
  },
};
