// Runs mvlm/serve/static/app.js under Node with a stub DOM, against a live `mvlm serve`:
// fetch() resolves the page's relative URLs and adds the Origin a browser would send.
// Usage: node ui_js_harness.js APP_JS BASE_URL VIDEO_FILE ; prints one JSON line.
"use strict";
const vm = require("vm");
const fs = require("fs");
const [appJs, base, videoPath] = process.argv.slice(2);
const sent = [];
const file = new Blob([fs.readFileSync(videoPath)]);
file.name = "clip.avi";
const el = new Proxy(function () {}, {
  get: (_t, key) => (key === "files" ? [file] : key === "value" ? "" : key === "checked" ? false : el),
  set: () => true,
  apply: () => el,
});
const context = {
  document: { getElementById: () => el },
  window: { addEventListener() {} },
  Option: function () {},
  setTimeout: () => 0, // no polling loop
  createImageBitmap: async () => ({ width: 1, height: 1 }),
  Date, JSON, Math, Error, console,
  fetch: (url, options = {}) => {
    sent.push({ url, method: options.method || "GET", headers: options.headers || {} });
    const headers = { ...(options.headers || {}), Origin: new URL(base).origin };
    return fetch(new URL(url, base), { ...options, headers });
  },
};
vm.createContext(context);
vm.runInContext(fs.readFileSync(appJs, "utf8"), context);
(async () => {
  const out = {};
  for (const [name, call] of [["upload", "upload()"], ["stop", "postJSON('api/track/stop')"]]) {
    try { await vm.runInContext(call, context); out[name] = "ok"; } catch (err) { out[name] = err.message; }
  }
  out.sent = sent;
  console.log(JSON.stringify(out));
  process.exit(0);
})();
