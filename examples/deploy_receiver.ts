// The cloud end of a gateway's relay, for Deno Deploy (the project's KV) or
// locally (KV_PATH, a SQLite file): `deno run -A --unstable-kv examples/deploy_receiver.ts`.
//   SYNC_TOKEN=...   the relay's token (or "sha256:<hex>" of it)
//   PORT, KV_PATH    locally only
// GET /readings/count answers how many readings it holds (a health check).
import { open } from "../mod.ts"; // jsr:@tether/db
import { receive } from "../gateway.ts"; // jsr:@tether/db/gateway

const kvPath = Deno.env.get("DENO_DEPLOYMENT_ID")
  ? undefined
  : Deno.env.get("KV_PATH");
const db = await open({ kv: await Deno.openKv(kvPath) });
const sync = receive(db, {
  token: Deno.env.get("SYNC_TOKEN") ?? "",
  collections: ["readings"],
});

const handler = async (request: Request): Promise<Response> => {
  const { pathname } = new URL(request.url);
  if (request.method === "GET" && pathname === "/readings/count") {
    return Response.json({ count: await db.collection("readings").count() });
  }
  return await sync(request); // POST /sync
};
const port = Deno.env.get("PORT");
Deno.serve(port ? { hostname: "127.0.0.1", port: Number(port) } : {}, handler);
