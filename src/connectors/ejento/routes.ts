import type { FastifyInstance } from "fastify";
import { z } from "zod";
import type { ConnectorRouteDeps } from "../connector.ts";
import { listUsers, registerAccount, updateUser } from "./account.ts";

const registerSchema = z
  .object({ fullName: z.string().max(255).optional().describe("The user's full name on Ejento") })
  .strict();
const updateSchema = z
  .object({
    email: z.email().optional(),
    fullName: z.string().max(255).nullable().optional(),
    isActive: z.boolean().optional(),
    isSuperuser: z.boolean().optional(),
    password: z.string().min(8).max(40).optional().describe("8 to 40 characters (the auth app's rule)"),
  })
  .strict()
  .refine((b) => Object.keys(b).length > 0, "give at least one field to change");

const userSchema = z.object({
  id: z.string(),
  email: z.string(),
  fullName: z.string().nullable(),
  isActive: z.boolean(),
  isSuperuser: z.boolean(),
});
const userExample = {
  id: "5b0f7c1e-8a4e-4f6b-9a57-2f6d1c0e3b11",
  email: "leads@example.com",
  fullName: "Lead bot",
  isActive: true,
  isSuperuser: false,
};

/** The Ejento account of an `ejento` destination (Ejento API document): register, list and update users. `admin`. */
export function ejentoRoutes(app: FastifyInstance, deps: ConnectorRouteDeps): void {
  const { doc, parseInput } = deps;
  const tags = ["ejento"];
  app.post(
    "/v1/destinations/:id/ejento/register",
    {
      schema: {
        tags,
        summary: "Register the destination's email and password on the Ejento auth app",
        body: doc(registerSchema),
        response: {
          201: {
            ...doc(z.object({ user: userSchema })),
            description: "The user Ejento created",
            examples: [{ user: userExample }],
          },
        },
      },
    },
    async (req, reply) => {
      const body = parseInput(registerSchema, req.body ?? {});
      const user = await registerAccount(deps, (req.params as { id: string }).id, body.fullName);
      return reply.code(201).send({ user });
    },
  );
  app.get(
    "/v1/destinations/:id/ejento/users",
    {
      schema: {
        tags,
        summary: "Every Ejento user (paged through; needs a superuser account)",
        response: {
          200: {
            ...doc(z.object({ data: z.array(userSchema), count: z.number().int() })),
            description: "Ejento's users",
            examples: [{ data: [userExample], count: 1 }],
          },
        },
      },
    },
    async (req) => listUsers(deps, (req.params as { id: string }).id),
  );
  app.patch(
    "/v1/destinations/:id/ejento/users/:userId",
    {
      schema: {
        tags,
        summary: "Change an Ejento user",
        body: doc(updateSchema),
        response: {
          200: {
            ...doc(z.object({ user: userSchema })),
            description: "The user as changed",
            examples: [{ user: { ...userExample, isActive: false } }],
          },
        },
      },
    },
    async (req) => {
      const { id, userId } = req.params as { id: string; userId: string };
      const body = parseInput(updateSchema, req.body);
      const changes = Object.fromEntries(Object.entries(body).filter(([, v]) => v !== undefined));
      return { user: await updateUser(deps, id, userId, changes) };
    },
  );
}
