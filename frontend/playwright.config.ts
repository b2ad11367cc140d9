// The browser test (@playwright/test) in Debian's Chromium: no browser
// download. tests/e2e/test_frontend.py runs it against a sandbox it started:
//
//   SHOP_GATEWAY=http://127.0.0.1:8080 SHOP_ADMIN_EMAIL=admin@shop.local \
//   SHOP_ADMIN_PASSWORD=admin npx playwright test
//
// SHOP_E2E_SKU names the product it adds (a fresh one each run by default),
// SHOP_E2E_SHOTS the folder for its screenshots, SHOP_E2E_REPORT a file for
// the JSON of what it measured.
import { defineConfig } from "@playwright/test";

export default defineConfig({
  testDir: "e2e",
  timeout: 180_000,
  workers: 1,
  retries: 0,
  reporter: [["line"]],
  outputDir: "test-results",
  use: {
    baseURL: process.env.SHOP_GATEWAY ?? "http://127.0.0.1:8080",
    viewport: { width: 1100, height: 800 },
    actionTimeout: 15_000,
    navigationTimeout: 15_000,
    screenshot: "only-on-failure",
    launchOptions: {
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
    },
  },
});
