// ESLint (flat config): the recommended JavaScript rules, typescript-eslint's
// recommended rules and React's hooks rules, over the app, its tests and the
// browser test. scripts/test runs it beside ruff.
import js from "@eslint/js";
import reactHooks from "eslint-plugin-react-hooks";
import globals from "globals";
import tseslint from "typescript-eslint";

export default tseslint.config(
  { ignores: ["dist", "node_modules", "test-results", "playwright-report"] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ["**/*.{ts,tsx}"],
    languageOptions: { globals: { ...globals.browser } },
    plugins: { "react-hooks": reactHooks },
    rules: { ...reactHooks.configs.recommended.rules },
  },
  {
    files: ["**/*.test.{ts,tsx}", "src/test/**"],
    languageOptions: { globals: { ...globals.node, ...globals.vitest } },
  },
  {
    files: ["e2e/**", "*.config.{js,ts}"],
    languageOptions: { globals: { ...globals.node } },
  },
);
