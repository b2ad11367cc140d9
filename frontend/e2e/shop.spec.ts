// The frontend end to end in headless Chromium (@playwright/test with
// Debian's Chromium, see playwright.config.ts), against a running sandbox.
//
// An admin adds a product from the admin page; a new customer signs up,
// finds it, puts it in the cart, checks out with tok_visa and watches
// COMPLETED arrive live; then checks out with tok_chargeDeclined, sees the
// decline in plain words and the stock given back. A screenshot of each page
// goes to SHOP_E2E_SHOTS; what it measured goes to SHOP_E2E_REPORT as JSON.
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";

import { expect, type Page, test } from "@playwright/test";

const sku = process.env.SHOP_E2E_SKU ?? `WEB-${Date.now().toString(36)}`;
const adminEmail = process.env.SHOP_ADMIN_EMAIL ?? "admin@shop.local";
const adminPassword = process.env.SHOP_ADMIN_PASSWORD ?? "admin";
const shots = process.env.SHOP_E2E_SHOTS ?? "test-results/screenshots";
const reportFile = process.env.SHOP_E2E_REPORT;

type Report = {
  missing_files: string[];
  first_load_ms?: number;
  first_load_bytes?: number;
  completed_after_ms?: number;
  completed_steps?: string[];
  declined_reason?: string | null;
  stock_after_decline?: string | null;
};

test("a customer buys, is declined, and sees it live", async ({ page }) => {
  mkdirSync(shots, { recursive: true });
  const shot = (name: string) => page.screenshot({ path: join(shots, `${name}.png`), fullPage: true });
  const report: Report = { missing_files: [] };
  // files the pages ask for and the gateway does not have (the API's 404s are answers)
  page.on("response", (response) => {
    const path = new URL(response.url()).pathname;
    if (response.status() === 404 && !path.startsWith("/api/")) report.missing_files.push(path);
  });
  try {
    await test.step("first load", async () => {
      // size and time of everything the products page needs
      const started = Date.now();
      await page.goto("/", { waitUntil: "networkidle" });
      report.first_load_ms = Date.now() - started;
      report.first_load_bytes = await page.evaluate(() =>
        performance
          .getEntriesByType("resource")
          .concat(performance.getEntriesByType("navigation"))
          .reduce(
            (sum, entry) =>
              sum + ((entry as PerformanceResourceTiming).transferSize || (entry as PerformanceResourceTiming).encodedBodySize || 0),
            0,
          ),
      );
      await expect(page.getByRole("heading", { name: "Products" })).toBeVisible();
      await shot("01-products");
    });

    await test.step("the admin adds the product", async () => {
      await page.getByRole("link", { name: "Sign in", exact: true }).click();
      await page.getByLabel("Email").fill(adminEmail);
      await page.getByLabel("Password").fill(adminPassword);
      await page.getByRole("button", { name: "Sign in" }).click();
      await page.getByRole("link", { name: "Admin" }).click();
      await page.getByLabel("SKU", { exact: true }).first().fill(sku);
      await page.getByLabel("Name").fill("Browser mug");
      await page.getByLabel("Description").fill("Tested in Chromium");
      await page.getByLabel("Price").fill("12.50");
      await page.getByLabel("Initial stock").fill("5");
      await page.getByRole("button", { name: "Add product" }).click();
      await expect(page.getByText(`Added ${sku}.`)).toBeVisible();
      await shot("02-admin");
      await page.getByRole("button", { name: /Sign out/ }).click();
    });

    await test.step("a new customer signs up", async () => {
      await page.getByRole("link", { name: "Sign in", exact: true }).click();
      await page.getByRole("button", { name: "Create an account" }).click();
      await page.getByLabel("Email").fill(`browser-${Date.now()}@example.com`);
      await page.getByLabel("Password").fill("browser-password");
      await shot("03-signup");
      await page.getByRole("button", { name: "Sign up" }).click();
      await expect(page.getByRole("button", { name: /Sign out/ })).toBeVisible();
    });

    const first = await test.step("tok_visa: COMPLETED arrives live", async () => {
      const bought = await buy(page, "tok_visa", "04", shot);
      await expect(page.getByTestId("order-status").getByText("COMPLETED")).toBeVisible({ timeout: 20_000 });
      report.completed_after_ms = Date.now() - bought.placed;
      await expect(page.locator('[data-event="OrderCompleted"]')).toBeAttached();
      const steps = await page.locator(".step-label").allTextContents();
      expect(steps).toEqual(expect.arrayContaining(["Payment accepted", "Shipment created"]));
      report.completed_steps = steps;
      await shot("05-order-completed");
      return bought;
    });

    await test.step("tok_chargeDeclined: the decline in words, the stock given back", async () => {
      await page.getByRole("link", { name: "Products" }).first().click();
      const second = await buy(page, "tok_chargeDeclined", "06", shot);
      expect([first.stockText, second.stockText]).toEqual(["5 in stock", "4 in stock"]);
      const reason = page.getByTestId("cancel-reason");
      await expect(reason).toHaveText(/card was declined/, { timeout: 20_000 });
      report.declined_reason = await reason.textContent();
      await expect(page.locator('[data-event="StockReleased"]')).toBeAttached({ timeout: 20_000 });
      await shot("07-order-declined");
      await page.getByRole("link", { name: "Products" }).first().click();
      await page.getByLabel("Search").fill(sku);
      await page.getByRole("button", { name: "Search" }).click();
      await page.getByRole("link", { name: "Browser mug" }).click();
      report.stock_after_decline = await stockNow(page);
      expect(report.stock_after_decline).toBe(second.stockText);
    });

    await test.step("the orders list, and a phone's width", async () => {
      await page.getByRole("link", { name: "Orders" }).click();
      await expect(page.getByRole("heading", { name: "Your orders" })).toBeVisible();
      await shot("08-orders");
      await page.setViewportSize({ width: 390, height: 844 });
      await page.getByRole("link", { name: "Products" }).first().click();
      await expect(page.getByRole("heading", { name: "Products" })).toBeVisible();
      await shot("09-products-phone");
    });
  } finally {
    if (reportFile) writeFileSync(reportFile, JSON.stringify(report, null, 2));
  }
});

/** The stock as inventory says it now: a visit shows what it saw last while it asks again (aria-busy). */
async function stockNow(page: Page) {
  const line = page.locator('[data-testid="stock"][aria-busy="false"]', { hasText: /in stock$/ });
  await line.waitFor();
  return line.textContent();
}

async function buy(page: Page, card: string, prefix: string, shot: (name: string) => Promise<unknown>) {
  await page.getByLabel("Search").fill(sku);
  await page.getByRole("button", { name: "Search" }).click();
  await page.getByRole("link", { name: "Browser mug" }).click();
  const stockText = await stockNow(page);
  await shot(`${prefix}-product`);
  await page.getByRole("button", { name: "Add to cart" }).click();
  await page.getByRole("link", { name: "Go to the cart" }).click();
  await expect(page.getByRole("heading", { name: "Cart" })).toBeVisible();
  await shot(`${prefix}-cart`);
  await page.getByRole("link", { name: "Check out" }).click();
  await page.locator(`input[name="card"][value="${card}"]`).check();
  await page.getByLabel("Name").fill("Ada Lovelace");
  await page.getByLabel("Address").fill("12 St James's Square");
  await page.getByLabel("City").fill("London");
  await page.getByLabel("Postal code").fill("SW1Y 4JH");
  await shot(`${prefix}-checkout`);
  const placed = Date.now();
  await page.getByRole("button", { name: "Place order" }).click();
  await page.waitForURL(/\/orders\//);
  return { stockText, placed };
}
