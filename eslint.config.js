// ESLint's recommended rules over every JavaScript file of the repository, with the
// globals each kind of file runs with.
import js from "@eslint/js";
import globals from "globals";

export default [
  { ignores: ["pkg/", "target/", "node_modules/", "js/vendor/", "dist/", "**/dist/", "test-results/"] },
  js.configs.recommended,
  {
    languageOptions: { globals: { ...globals.browser, ...globals.worker } },
    rules: { "no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_", caughtErrors: "none" }] },
  },
  {
    files: ["**/*.jsx"],
    languageOptions: { parserOptions: { ecmaFeatures: { jsx: true } } },
  },
  {
    // Node scripts and tests; the tests' page.evaluate callbacks run in the page,
    // where the test page puts `quiver` (and tests keep a database) on window.
    files: ["**/*.mjs", "scripts/**/*.js", "eslint.config.js"],
    languageOptions: { globals: { ...globals.node, ...globals.browser, quiver: "readonly", db: "writable" } },
  },
];
