import { api, ApiError, cancelReason, money } from "./api";
import { answering } from "./test/gateway";

test("a 503 is the busy sentence, flagged unavailable", async () => {
  answering({ "GET /api/products": [503, { error: { code: "unavailable", message: "busy" } }] });
  const error = await api.products("", 12, 0).catch((e: unknown) => e);
  expect(error).toBeInstanceOf(ApiError);
  expect((error as ApiError).unavailable).toBe(true);
  expect((error as ApiError).message).toMatch(/busy or a part of it is down/);
});

test("an answer that breaks the contract is one clear error", async () => {
  answering({ "GET /api/products": [200, { items: [{ sku: 1 }], total: 1 }] });
  const error = await api.products("", 12, 0).catch((e: unknown) => e);
  expect((error as ApiError).code).toBe("contract");
});

test("the gateway's own error words are kept", async () => {
  answering({
    "POST /api/auth/token": [401, { error: { code: "unauthorized", message: "wrong email or password" } }],
  });
  const error = await api.signIn("a@b.c", "nope").catch((e: unknown) => e);
  expect((error as ApiError).status).toBe(401);
  expect((error as ApiError).message).toBe("wrong email or password");
});

test("money and reasons in plain words", () => {
  expect(money(1250, "EUR")).toBe("€12.50");
  expect(cancelReason("payment_declined")).toMatch(/card was declined/);
  expect(cancelReason("out_of_stock")).toMatch(/ran out of stock/);
  expect(cancelReason("timeout")).toMatch(/refunded/);
});
