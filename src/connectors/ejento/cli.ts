import { parseArgs } from "node:util";
import { AppError } from "../../util/errors.ts";
import type { CommandApi, ConnectorCommand } from "../connector.ts";

const HELP = `leadpush ejento — the Ejento account of an "ejento" destination (the Ejento API document)

  leadpush ejento register --destination NAME [--full-name "Jane Doe"]
      register the destination's email and password on the Ejento auth app
  leadpush ejento users --destination NAME [--json]
      list every Ejento user (needs a superuser account)
  leadpush ejento update-user --destination NAME --user ID [--email E] [--full-name N]
      [--active true|false] [--superuser true|false] [--password P]

Options: --url (default LEADPUSH_URL, else http://localhost:8080), --key (default LEADPUSH_API_KEY).`;

const bool = (v: string | undefined, flag: string): boolean | undefined => {
  if (v === undefined) return undefined;
  if (v === "true" || v === "false") return v === "true";
  throw new AppError(0, "invalid_option", `${flag} must be true or false`);
};

async function ejentoCommand(argv: string[], api: CommandApi): Promise<number> {
  const [sub, ...rest] = argv;
  const { values } = parseArgs({
    args: rest,
    options: {
      ...api.serverOptions,
      destination: { type: "string", short: "d" },
      "full-name": { type: "string" },
      user: { type: "string" },
      email: { type: "string" },
      active: { type: "string" },
      superuser: { type: "string" },
      password: { type: "string" },
      json: { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
    strict: true,
  });
  if (values.help || sub === "--help" || sub === "-h") {
    process.stdout.write(HELP + "\n");
    return 0;
  }
  if (!sub || !["register", "users", "update-user"].includes(sub)) {
    process.stderr.write(
      `leadpush ejento: ${sub ? `unknown subcommand "${sub}"` : "which subcommand?"}\n\n${HELP}\n`,
    );
    return 2;
  }
  if (!values.destination)
    return fail("--destination is required", `leadpush ejento ${sub} --destination NAME`);
  const target = api.server(values);
  const base = `/v1/destinations/${encodeURIComponent(values.destination)}/ejento`;
  try {
    if (sub === "register") {
      const r = (await target.call("POST", `${base}/register`, {
        ...(values["full-name"] ? { fullName: values["full-name"] } : {}),
      })) as { user: User };
      process.stdout.write(`registered ${r.user.email} (id ${r.user.id})\n`);
      return 0;
    }
    if (sub === "users") {
      const r = (await target.call("GET", `${base}/users`)) as { data: User[]; count: number };
      if (values.json) process.stdout.write(JSON.stringify(r, null, 2) + "\n");
      else {
        for (const u of r.data) {
          const flags = [u.isSuperuser ? "superuser" : "", u.isActive ? "" : "inactive"].filter(Boolean);
          process.stdout.write(
            `${u.id}  ${u.email.padEnd(32)} ${u.fullName ?? ""}${flags.length ? `  (${flags.join(", ")})` : ""}\n`,
          );
        }
        process.stdout.write(`${r.count} user(s)\n`);
      }
      return 0;
    }
    if (!values.user)
      return fail("--user is required", "leadpush ejento users --destination NAME lists the ids");
    const changes = {
      ...(values.email !== undefined ? { email: values.email } : {}),
      ...(values["full-name"] !== undefined ? { fullName: values["full-name"] } : {}),
      ...(values.password !== undefined ? { password: values.password } : {}),
      ...(values.active !== undefined ? { isActive: bool(values.active, "--active") } : {}),
      ...(values.superuser !== undefined ? { isSuperuser: bool(values.superuser, "--superuser") } : {}),
    };
    const r = (await target.call("PATCH", `${base}/users/${encodeURIComponent(values.user)}`, changes)) as {
      user: User;
    };
    process.stdout.write(`updated ${r.user.email} (id ${r.user.id})\n`);
    return 0;
  } catch (err) {
    if (err instanceof AppError) return fail(`${err.code}: ${err.message}`);
    if (err instanceof TypeError)
      return fail(`cannot reach ${target.url}: ${err.message}`, "is leadpush running? set --url");
    throw err;
  }
}

interface User {
  id: string;
  email: string;
  fullName: string | null;
  isActive: boolean;
  isSuperuser: boolean;
}

function fail(message: string, next?: string): number {
  process.stderr.write(`leadpush: ${message}\n${next ? `  → ${next}\n` : ""}`);
  return 2;
}

/** `leadpush ejento …` */
export const ejentoCommands: readonly ConnectorCommand[] = [
  {
    name: "ejento",
    usage: `  ejento register|users|update-user --destination NAME
                        the Ejento account of an ejento destination (on a running server)`,
    run: ejentoCommand,
  },
];
