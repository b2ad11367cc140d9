// The component tests' gateway: Mock Service Worker answers the app's real
// fetch calls in Node (msw/node), so the code under test goes through fetch,
// Request and Response as in a browser. Unhandled requests fail the test.
import { http, HttpResponse } from "msw";
import { setupServer } from "msw/node";

export const server = setupServer();

export { http, HttpResponse };

export type Answer = [status: number, body: unknown];

const log: string[] = []; // "METHOD /path?query" of each request, in order
const bodies: unknown[] = []; // and its JSON body

server.events.on("request:start", async ({ request }) => {
  const url = new URL(request.url);
  const text = request.body ? await request.clone().text() : "";
  log.push(`${request.method} ${url.pathname}${url.search}`);
  bodies.push(text ? JSON.parse(text) : undefined);
});

/** "METHOD /path?query" of every request since the test began (a live list). */
export function calls(): string[] {
  return log;
}

/** The JSON body of the last request that was `call`. */
export function bodyOf(call: string): unknown {
  return bodies[log.lastIndexOf(call)];
}

export function forget() {
  log.length = 0;
  bodies.length = 0;
}

/** A JSON answer with the API's error shape. */
export const problem = (status: number, code: string, message: string) =>
  HttpResponse.json({ error: { code, message } }, { status });

/** An answer for each "METHOD /path" prefix from a table; others get the API's 404.
 * Returns the live list of calls. */
export function answering(routes: Record<string, Answer>): string[] {
  server.use(
    http.all("/api/*", ({ request }) => {
      const url = new URL(request.url);
      const call = `${request.method} ${url.pathname}${url.search}`;
      const key = Object.keys(routes).find((k) => call.startsWith(k));
      if (!key) return problem(404, "not_found", "no");
      const [status, body] = routes[key];
      return HttpResponse.json(body as object, { status });
    }),
  );
  return log;
}
