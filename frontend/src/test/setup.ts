import "@testing-library/jest-dom/vitest";
import { cleanup } from "@testing-library/react";
import { afterAll, afterEach, beforeAll } from "vitest";

import { forget, server } from "./gateway";

beforeAll(() => server.listen({ onUnhandledRequest: "error" }));
afterEach(() => {
  cleanup();
  globalThis.localStorage?.clear(); // none in the node environment (contracts/)
  server.resetHandlers();
  forget();
});
afterAll(() => server.close());
