// eslint for omnidesk's own JavaScript (`make check`): the recommended rules on the agent
// workspace's ES modules and on the chat widget, a classic script served inside a closure.
// Vendored files (the socket.io client) are not ours to lint.
import js from "@eslint/js";
import globals from "globals";

export default [
  { ignores: ["node_modules/", ".venv/", "agent_ui/static/vendor/", "**/*.min.js"] },
  js.configs.recommended,
  {
    files: ["agent_ui/static/**/*.js"],
    languageOptions: {
      ecmaVersion: 2022,
      sourceType: "module",
      // `io` comes from the vendored socket.io client loaded before the modules
      globals: { ...globals.browser, io: "readonly" },
    },
  },
  {
    // the widget runs on customers' sites, so it stays ES5; the server wraps it in a strict
    // closure after the socket.io client (`io` in scope), so its top-level names are locals
    files: ["channels/webchat/static/**/*.js"],
    languageOptions: {
      ecmaVersion: 5,
      sourceType: "script",
      parserOptions: { ecmaFeatures: { globalReturn: true, impliedStrict: true } },
      globals: { ...globals.browser, io: "readonly" },
    },
    // ES5 has no `catch {}` without a binding; the widget ignores storage errors on purpose
    rules: { "no-unused-vars": ["error", { caughtErrors: "none" }] },
  },
];
