// @vitest-environment node
// The AsyncAPI document services/common/asyncapi.py generates
// (docs/asyncapi.json, kept current by tests/unit/test_asyncapi.py) is valid
// by the AsyncAPI specification itself: @asyncapi/parser reads it with its
// own rules and reports no error.
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

import { DiagnosticSeverity, Parser } from "@asyncapi/parser";

const documentPath = fileURLToPath(new URL("../../docs/asyncapi.json", import.meta.url));

test("docs/asyncapi.json is a valid AsyncAPI 3 document with every event", async () => {
  const text = readFileSync(documentPath, "utf8");
  const { document, diagnostics } = await new Parser().parse(text);
  const errors = diagnostics.filter((d) => d.severity === DiagnosticSeverity.Error);
  expect(errors.map((d) => `${d.path.join(".")}: ${d.message}`)).toEqual([]);
  expect(document?.version()).toBe("3.0.0");
  const channels = document!.channels().all().map((c) => c.address());
  expect(channels).toEqual(expect.arrayContaining(["cart.checked_out", "order.created", "order.completed"]));
  // every channel carries its message, and each message a payload schema
  for (const message of document!.messages().all()) {
    expect(message.hasPayload(), message.id()).toBe(true);
  }
});

test("a document that breaks the specification is refused (the check can fail)", async () => {
  const broken = JSON.parse(readFileSync(documentPath, "utf8"));
  broken.channels.CartCheckedOut.messages.CartCheckedOut = { $ref: "#/components/messages/NoSuchMessage" };
  delete broken.info.title;
  const { document, diagnostics } = await new Parser().parse(JSON.stringify(broken));
  const errors = diagnostics.filter((d) => d.severity === DiagnosticSeverity.Error);
  expect(document).toBeUndefined();
  expect(errors.length).toBeGreaterThan(0);
});
