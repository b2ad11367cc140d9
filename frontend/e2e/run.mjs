// The frontend end to end in headless Chromium (Debian's, driven by
// playwright-core: no browser download), against a running sandbox:
//
//   node e2e/run.mjs http://127.0.0.1:8080 SKU ADMIN_EMAIL ADMIN_PASSWORD SCREENSHOT_DIR
//
// An admin adds the product SKU from the admin page; a new customer signs
// up, finds it, puts it in the cart, checks out with tok_visa and watches
// COMPLETED arrive live; then checks out with tok_chargeDeclined, sees the
// decline in plain words and the stock given back. A screenshot of each page
// goes to SCREENSHOT_DIR. Prints one JSON line of what it measured.
import { mkdirSync } from "node:fs";
import { join } from "node:path";

import { chromium } from "playwright-core";

const [gateway, sku, adminEmail, adminPassword, shots] = process.argv.slice(2);
if (!shots) {
  console.error("usage: node e2e/run.mjs GATEWAY SKU ADMIN_EMAIL ADMIN_PASSWORD SCREENSHOT_DIR");
  process.exit(2);
}
mkdirSync(shots, { recursive: true });

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  args: [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
  ],
});
const report = {};
const step = async (page, name) => {
  await page.screenshot({ path: join(shots, `${name}.png`), fullPage: true });
};

try {
  const context = await browser.newContext({ viewport: { width: 1100, height: 800 } });
  const page = await context.newPage();
  page.setDefaultTimeout(15_000);
  // files the pages ask for and the gateway does not have (the API's 404s are answers)
  report.missing_files = [];
  page.on("response", (response) => {
    const path = new URL(response.url()).pathname;
    if (response.status() === 404 && !path.startsWith("/api/")) report.missing_files.push(path);
  });

  // first load: size and time of everything the products page needs
  const started = Date.now();
  await page.goto(`${gateway}/`, { waitUntil: "networkidle" });
  report.first_load_ms = Date.now() - started;
  report.first_load_bytes = await page.evaluate(() =>
    performance
      .getEntriesByType("resource")
      .concat(performance.getEntriesByType("navigation"))
      .reduce((sum, entry) => sum + (entry.transferSize || entry.encodedBodySize || 0), 0),
  );
  await page.getByRole("heading", { name: "Products" }).waitFor();
  await step(page, "01-products");

  // the admin adds the product
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
  await page.getByText(`Added ${sku}.`).waitFor();
  await step(page, "02-admin");
  await page.getByRole("button", { name: /Sign out/ }).click();

  // a new customer
  await page.getByRole("link", { name: "Sign in", exact: true }).click();
  await page.getByRole("button", { name: "Create an account" }).click();
  const email = `browser-${Date.now()}@example.com`;
  await page.getByLabel("Email").fill(email);
  await page.getByLabel("Password").fill("browser-password");
  await step(page, "03-signup");
  await page.getByRole("button", { name: "Sign up" }).click();
  await page.getByRole("button", { name: /Sign out/ }).waitFor();

  // the stock as inventory says it now: a visit shows what it saw last
  // while it asks again (aria-busy)
  const stockNow = async () => {
    const line = page.locator('[data-testid="stock"][aria-busy="false"]', { hasText: /in stock$/ });
    await line.waitFor();
    return line.textContent();
  };

  const buy = async (card, shot) => {
    await page.getByLabel("Search").fill(sku);
    await page.getByRole("button", { name: "Search" }).click();
    await page.getByRole("link", { name: "Browser mug" }).click();
    const stockText = await stockNow();
    await step(page, `${shot}-product`);
    await page.getByRole("button", { name: "Add to cart" }).click();
    await page.getByRole("link", { name: "Go to the cart" }).click();
    await page.getByRole("heading", { name: "Cart" }).waitFor();
    await step(page, `${shot}-cart`);
    await page.getByRole("link", { name: "Check out" }).click();
    await page.locator(`input[name="card"][value="${card}"]`).check();
    await page.getByLabel("Name").fill("Ada Lovelace");
    await page.getByLabel("Address").fill("12 St James's Square");
    await page.getByLabel("City").fill("London");
    await page.getByLabel("Postal code").fill("SW1Y 4JH");
    await step(page, `${shot}-checkout`);
    const placed = Date.now();
    await page.getByRole("button", { name: "Place order" }).click();
    await page.waitForURL(/\/orders\//);
    return { stockText, placed };
  };

  // tok_visa: COMPLETED arrives live
  const first = await buy("tok_visa", "04");
  await page.getByTestId("order-status").getByText("COMPLETED").waitFor({ timeout: 20_000 });
  report.completed_after_ms = Date.now() - first.placed;
  await page.locator('[data-event="OrderCompleted"]').waitFor();
  const steps = await page.locator(".step-label").allTextContents();
  if (!steps.includes("Payment accepted") || !steps.includes("Shipment created")) {
    throw new Error(`the live steps miss some: ${steps.join(", ")}`);
  }
  report.completed_steps = steps;
  await step(page, "05-order-completed");

  // tok_chargeDeclined: the decline in words, the stock given back
  await page.getByRole("link", { name: "Products" }).first().click();
  const second = await buy("tok_chargeDeclined", "06");
  if (first.stockText !== "5 in stock" || second.stockText !== "4 in stock") {
    throw new Error(`stock ${first.stockText}, then ${second.stockText} after one was bought`);
  }
  await page.getByTestId("cancel-reason").waitFor({ timeout: 20_000 });
  const reason = await page.getByTestId("cancel-reason").textContent();
  if (!/card was declined/.test(reason ?? "")) throw new Error(`reason shown: ${reason}`);
  await page.locator('[data-event="StockReleased"]').waitFor({ timeout: 20_000 });
  report.declined_reason = reason;
  await step(page, "07-order-declined");
  await page.getByRole("link", { name: "Products" }).first().click();
  await page.getByLabel("Search").fill(sku);
  await page.getByRole("button", { name: "Search" }).click();
  await page.getByRole("link", { name: "Browser mug" }).click();
  const after = await stockNow();
  if (after !== second.stockText) throw new Error(`stock before ${second.stockText}, after ${after}`);
  report.stock_after_decline = after;

  await page.getByRole("link", { name: "Orders" }).click();
  await page.getByRole("heading", { name: "Your orders" }).waitFor();
  await step(page, "08-orders");

  // a phone's width
  await page.setViewportSize({ width: 390, height: 844 });
  await page.getByRole("link", { name: "Products" }).first().click();
  await page.getByRole("heading", { name: "Products" }).waitFor();
  await step(page, "09-products-phone");
  report.ok = true;
} catch (error) {
  report.ok = false;
  report.error = String(error?.stack ?? error);
  const pages = browser.contexts().flatMap((c) => c.pages());
  if (pages.length) await pages[0].screenshot({ path: join(shots, "failure.png"), fullPage: true });
} finally {
  await browser.close();
}
console.log(JSON.stringify(report));
process.exit(report.ok ? 0 : 1);
